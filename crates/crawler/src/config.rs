//! Settings of `crawlq crawler`: every flag with its environment variable.

use std::time::Duration;

use clap::{ArgAction, Args};
use crawlq_runtime::config::{parse_duration, BodyArgs, CommonArgs, StoreArgs};
use ipnet::IpNet;

use crate::normalize::default_strip;

/// Default User-Agent: product token, version and a contact URL.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "crawlq/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/crawlq/crawlq; news archiver)"
);

/// Settings of `crawlq crawler`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// User-Agent header; include a contact URL.
    #[arg(long = "user-agent", env = "CRAWLQ_USER_AGENT", default_value = DEFAULT_USER_AGENT)]
    pub user_agent: String,
    /// Product token matched against robots.txt `User-agent` lines.
    #[arg(
        long = "robots-agent",
        env = "CRAWLQ_ROBOTS_AGENT",
        default_value = "crawlq"
    )]
    pub robots_agent: String,
    /// Obey robots.txt.
    #[arg(long = "respect-robots", env = "CRAWLQ_RESPECT_ROBOTS", default_value_t = true, action = ArgAction::Set)]
    pub respect_robots: bool,
    /// How long a robots.txt is cached.
    #[arg(long = "robots-ttl", env = "CRAWLQ_ROBOTS_TTL", default_value = "24h", value_parser = parse_duration)]
    pub robots_ttl: Duration,
    /// Minimum delay between two requests to one host.
    #[arg(long = "host-delay", env = "CRAWLQ_HOST_DELAY", default_value = "1s", value_parser = parse_duration)]
    pub host_delay: Duration,
    /// Requests in flight per host, across every crawler replica.
    #[arg(
        long = "host-concurrency",
        env = "CRAWLQ_HOST_CONCURRENCY",
        default_value_t = 1
    )]
    pub host_concurrency: usize,
    /// HTTP fetches in flight in this process.
    #[arg(
        long = "fetch-concurrency",
        env = "CRAWLQ_FETCH_CONCURRENCY",
        default_value_t = 64
    )]
    pub fetch_concurrency: usize,
    /// Longest in-process wait for a host slot before the request is deferred.
    #[arg(long = "max-politeness-wait", env = "CRAWLQ_MAX_POLITENESS_WAIT", default_value = "30s", value_parser = parse_duration)]
    pub max_politeness_wait: Duration,
    /// Allow private, loopback and other refused addresses (tests, intranets).
    #[arg(long = "allow-private-networks", env = "CRAWLQ_ALLOW_PRIVATE_NETWORKS", default_value_t = false, action = ArgAction::Set)]
    pub allow_private_networks: bool,
    /// Comma-separated CIDRs allowed even though refused by default.
    #[arg(
        long = "allow-cidrs",
        env = "CRAWLQ_ALLOW_CIDRS",
        value_delimiter = ','
    )]
    pub allow_cidrs: Vec<IpNet>,
    /// Comma-separated query parameters stripped from URLs (`utm_*` = prefix).
    #[arg(long = "strip-params", env = "CRAWLQ_STRIP_PARAMS", value_delimiter = ',', default_values_t = default_strip())]
    pub strip_params: Vec<String>,
    /// Redirects followed.
    #[arg(
        long = "max-redirects",
        env = "CRAWLQ_MAX_REDIRECTS",
        default_value_t = 10
    )]
    pub max_redirects: usize,
    /// Connect timeout.
    #[arg(long = "connect-timeout", env = "CRAWLQ_CONNECT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Deadline of a whole fetch, body included.
    #[arg(long = "fetch-deadline", env = "CRAWLQ_FETCH_DEADLINE", default_value = "30s", value_parser = parse_duration)]
    pub fetch_deadline: Duration,
    #[command(flatten)]
    pub body: BodyArgs,
    /// A feeds file (`URL [INTERVAL] [sitemap]` per line): at start the
    /// registry is made to hold exactly these feeds (feeds added by hand
    /// stay). In Kubernetes, the `crawlq-feeds` ConfigMap.
    #[arg(long = "feeds-file", env = "CRAWLQ_FEEDS_FILE")]
    pub feeds_file: Option<std::path::PathBuf>,
    /// Due checks (feed polls and revisits) handled at once.
    #[arg(
        long = "due-concurrency",
        env = "CRAWLQ_DUE_CONCURRENCY",
        default_value_t = 64
    )]
    pub due_concurrency: usize,
    /// A URL fetched within this window is skipped unless forced.
    #[arg(long = "duplicate-window", env = "CRAWLQ_DUPLICATE_WINDOW", default_value = "1h", value_parser = parse_duration)]
    pub duplicate_window: Duration,
}
