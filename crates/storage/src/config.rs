//! Settings of `crawlq storage`: every flag with its environment variable.

use std::time::Duration;

use chrono::FixedOffset;
use clap::{ArgAction, Args};
use crawlq_runtime::config::{parse_duration, parse_size, CommonArgs, StoreArgs};

use crate::index;
use crate::watch::Schedule;

/// Settings of `crawlq storage`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Archive the raw fetched page next to each version.
    #[arg(long = "keep-raw", env = "CRAWLQ_KEEP_RAW", default_value_t = true, action = ArgAction::Set)]
    pub keep_raw: bool,
    /// Archive every fetch as WARC/1.1 (`warc/…warc.gz`); raw pages then
    /// live in the WARC files instead of `raw/`.
    #[arg(long = "warc", env = "CRAWLQ_WARC", default_value_t = true, action = ArgAction::Set)]
    pub warc: bool,
    /// A WARC file is sealed once it reaches this size (bytes; K, M and G
    /// suffixes are binary).
    #[arg(long = "warc-max-size", env = "CRAWLQ_WARC_MAX_SIZE", default_value = "1G", value_parser = parse_size)]
    pub warc_max_size: u64,
    /// … or this age.
    #[arg(long = "warc-max-age", env = "CRAWLQ_WARC_MAX_AGE", default_value = "1h", value_parser = parse_duration)]
    pub warc_max_age: Duration,
    /// The WARC writer's name in file names; the host (pod) name by
    /// default. Replicas sharing one get `-2`, `-3`… appended.
    #[arg(long = "warc-writer", env = "CRAWLQ_WARC_WRITER")]
    pub warc_writer: Option<String>,
    /// Time zone of the dates in index pages: UTC or an offset like +08:00.
    #[arg(long = "index-timezone", env = "CRAWLQ_INDEX_TIMEZONE", default_value = "UTC", value_parser = index::parse_tz)]
    pub index_timezone: FixedOffset,
    /// Delays between revisits of an archived article, counted from its
    /// last observed change (comma-separated; `off` turns revisits off).
    #[arg(long = "revisit-schedule", env = "CRAWLQ_REVISIT_SCHEDULE", default_value = Schedule::DEFAULT, value_parser = Schedule::parse)]
    pub revisit_schedule: Schedule,
    /// How often changed index pages are rewritten.
    #[arg(long = "index-flush-interval", env = "CRAWLQ_INDEX_FLUSH_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub index_flush_interval: Duration,
}
