//! The watch over archived articles, as pure functions: what one check
//! means for an article's status, and when it is checked next.
//!
//! The schedule (`CRAWLQ_REVISIT_SCHEDULE`, default
//! `1h,3h,12h,1d,3d,7d,30d,90d`) is keyed to the time since the last
//! observed change: the n-th revisit after a change comes the n-th delay
//! after the previous check; a change starts the list again; after the
//! last delay the article is no longer revisited.
//!
//! Removal needs two consecutive checks that found the article gone (404,
//! 410, 451, or redirected away), at least one revisit delay apart.
//! Timeouts, 5xx answers and connection errors are never evidence. A
//! removed article is still checked on its schedule and, if it answers
//! again, is marked restored.

use std::time::Duration;

use crawlq_record::article::{Check, Status, Tracking, MAX_CHECKS};

/// The revisit delays, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule(pub Vec<Duration>);

impl Schedule {
    /// The default: `1h,3h,12h,1d,3d,7d,30d,90d`.
    pub const DEFAULT: &'static str = "1h,3h,12h,1d,3d,7d,30d,90d";

    /// Parses a comma-separated list of delays; `off` or empty turns
    /// revisits off.
    pub fn parse(s: &str) -> Result<Schedule, String> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("off") {
            return Ok(Schedule(Vec::new()));
        }
        let delays = s
            .split(',')
            .map(|d| crawlq_runtime::config::parse_duration(d.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        if delays.iter().any(|d| d.is_zero()) {
            return Err(format!("`{s}`: a revisit delay must be longer than zero"));
        }
        Ok(Schedule(delays))
    }

    /// The shortest delay: how far apart two failed checks must be.
    pub fn min_delay(&self) -> Duration {
        self.0.iter().min().copied().unwrap_or(Duration::ZERO)
    }

    /// When the check after one at `at_ms` comes, `n` checks after the
    /// last change; `None` once the schedule is exhausted.
    pub fn next(&self, n: u32, at_ms: i64) -> Option<i64> {
        let d = self.0.get(n as usize)?;
        Some(at_ms + d.as_millis() as i64)
    }
}

/// What one check saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The article's content, `changed` or not since the latest version
    /// (`first` for the first version ever).
    Content {
        /// A new version was stored.
        changed: bool,
        /// It is the article's first version.
        first: bool,
    },
    /// 304 Not Modified.
    NotModified,
    /// Gone: evidence of removal.
    Gone,
    /// The check could not be made.
    Error,
}

/// What a check did to the article's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed.
    None,
    /// It is now marked removed.
    Removed,
    /// A removed article answered again.
    Restored,
}

/// Applies one check to an article's tracking fields; returns what it did
/// to the status and the check's outcome label. A check already recorded
/// (same time and outcome: a redelivered message) changes nothing.
pub fn apply(
    t: &mut Tracking,
    schedule: &Schedule,
    seen: Seen,
    mut check: Check,
) -> (Transition, String) {
    let mut transition = Transition::None;
    let answered = matches!(seen, Seen::Content { .. } | Seen::NotModified);
    if answered {
        t.watch.failures.clear();
        if t.status == Status::Removed {
            t.status = Status::Live;
            t.restored_at = Some(check.at);
            transition = Transition::Restored;
        }
    }
    match seen {
        Seen::Content { changed: true, .. } => {
            t.watch.checks_since_change = 0;
            t.watch.last_change_at = check.at;
        }
        Seen::Gone => {
            t.watch.failures.push(Check {
                outcome: "failed".into(),
                ..check.clone()
            });
            t.watch.checks_since_change += 1;
            let (first, last) = (
                &t.watch.failures[0],
                &t.watch.failures[t.watch.failures.len() - 1],
            );
            let apart = Duration::from_millis((last.at - first.at).max(0) as u64);
            if t.status == Status::Live
                && t.watch.failures.len() >= 2
                && apart >= schedule.min_delay()
            {
                t.status = Status::Removed;
                t.removed_at = Some(check.at);
                t.removal_evidence = t.watch.failures.clone();
                transition = Transition::Removed;
            }
        }
        _ => t.watch.checks_since_change += 1,
    }
    let outcome = match (transition, seen) {
        (Transition::Removed, _) => "removed",
        (Transition::Restored, _) => "restored",
        (_, Seen::Content { first: true, .. }) => "new",
        (_, Seen::Content { changed: true, .. }) => "changed",
        (_, Seen::Content { changed: false, .. }) => "unchanged",
        (_, Seen::NotModified) => "not_modified",
        (_, Seen::Gone) => "failed",
        (_, Seen::Error) => "error",
    };
    check.outcome = outcome.to_string();
    t.watch.last_check_at = check.at;
    t.watch.next_check_at = schedule.next(t.watch.checks_since_change, check.at);
    t.checks.push(check);
    if t.checks.len() > MAX_CHECKS {
        let extra = t.checks.len() - MAX_CHECKS;
        t.checks.drain(..extra);
    }
    (transition, outcome.to_string())
}

/// Has this check been recorded already (a redelivery)?
pub fn already_recorded(t: &Tracking, at: i64) -> bool {
    t.checks.iter().any(|c| c.at == at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> Schedule {
        Schedule::parse(s).unwrap()
    }

    fn check(at_s: i64, status: u32) -> Check {
        Check {
            at: at_s * 1000,
            status,
            ..Check::default()
        }
    }

    #[test]
    fn schedule_parses_and_turns_off() {
        assert_eq!(
            secs("2s,4s").0,
            vec![Duration::from_secs(2), Duration::from_secs(4)]
        );
        assert!(secs("off").0.is_empty());
        assert!(Schedule::parse("1h,soon").is_err());
        assert!(Schedule::parse("0s").is_err());
        assert_eq!(Schedule::parse(Schedule::DEFAULT).unwrap().0.len(), 8);
    }

    #[test]
    fn revisits_back_off_from_the_last_change_and_stop_at_the_end() {
        let s = secs("2s,4s,8s");
        let mut t = Tracking::default();
        apply(
            &mut t,
            &s,
            Seen::Content {
                changed: true,
                first: true,
            },
            check(0, 200),
        );
        assert_eq!(t.watch.next_check_at, Some(2_000));
        apply(
            &mut t,
            &s,
            Seen::Content {
                changed: false,
                first: false,
            },
            check(2, 200),
        );
        assert_eq!(t.watch.next_check_at, Some(6_000));
        apply(&mut t, &s, Seen::NotModified, check(6, 304));
        assert_eq!(t.watch.next_check_at, Some(14_000));
        // An edit starts the list again.
        let (_, outcome) = apply(
            &mut t,
            &s,
            Seen::Content {
                changed: true,
                first: false,
            },
            check(14, 200),
        );
        assert_eq!(outcome, "changed");
        assert_eq!(t.watch.next_check_at, Some(16_000));
        for at in [16, 20, 28] {
            apply(&mut t, &s, Seen::NotModified, check(at, 304));
        }
        assert_eq!(t.watch.next_check_at, None, "schedule exhausted");
    }

    #[test]
    fn two_failed_checks_a_delay_apart_mark_removal_with_evidence() {
        let s = secs("2s,4s,8s");
        let mut t = Tracking::default();
        apply(
            &mut t,
            &s,
            Seen::Content {
                changed: true,
                first: true,
            },
            check(0, 200),
        );
        let (tr, out) = apply(&mut t, &s, Seen::Gone, check(2, 404));
        assert_eq!((tr, out.as_str()), (Transition::None, "failed"));
        assert_eq!(t.status, Status::Live);
        let (tr, out) = apply(&mut t, &s, Seen::Gone, check(6, 410));
        assert_eq!((tr, out.as_str()), (Transition::Removed, "removed"));
        assert_eq!(t.status, Status::Removed);
        assert_eq!(t.removed_at, Some(6_000));
        assert_eq!(
            t.removal_evidence
                .iter()
                .map(|c| c.status)
                .collect::<Vec<_>>(),
            vec![404, 410]
        );
        assert!(
            t.watch.next_check_at.is_some(),
            "a removed article is still checked"
        );
        // It comes back.
        let (tr, out) = apply(
            &mut t,
            &s,
            Seen::Content {
                changed: false,
                first: false,
            },
            check(14, 200),
        );
        assert_eq!((tr, out.as_str()), (Transition::Restored, "restored"));
        assert_eq!(t.status, Status::Live);
        assert_eq!(t.restored_at, Some(14_000));
    }

    #[test]
    fn errors_are_never_evidence_and_answers_reset_failures() {
        let s = secs("2s,4s,8s,16s");
        let mut t = Tracking::default();
        apply(
            &mut t,
            &s,
            Seen::Content {
                changed: true,
                first: true,
            },
            check(0, 200),
        );
        apply(&mut t, &s, Seen::Error, check(2, 503));
        apply(&mut t, &s, Seen::Error, check(6, 0));
        assert_eq!(t.status, Status::Live);
        apply(&mut t, &s, Seen::Gone, check(14, 404));
        apply(&mut t, &s, Seen::NotModified, check(30, 304));
        assert!(t.watch.failures.is_empty());
        assert_eq!(t.status, Status::Live);
        assert_eq!(
            t.checks
                .iter()
                .map(|c| c.outcome.as_str())
                .collect::<Vec<_>>(),
            vec!["new", "error", "error", "failed", "not_modified"]
        );
    }

    #[test]
    fn failures_closer_than_a_delay_are_not_yet_removal() {
        let s = secs("10s");
        let mut t = Tracking::default();
        apply(&mut t, &s, Seen::Gone, check(0, 404));
        let (tr, _) = apply(&mut t, &s, Seen::Gone, check(1, 404));
        assert_eq!(tr, Transition::None);
        let (tr, _) = apply(&mut t, &s, Seen::Gone, check(11, 404));
        assert_eq!(tr, Transition::Removed);
    }

    #[test]
    fn checks_are_bounded() {
        let s = secs("1s");
        let mut t = Tracking::default();
        for i in 0..200 {
            apply(&mut t, &s, Seen::Error, check(i, 0));
        }
        assert_eq!(t.checks.len(), MAX_CHECKS);
        assert_eq!(t.checks[0].at, 150_000);
        assert!(already_recorded(&t, 199_000) && !already_recorded(&t, 5_000));
    }
}
