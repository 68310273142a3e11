//! Settings of `crawlq extractor`: every flag with its environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args};
use crawlq_runtime::config::{parse_duration, BodyArgs, CommonArgs, StoreArgs};

/// Settings of `crawlq extractor`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Extra site rules (TOML), tried before the built-in ones.
    #[arg(long = "rules-file", env = "CRAWLQ_RULES_FILE")]
    pub rules_file: Option<PathBuf>,
    /// Turn feed items that carry full HTML into records directly.
    #[arg(long = "feed-content", env = "CRAWLQ_FEED_CONTENT", default_value_t = false, action = ArgAction::Set)]
    pub feed_content: bool,
    /// Also keep records of listing and home pages.
    #[arg(long = "keep-listings", env = "CRAWLQ_KEEP_LISTINGS", default_value_t = false, action = ArgAction::Set)]
    pub keep_listings: bool,
    /// Link depth followed when a request does not set max_depth.
    #[arg(long = "max-depth", env = "CRAWLQ_MAX_DEPTH", default_value_t = 1)]
    pub max_depth: u32,
    /// The crawler's body cap: zstd bodies and gzip sitemaps are inflated
    /// to it at most.
    #[command(flatten)]
    pub body: BodyArgs,
    /// Most items taken from one feed (sitemaps: the protocol's 50,000).
    #[arg(
        long = "max-feed-entries",
        env = "CRAWLQ_MAX_FEED_ENTRIES",
        default_value_t = 1000
    )]
    pub max_feed_entries: usize,
    /// Time budget for parsing and extracting one page.
    #[arg(long = "extract-timeout", env = "CRAWLQ_EXTRACT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub extract_timeout: Duration,
}
