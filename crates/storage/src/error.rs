//! Storage errors. A store that is down or slow is retried; a record that
//! can never be written is dead-lettered.

use crawlq_runtime::{Classify, Disposition};

/// Why a record was not (yet) archived.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The message is not a valid `SnapshotRecord`.
    #[error("invalid SnapshotRecord message: {0}")]
    BadMessage(String),
    /// The record lacks a field the layout needs.
    #[error("record is missing `{0}`")]
    Incomplete(&'static str),
    /// The object store failed (unreachable, throttled, refused...).
    #[error("object store {op} `{key}`: {source}")]
    Store {
        /// Operation.
        op: &'static str,
        /// Object key.
        key: String,
        /// Underlying error.
        #[source]
        source: object_store::Error,
    },
    /// The claim-checked record a message names is gone (expired).
    #[error("claim-checked record `{0}` is gone")]
    ClaimGone(String),
    /// An immutable object exists with different content.
    #[error("`{0}` exists with different content; versions are never overwritten")]
    Conflict(String),
    /// An index or change-log list could not be updated.
    #[error("list: {0}")]
    List(#[source] std::sync::Arc<crate::lists::ListError>),
    /// An archived object that history depends on (an article's version
    /// list) is damaged. Writing over it would lose history, so the record
    /// is refused until someone repairs the object.
    #[error("`{key}` is damaged ({why}); refusing to overwrite the history it holds")]
    Damaged {
        /// Object key.
        key: String,
        /// What is wrong with it.
        why: String,
    },
    /// Concurrent writers kept changing the article's JSON.
    #[error("`{0}` kept changing under us; will retry")]
    Contended(String),
    /// The WARC writer could not make the fetch's records durable (the
    /// store or NATS failed); retried.
    #[error("WARC: {0}")]
    Warc(String),
}

impl StorageError {
    /// The store itself failed (unreachable, 5xx after the client's own
    /// retries), as opposed to refusing this one request.
    pub fn is_outage(&self) -> bool {
        match self {
            StorageError::Store {
                source: source @ object_store::Error::Generic { .. },
                ..
            } => !refuses_this_object(source),
            _ => false,
        }
    }
}

/// Does the store refuse this one object (a name too long, an invalid
/// name, a permission on one path), rather than fail as a whole (a full or
/// read-only disk, a network failure)? Only the second pauses the stage;
/// the first is permanent for the message.
fn refuses_this_object(e: &object_store::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return matches!(
                io.raw_os_error(),
                Some(
                    libc::ENAMETOOLONG
                        | libc::EINVAL
                        | libc::EACCES
                        | libc::EPERM
                        | libc::EISDIR
                        | libc::ENOTDIR
                )
            );
        }
        cause = c.source();
    }
    false
}

/// Every reason code of storage, and whether replaying can succeed
/// without a change (see `crawlq dlq replay`).
pub const REASONS: &[(&str, bool)] = &[
    ("bad_message", false),
    ("incomplete_record", false),
    ("store_error", true),
    ("store_refused", false),
    ("version_conflict", false),
    ("damaged_index", false),
    ("index_error", true),
    ("damaged_archive", false),
    ("claim_check_unavailable", false),
    ("contended", true),
    ("warc_error", true),
];

impl Classify for StorageError {
    fn disposition(&self) -> Disposition {
        match self {
            StorageError::BadMessage(_)
            | StorageError::Incomplete(_)
            | StorageError::Conflict(_)
            | StorageError::Damaged { .. }
            | StorageError::ClaimGone(_) => Disposition::Permanent,
            StorageError::Store { source, .. } if refuses_this_object(source) => {
                Disposition::Permanent
            }
            StorageError::List(e) if matches!(**e, crate::lists::ListError::Damaged { .. }) => {
                Disposition::Permanent
            }
            _ => Disposition::Retry(None),
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            StorageError::BadMessage(_) => "bad_message",
            StorageError::Incomplete(_) => "incomplete_record",
            StorageError::Store { source, .. } if refuses_this_object(source) => "store_refused",
            StorageError::Store { .. } => "store_error",
            StorageError::Conflict(_) => "version_conflict",
            StorageError::ClaimGone(_) => "claim_check_unavailable",
            StorageError::List(e) if matches!(**e, crate::lists::ListError::Damaged { .. }) => {
                "damaged_index"
            }
            StorageError::List(_) => "index_error",
            StorageError::Damaged { .. } => "damaged_archive",
            StorageError::Contended(_) => "contended",
            StorageError::Warc(_) => "warc_error",
        }
    }

    fn pipeline_fault(&self) -> bool {
        use crate::lists::ListError;
        match self {
            StorageError::List(e) => matches!(**e, ListError::Kv { .. }),
            StorageError::Warc(_) => true,
            _ => self.is_outage(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(errno: i32) -> StorageError {
        StorageError::Store {
            op: "put",
            key: "k".into(),
            source: object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(std::io::Error::from_raw_os_error(errno)),
            },
        }
    }

    #[test]
    fn every_reason_is_listed() {
        use crate::lists::ListError;
        use std::sync::Arc;
        let all = [
            StorageError::BadMessage("e".into()),
            StorageError::Incomplete("id"),
            local(libc::ENOSPC),
            local(libc::ENAMETOOLONG),
            StorageError::ClaimGone("k".into()),
            StorageError::Conflict("k".into()),
            StorageError::List(Arc::new(ListError::Stopped)),
            StorageError::List(Arc::new(ListError::Damaged {
                key: "h".into(),
                source: serde_json::from_str::<u8>("x").unwrap_err(),
            })),
            StorageError::Damaged {
                key: "k".into(),
                why: "w".into(),
            },
            StorageError::Contended("k".into()),
            StorageError::Warc("w".into()),
        ];
        for e in &all {
            assert!(
                REASONS.iter().any(|(r, _)| *r == e.reason()),
                "{} is not in REASONS",
                e.reason()
            );
        }
    }

    #[test]
    fn one_refused_object_is_permanent_a_full_disk_is_an_outage() {
        let long = local(libc::ENAMETOOLONG);
        assert_eq!(long.disposition(), Disposition::Permanent);
        assert_eq!(long.reason(), "store_refused");
        assert!(!long.is_outage(), "one bad name must not pause the stage");
        assert!(!long.pipeline_fault());
        for errno in [libc::ENOSPC, libc::EROFS, libc::EDQUOT] {
            let e = local(errno);
            assert!(e.is_outage(), "{errno}");
            assert!(e.pipeline_fault(), "{errno}");
            assert_eq!(e.disposition(), Disposition::Retry(None));
        }
        assert!(StorageError::Warc("w".into()).pipeline_fault());
        assert!(!StorageError::Conflict("k".into()).pipeline_fault());
        assert!(!StorageError::Contended("k".into()).pipeline_fault());
    }
}
