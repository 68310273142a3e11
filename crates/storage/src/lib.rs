//! crawlq storage: an idempotent, versioned snapshot archive on any
//! object store.
//!
//! - [`layout`]: object keys (a public contract);
//! - [`archive`]: writing one record without duplicates;
//! - [`lists`]: bounded lists in NATS KV, rendered into the archive;
//! - [`index`]: per-host index pages; [`changes`]: the change log and feed;
//! - [`read`]: reading records and versions back (`crawlq get`);
//! - [`warc`]: the WARC archive: every fetch as it happened;
//! - [`watch`]: what a check means for an article, and when the next one is;
//! - [`config`], [`handler`], [`service`], [`metrics`], [`error`]: the NATS
//!   stage, split as every service crate is.

pub mod archive;
pub mod changes;
pub mod config;
pub mod error;
pub mod handler;
pub mod index;
pub mod layout;
pub mod lists;
pub mod metrics;
pub mod read;
pub mod service;
pub mod warc;
pub mod watch;

pub use archive::{Archive, VersionEntry, Written};
pub use config::Config;
pub use error::StorageError;
pub use service::run;
