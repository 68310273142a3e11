//! Scheduled messages, kept by the NATS server itself (JetStream message
//! schedules, ADR-51, nats-server 2.12+).
//!
//! A schedule is one message on its own subject in the schedules stream,
//! with `Nats-Schedule: @at <RFC 3339>` and `Nats-Schedule-Target`. At that
//! time the server publishes its body to the target, in the same stream,
//! and removes the definition. Publishing to the same subject again
//! replaces the schedule, so "the next check of article X" is always one
//! message, however often it is recomputed; it survives restarts of every
//! process and of the server, and is replicated with the stream. crawlq
//! keeps no timer of its own.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::handler::Outgoing;

/// Header naming when the server should publish the message.
pub const SCHEDULE_HEADER: &str = "Nats-Schedule";
/// Header naming the subject the server publishes it to.
pub const TARGET_HEADER: &str = "Nats-Schedule-Target";
/// Header the server sets on a produced message: the schedule's subject.
pub const SCHEDULER_HEADER: &str = "Nats-Scheduler";

/// `msg`, turned into the schedule on `subject` that publishes it to
/// `target` at `at_ms` (Unix ms; a time in the past fires at once), to the
/// millisecond: nats-server 2.15 fires within a millisecond of it.
pub fn at(mut msg: Outgoing, subject: String, target: String, at_ms: i64) -> Outgoing {
    let when = DateTime::<Utc>::from_timestamp_millis(at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    msg.headers
        .insert(SCHEDULE_HEADER, format!("@at {when}").as_str());
    msg.headers.insert(TARGET_HEADER, target.as_str());
    msg.subject = subject;
    msg
}

/// Unix ms as RFC 3339 in UTC, to the second (`2026-12-01T10:00:00Z`).
pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_carry_the_time_and_target() {
        let msg = Outgoing {
            subject: "x".into(),
            headers: async_nats::HeaderMap::new(),
            payload: bytes::Bytes::from_static(b"body"),
        };
        let s = at(
            msg,
            "p.schedule.feed.ab".into(),
            "p.due".into(),
            1_699_530_301_500,
        );
        assert_eq!(s.subject, "p.schedule.feed.ab");
        assert_eq!(
            s.headers.get(SCHEDULE_HEADER).map(|v| v.as_str()),
            Some("@at 2023-11-09T11:45:01.500Z")
        );
        assert_eq!(
            s.headers.get(TARGET_HEADER).map(|v| v.as_str()),
            Some("p.due")
        );
    }
}
