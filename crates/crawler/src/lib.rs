//! crawlq crawler: polite, safe, resumable fetching.
//!
//! - [`normalize`]: WHATWG URL normalisation, tracking parameters stripped;
//! - [`ssrf`]: the address guard and its resolver;
//! - [`robots`]: robots.txt shared through NATS KV;
//! - [`politeness`]: per-host spacing without head-of-line blocking;
//! - [`fetch`]: HTTP with redirects, deadlines and body caps;
//! - [`intake`]: what an intake message asks for;
//! - [`watch`]: registered feeds polled on schedule, archived articles revisited;
//! - [`config`], [`handler`], [`service`], [`metrics`], [`error`]: the NATS
//!   stage, split as every service crate is.

pub mod config;
pub mod error;
pub mod fetch;
pub mod handler;
pub mod intake;
pub mod metrics;
pub mod normalize;
pub mod politeness;
pub mod robots;
pub mod service;
pub mod ssrf;
pub mod watch;

pub use config::Config;
pub use error::CrawlError;
pub use service::run;
