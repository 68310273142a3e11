//! Settings every crawlq process shares, as clap flags with an env var each.
//!
//! Services flatten [`CommonArgs`] into their own typed config. [`parse`]
//! turns clap errors about an invalid value into a message that names the
//! environment variable the value came from, so a bad deployment setting
//! stops start-up with an error an operator can act on.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, ValueEnum};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// How to reach and authenticate to NATS. The flags are global, so they
/// may follow a subcommand (`crawlq dlq list --nats-url …`).
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(
        global = true,
        long = "nats-url",
        env = "CRAWLQ_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub url: String,

    /// NATS credentials file (JWT + NKEY seed).
    #[arg(global = true, long = "nats-creds", env = "CRAWLQ_NATS_CREDS")]
    pub creds: Option<PathBuf>,

    /// NATS user name (with --nats-password).
    #[arg(
        global = true,
        long = "nats-user",
        env = "CRAWLQ_NATS_USER",
        requires = "password"
    )]
    pub user: Option<String>,

    /// NATS password (with --nats-user).
    #[arg(
        global = true,
        long = "nats-password",
        env = "CRAWLQ_NATS_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,

    /// NATS authentication token.
    #[arg(
        global = true,
        long = "nats-token",
        env = "CRAWLQ_NATS_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// NATS NKEY seed.
    #[arg(
        global = true,
        long = "nats-nkey",
        env = "CRAWLQ_NATS_NKEY",
        hide_env_values = true
    )]
    pub nkey: Option<String>,

    /// CA certificate (PEM) to verify the NATS server.
    #[arg(global = true, long = "nats-tls-ca", env = "CRAWLQ_NATS_TLS_CA")]
    pub tls_ca: Option<PathBuf>,

    /// Client certificate (PEM) for mutual TLS.
    #[arg(
        global = true,
        long = "nats-tls-cert",
        env = "CRAWLQ_NATS_TLS_CERT",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// Client key (PEM) for mutual TLS.
    #[arg(
        global = true,
        long = "nats-tls-key",
        env = "CRAWLQ_NATS_TLS_KEY",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Prefix of every subject, stream and consumer name.
    #[arg(global = true, long = "subject-prefix", env = "CRAWLQ_SUBJECT_PREFIX", default_value = "crawlq",
          value_parser = parse_prefix)]
    pub subject_prefix: String,

    /// Stream replicas when crawlq creates its streams (1 or 3 on a cluster).
    #[arg(global = true, long = "stream-replicas", env = "CRAWLQ_STREAM_REPLICAS", default_value_t = 1,
          value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,

    /// Most bytes each crawlq stream holds. A full work stream refuses new
    /// messages (`discard: new`), so nothing queued is ever dropped: a
    /// publish then fails with a clear error and is retried. Applied to
    /// existing streams at start.
    #[arg(global = true, long = "stream-max-bytes", env = "CRAWLQ_STREAM_MAX_BYTES", default_value = "1G",
          value_parser = parse_size)]
    pub stream_max_bytes: u64,
}

impl NatsArgs {
    /// The stream settings these flags ask for.
    pub fn streams(&self) -> crate::nats::StreamSettings {
        crate::nats::StreamSettings {
            replicas: usize::from(self.stream_replicas),
            max_bytes: i64::try_from(self.stream_max_bytes).unwrap_or(i64::MAX),
        }
    }
}

/// The body cap, shared by the crawler (which stops reading there) and the
/// extractor (which inflates compressed bodies and sitemaps to it at most).
#[derive(Debug, Clone, Args)]
pub struct BodyArgs {
    /// Largest decoded body, in bytes.
    #[arg(long = "max-body", env = "CRAWLQ_MAX_BODY", default_value_t = 10 * 1024 * 1024)]
    pub max_body: u64,
}

/// Settings for a long-running service: NATS, logs, metrics, worker loop.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    #[command(flatten)]
    pub nats: NatsArgs,

    /// Address of the HTTP listener for /metrics, /healthz and /readyz.
    #[arg(
        long = "metrics-addr",
        env = "CRAWLQ_METRICS_ADDR",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_addr: SocketAddr,

    /// Log format.
    #[arg(
        long = "log-format",
        env = "CRAWLQ_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// Messages processed at once by this process.
    #[arg(long = "concurrency", env = "CRAWLQ_CONCURRENCY",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: Option<u32>,

    /// Deliveries of one message before it is dead-lettered.
    #[arg(long = "max-deliveries", env = "CRAWLQ_MAX_DELIVERIES", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_deliveries: u32,

    /// Time the server waits for an ack before redelivering (e.g. 60s).
    #[arg(long = "ack-wait", env = "CRAWLQ_ACK_WAIT", default_value = "60s",
          value_parser = parse_duration)]
    pub ack_wait: Duration,

    /// First retry delay; doubles on each delivery up to --retry-max-delay.
    #[arg(long = "retry-base-delay", env = "CRAWLQ_RETRY_BASE_DELAY", default_value = "2s",
          value_parser = parse_duration)]
    pub retry_base_delay: Duration,

    /// Upper bound of the retry delay.
    #[arg(long = "retry-max-delay", env = "CRAWLQ_RETRY_MAX_DELAY", default_value = "5m",
          value_parser = parse_duration)]
    pub retry_max_delay: Duration,

    /// How long a message is retried in place, rather than handed back for
    /// redelivery (which spends one of its deliveries), when the pipeline
    /// itself fails: its results or ack cannot be published (a stream
    /// electing a leader, NATS reconnecting), or its handler failed on
    /// NATS, a bucket or the object store.
    #[arg(long = "outage-patience", env = "CRAWLQ_OUTAGE_PATIENCE", default_value = "60s",
          value_parser = parse_duration)]
    pub outage_patience: Duration,

    /// Time in-flight work may take to finish after SIGTERM.
    #[arg(long = "shutdown-grace", env = "CRAWLQ_SHUTDOWN_GRACE", default_value = "25s",
          value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

/// Where the archive and claim-checked bodies live.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Object store: a folder path, file://, s3://bucket/prefix, gs://, az:// or memory://.
    #[arg(long = "store-url", env = "CRAWLQ_STORE_URL", default_value = crate::store::DEFAULT_STORE_URL)]
    pub store_url: String,
    /// Local folders: how writes are made durable before a message is
    /// acknowledged. `batch`: one shared syncfs for every writer waiting
    /// (group commit); `object`: fsync each object and its directory;
    /// `off`: never (a power cut may lose acknowledged writes). `true` and
    /// `false` mean `batch` and `off`.
    #[arg(
        long = "store-fsync",
        env = "CRAWLQ_STORE_FSYNC",
        default_value = "batch"
    )]
    pub store_fsync: crate::store::Durability,
}

impl StoreArgs {
    /// Opens the configured store (a local folder is created if missing).
    pub fn open(&self) -> Result<crate::store::Store, crate::Error> {
        crate::store::open_with(&self.store_url, self.store_fsync)
    }

    /// Opens the configured store to read it: a local folder that does not
    /// exist is an error that says so, not an empty archive created on
    /// the spot.
    pub fn open_existing(&self) -> Result<crate::store::Store, crate::Error> {
        let url = &self.store_url;
        if !url.contains("://") || url.starts_with("file://") {
            let folder = std::path::Path::new(url.strip_prefix("file://").unwrap_or(url));
            if !folder.is_dir() {
                return Err(crate::Error::Config(format!(
                    "no archive at {}: check --store-url / CRAWLQ_STORE_URL",
                    folder.display()
                )));
            }
        }
        self.open()
    }
}

/// Parses a duration such as `500ms`, `30s`, `5m`, `1h` or `1h30m`.
/// `1G`, `512M`, `64K` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('K' | 'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('G' | 'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size (like 1G, 512M or 1048576)"))?;
    n.checked_mul(mult)
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{s}` is not a usable size"))
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("`{s}` is not a duration like 500ms, 30s, 5m or 1h"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{s}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" | "" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86_400),
            other => {
                return Err(format!(
                    "`{s}`: unknown unit `{other}` (use ms, s, m, h or d)"
                ))
            }
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// A subject prefix is one or more NATS tokens of `[A-Za-z0-9_-]`.
fn parse_prefix(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("`{s}` is not a subject prefix (tokens of letters, digits, `_` or `-`, separated by `.`)"))
    }
}

/// Parses `args` into `T`, naming the environment variable behind any
/// invalid value. Exits the process with clap's usual code on error.
pub fn parse<T: clap::Parser>() -> T {
    match try_parse_from::<T, _, _>(std::env::args_os()) {
        Ok(v) => v,
        Err(e) => e.exit(),
    }
}

/// Like [`parse`], but returns the error; for tests.
pub fn try_parse_from<T, I, S>(args: I) -> Result<T, clap::Error>
where
    T: clap::Parser,
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    let mut cmd = T::command();
    let matches = cmd
        .try_get_matches_from_mut(args)
        .map_err(|e| name_env(&cmd, e))?;
    T::from_arg_matches(&matches).map_err(|e| name_env(&cmd, e))
}

/// Adds "(from environment variable X)" to value errors whose value came
/// from the environment.
fn name_env(cmd: &clap::Command, err: clap::Error) -> clap::Error {
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return err;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let long = arg
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_start_matches('-')
        .to_string();
    let Some(env) = find_env(cmd, &long) else {
        return err;
    };
    if std::env::var_os(&env).is_none() {
        return err;
    }
    let rendered = err.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("invalid value")
        .trim_start_matches("error: ");
    cmd.clone().error(
        ErrorKind::ValueValidation,
        format!("environment variable {env}: {first}"),
    )
}

fn find_env(cmd: &clap::Command, long: &str) -> Option<String> {
    let own = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned());
    own.or_else(|| cmd.get_subcommands().find_map(|sub| find_env(sub, long)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn prefixes_are_validated() {
        assert!(parse_prefix("crawlq").is_ok());
        assert!(parse_prefix("prod.crawlq").is_ok());
        assert!(parse_prefix("a.>").is_err());
        assert!(parse_prefix("a b").is_err());
        assert!(parse_prefix("").is_err());
    }

    /// Every test that parses `CommonArgs` in this binary runs here, in
    /// turn: they read the process environment, and one of them sets a
    /// variable, so running them on parallel threads would race.
    #[test]
    fn parsing_defaults_flags_and_env() {
        let cli: Cli = try_parse_from(["x"]).unwrap();
        assert_eq!(cli.common.nats.url, "nats://127.0.0.1:4222");
        assert_eq!(cli.common.nats.subject_prefix, "crawlq");
        assert_eq!(cli.common.log_format, LogFormat::Text);

        let err = try_parse_from::<Cli, _, _>(["x", "--metrics-addr", "nowhere"]).unwrap_err();
        assert!(err.to_string().contains("--metrics-addr"), "{err}");

        std::env::set_var("CRAWLQ_LOG_FORMAT", "yaml");
        let err = try_parse_from::<Cli, _, _>(["x"]).unwrap_err().to_string();
        std::env::remove_var("CRAWLQ_LOG_FORMAT");
        assert!(
            err.contains("CRAWLQ_LOG_FORMAT"),
            "an invalid env value names its variable: {err}"
        );
    }
}
