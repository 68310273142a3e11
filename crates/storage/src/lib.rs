//! crawlq storage: an idempotent, versioned snapshot archive on any
//! object store.
//!
//! - [`layout`]: object keys (a public contract);
//! - [`archive`]: writing one record without duplicates;
//! - [`index`]: per-host index pages over a NATS KV list;
//! - [`read`]: reading records and versions back (`crawlq get`);
//! - [`config`], [`handler`], [`service`], [`metrics`], [`error`]: the NATS
//!   stage, split as every service crate is.

pub mod archive;
pub mod config;
pub mod error;
pub mod handler;
pub mod index;
pub mod layout;
pub mod metrics;
pub mod read;
pub mod service;

pub use archive::{Archive, VersionEntry, Written};
pub use config::Config;
pub use error::StorageError;
pub use service::run;
