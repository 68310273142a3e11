//! crawlq extractor: from a fetched page to a clean snapshot record.
//!
//! - [`decode`]: charset sniffing (header, BOM, meta, detection);
//! - [`metadata`], [`dates`]: title, canonical URL, dates, authors...;
//! - [`content`]: site rules, then a readability-style scorer;
//! - [`clean`]: valid one-line HTML and text from the content;
//! - [`render`]: the archive's seed format;
//! - [`feeds`]: feeds and sitemaps to new requests;
//! - [`extract`]: the pipeline for one page;
//! - [`service`]: the NATS stage; [`bench`]: `extract-bench`.

pub mod bench;
pub mod boilerplate;
pub mod clean;
pub mod content;
pub mod dates;
pub mod decode;
pub mod dom;
pub mod error;
pub mod extract;
pub mod feeds;
pub mod metadata;
pub mod metrics;
pub mod render;
pub mod rules;
pub mod service;

pub use error::ExtractError;
pub use extract::{Extracted, Extractor, Page};
pub use render::render;
