//! Settings of `crawlq storage`: every flag with its environment variable.

use std::time::Duration;

use chrono::FixedOffset;
use clap::{ArgAction, Args};
use crawlq_runtime::config::{parse_duration, CommonArgs, StoreArgs};

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
