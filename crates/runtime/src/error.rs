//! The runtime's error type, and how services say what a failure means.
//!
//! Each service has its own error enum and implements [`Classify`] for it:
//! the variant, not a string match, decides whether the worker loop naks
//! the message for a retry or dead-letters it.

use std::time::Duration;

/// What the worker loop does with a message whose handling failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Try again later: nak with this delay, or with exponential backoff
    /// when `None`. Dead-lettered once deliveries run out.
    Retry(Option<Duration>),
    /// Not a failure: the work cannot start yet (a busy host). Nak with
    /// this delay without spending the retry budget.
    Defer(Duration),
    /// Retrying cannot help: dead-letter now.
    Permanent,
}

/// Classifies a handler error for the worker loop.
pub trait Classify {
    /// Retry or dead-letter.
    fn disposition(&self) -> Disposition;
    /// Short, stable, snake_case reason code (`robots_disallowed`). Used as
    /// the dead-letter reason and as a bounded metric label.
    fn reason(&self) -> &'static str;
    /// True when a retryable failure is the pipeline's own (NATS, a KV
    /// bucket, the object store), not the message's: the worker then runs
    /// the handler again in place, within the outage patience, instead of
    /// spending one of the message's deliveries on each attempt.
    fn pipeline_fault(&self) -> bool {
        false
    }
}

/// Errors of the shared runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is invalid; the message names it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// NATS could not be reached.
    #[error("cannot connect to nats: {0}")]
    Connect(String),
    /// A NATS or JetStream request failed.
    #[error("nats: {0}")]
    Nats(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The HTTP listener failed.
    #[error("http listener: {0}")]
    Http(#[from] std::io::Error),
}

impl Error {
    /// Wraps any NATS error, keeping it as the source.
    pub fn nats(e: impl std::error::Error + Send + Sync + 'static) -> Error {
        Error::Nats(Box::new(e))
    }
}
