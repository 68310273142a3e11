//! crawlq extractor: from a fetched page to a clean snapshot record.
//!
//! - [`decode`]: charset sniffing (header, BOM, meta, detection);
//! - [`metadata`], [`dates`]: title, canonical URL, dates, authors...;
//! - [`content`]: site rules, then a readability-style scorer;
//! - [`clean`]: valid one-line HTML and text from the content;
//! - [`fallback`]: JSON-LD body, `<article>`, densest block when the
//!   main selection finds too little;
//! - [`feeds`]: feeds and sitemaps to new requests;
//! - [`extract`]: the pipeline for one page;
//! - [`config`], [`handler`], [`service`], [`metrics`], [`error`]: the NATS
//!   stage, split as every service crate is; [`bench`]: `extract-bench`.

pub mod bench;
pub mod boilerplate;
pub mod clean;
pub mod config;
pub mod content;
pub mod dates;
pub mod decode;
pub mod dom;
pub mod error;
pub mod extract;
pub mod fallback;
pub mod feeds;
pub mod handler;
pub mod metadata;
pub mod metrics;
pub mod rules;
pub mod service;

pub use config::Config;
pub use crawlq_record::render;
pub use error::ExtractError;
pub use extract::{Extracted, Extractor, Page};
pub use service::run;
