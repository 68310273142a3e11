//! What becomes of a handled message: one pure decision, tested on its own.
//!
//! The worker loop ([`crate::worker`]) only carries the decision out:
//! publish and ack, nak with a delay, or dead-letter and terminate.

use std::fmt::Display;
use std::time::Duration;

use crate::error::{Classify, Disposition};

/// The fate of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Publish the results, await their PubAcks, then ack.
    Ack,
    /// A failure worth another try: nak after this delay, or after the
    /// loop's exponential backoff when `None`. Spends a delivery.
    Retry(Option<Duration>),
    /// The work cannot start yet (a busy host): nak after this delay.
    /// Not a failure.
    Defer(Duration),
    /// Publish a dead letter with this reason and error, then terminate.
    DeadLetter {
        /// Stable snake_case reason code.
        reason: &'static str,
        /// What went wrong, for people.
        error: String,
    },
}

/// Decides what happens to a delivery after its handler returned `result`.
/// `delivered` is 1 on the first delivery; `max` is the number of
/// deliveries a retryable failure may use.
pub fn settle<T, E: Classify + Display>(
    result: &Result<T, E>,
    delivered: u32,
    max: u32,
) -> Settlement {
    let err = match result {
        Ok(_) => return Settlement::Ack,
        Err(e) => e,
    };
    match err.disposition() {
        Disposition::Retry(after) if delivered < max => Settlement::Retry(after),
        Disposition::Retry(_) => Settlement::DeadLetter {
            reason: err.reason(),
            error: format!("gave up after {delivered} deliveries: {err}"),
        },
        Disposition::Defer(delay) => Settlement::Defer(delay),
        Disposition::Permanent => Settlement::DeadLetter {
            reason: err.reason(),
            error: err.to_string(),
        },
    }
}

/// Reason of a message whose earlier deliveries never finished.
pub const MAX_DELIVERIES: &str = "max_deliveries";

/// Decides, before handling, whether a message has been delivered too
/// often without finishing (each attempt crashed or hung): it then goes to
/// the dead letters instead of looping forever. `limit` is the retry budget
/// plus whatever the handler allows for deferrals.
pub fn exhausted(delivered: u32, limit: u32) -> Option<Settlement> {
    (delivered > limit).then(|| Settlement::DeadLetter {
        reason: MAX_DELIVERIES,
        error: format!(
            "delivered {delivered} times without finishing; the worker crashed or timed out each time"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(Disposition);

    impl Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "boom")
        }
    }

    impl Classify for E {
        fn disposition(&self) -> Disposition {
            self.0
        }
        fn reason(&self) -> &'static str {
            "boom_reason"
        }
    }

    fn err(d: Disposition) -> Result<(), E> {
        Err(E(d))
    }

    #[test]
    fn success_acks_whatever_the_delivery() {
        assert_eq!(settle(&Ok::<(), E>(()), 1, 5), Settlement::Ack);
        assert_eq!(settle(&Ok::<(), E>(()), 99, 5), Settlement::Ack);
    }

    #[test]
    fn retryable_failures_retry_until_the_last_delivery() {
        assert_eq!(
            settle(&err(Disposition::Retry(None)), 1, 5),
            Settlement::Retry(None)
        );
        let after = Some(Duration::from_secs(7));
        assert_eq!(
            settle(&err(Disposition::Retry(after)), 4, 5),
            Settlement::Retry(after)
        );
        assert_eq!(
            settle(&err(Disposition::Retry(after)), 5, 5),
            Settlement::DeadLetter {
                reason: "boom_reason",
                error: "gave up after 5 deliveries: boom".into()
            }
        );
    }

    #[test]
    fn permanent_failures_dead_letter_at_once() {
        assert_eq!(
            settle(&err(Disposition::Permanent), 1, 5),
            Settlement::DeadLetter {
                reason: "boom_reason",
                error: "boom".into()
            }
        );
    }

    #[test]
    fn deferrals_never_spend_the_retry_budget() {
        let d = Duration::from_millis(300);
        assert_eq!(
            settle(&err(Disposition::Defer(d)), 50, 5),
            Settlement::Defer(d)
        );
    }

    #[test]
    fn endless_redelivery_is_cut_off() {
        assert_eq!(exhausted(5, 5), None);
        match exhausted(6, 5) {
            Some(Settlement::DeadLetter { reason, error }) => {
                assert_eq!(reason, MAX_DELIVERIES);
                assert!(error.contains("delivered 6 times"), "{error}");
            }
            other => panic!("{other:?}"),
        }
    }
}
