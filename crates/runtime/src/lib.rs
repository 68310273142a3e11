//! What every crawlq service shares, written once.
//!
//! - [`config`]: clap flags with env vars, and errors that name them;
//! - [`topology`]: subject, stream and consumer names;
//! - [`nats`]: connecting with backoff, provisioning streams idempotently;
//! - [`handler`]: what a stage implements ([`Handler`]) and the messages
//!   it sees ([`Delivery`]) and emits ([`Outgoing`]);
//! - [`schedule`]: messages the NATS server publishes later (ADR-51);
//! - [`settle`]: the pure decision of ack, retry, defer or dead-letter;
//! - [`dead_letter`]: the one builder of dead letters;
//! - [`worker`]: the consumer loop (publish, await PubAck, then ack);
//! - [`error`]: the retry-or-dead-letter contract handlers implement;
//! - [`http`], [`metrics`], [`process`]: `/metrics` (with the `process_*`
//!   metrics), `/healthz`, `/readyz`;
//! - [`service`]: start-up and graceful shutdown of a stage;
//! - [`shutdown`], [`logging`].

pub mod coding;
pub mod config;
pub mod dead_letter;
pub mod error;
pub mod group_sync;
pub mod handler;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod nats;
pub mod process;
pub mod schedule;
pub mod service;
pub mod settle;
pub mod shutdown;
pub mod store;
pub mod topology;
pub mod worker;

pub use dead_letter::DeadLetterBuilder;
pub use error::{Classify, Disposition, Error};
pub use handler::{Delivery, Described, Handler, Outgoing, REQUEST_ID_HEADER, SUBMISSION_HEADER};
pub use service::Runtime;
pub use settle::{settle, Settlement};
pub use topology::{Stage, Topology};

/// Current time as Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `s`, cut to at most `max` bytes at a character boundary, with `…`.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `s` with control characters escaped (`\u{1b}`), for logs and terminal
/// output: a submitted URL or a page's text must not move the cursor,
/// recolour the terminal or forge a log line.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain url"), "plain url");
        assert_eq!(printable("a\x1b[31mred\nnext"), "a\\u{1b}[31mred\\u{a}next");
    }

    #[test]
    fn clip_cuts_at_char_boundaries() {
        assert_eq!(clip("short", 10), "short");
        let cut = clip(&"é".repeat(100), 11);
        assert!(cut.len() <= 11 && cut.ends_with('…'), "{cut}");
    }
}
