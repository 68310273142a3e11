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
}

impl StorageError {
    /// The store itself failed (unreachable, 5xx after the client's own
    /// retries), as opposed to refusing this one request.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            StorageError::Store {
                source: object_store::Error::Generic { .. },
                ..
            }
        )
    }
}

impl Classify for StorageError {
    fn disposition(&self) -> Disposition {
        match self {
            StorageError::BadMessage(_)
            | StorageError::Incomplete(_)
            | StorageError::Conflict(_)
            | StorageError::Damaged { .. } => Disposition::Permanent,
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
            StorageError::Store { .. } => "store_error",
            StorageError::Conflict(_) => "version_conflict",
            StorageError::List(e) if matches!(**e, crate::lists::ListError::Damaged { .. }) => {
                "damaged_index"
            }
            StorageError::List(_) => "index_error",
            StorageError::Damaged { .. } => "damaged_archive",
            StorageError::Contended(_) => "contended",
        }
    }
}
