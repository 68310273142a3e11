//! `crawlq feeds add|list|remove`: the feeds and sitemaps the running
//! services poll forever, each at its own interval.
//!
//! The list lives in the `{prefix}_feeds` bucket; each feed's next poll is
//! one schedule the NATS server keeps (see `crawlq_runtime::schedule`), so
//! no cron is needed and polls survive restarts of every process.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use clap::{Args, Subcommand};
use crawlq_crawler::normalize::{default_strip, normalize};
use crawlq_crawler::watch::{
    feed_id, parse_feeds_file, remove_feed, schedule_poll, sync_feeds, FeedEntry, FEEDS_BUCKET,
};
use crawlq_runtime::config::{parse_duration, NatsArgs};
use crawlq_runtime::schedule::rfc3339;
use crawlq_runtime::Topology;
use futures::StreamExt;

/// `crawlq feeds`.
#[derive(Debug, Args)]
pub struct FeedsArgs {
    #[command(flatten)]
    nats: NatsArgs,
    #[command(subcommand)]
    command: FeedsCommand,
}

#[derive(Debug, Subcommand)]
enum FeedsCommand {
    /// Register a feed (or, with --sitemap, a sitemap) to poll forever.
    Add {
        /// Feed or sitemap URL.
        #[arg(value_name = "URL")]
        feed: String,
        /// Poll interval (`1s` .. `7d`).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        every: Duration,
        /// The URL is a sitemap or sitemap index.
        #[arg(long)]
        sitemap: bool,
    },
    /// List registered feeds: URL, interval, last poll, last outcome, next poll.
    List {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Make the registry hold exactly the feeds of a file (`URL [INTERVAL]
    /// [sitemap]` per line); feeds added by hand stay.
    Sync {
        /// The feeds file.
        file: std::path::PathBuf,
    },
    /// Stop polling a feed.
    Remove {
        /// Feed or sitemap URL, as registered.
        #[arg(value_name = "URL")]
        feed: String,
    },
}

/// Runs `feeds`.
pub async fn feeds(args: FeedsArgs) -> anyhow::Result<()> {
    let client = crawlq_runtime::nats::connect_command(&args.nats, "crawlq-feeds").await?;
    let js = jetstream::new(client);
    let topo = Topology::new(args.nats.subject_prefix.clone());
    let bucket = js.get_key_value(topo.bucket(FEEDS_BUCKET)).await.map_err(|_| {
        anyhow::anyhow!(
            "no crawlq feeds bucket with prefix `{}` on {}: start the services first (`make up`), or check --subject-prefix",
            args.nats.subject_prefix,
            args.nats.url
        )
    })?;
    match args.command {
        FeedsCommand::Add {
            feed,
            every,
            sitemap,
        } => add(&js, &topo, &bucket, &feed, every, sitemap).await,
        FeedsCommand::List { json } => list(&bucket, json).await,
        FeedsCommand::Remove { feed } => remove(&js, &topo, &bucket, &feed).await,
        FeedsCommand::Sync { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let lines = parse_feeds_file(&text, Duration::from_secs(3600))
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let strip = default_strip();
            let done = sync_feeds(&js, &topo, &bucket, &lines, &strip)
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            println!(
                "{} feeds in {}: added {}, updated {}, removed {}",
                lines.len(),
                file.display(),
                done.added.len(),
                done.updated.len(),
                done.removed.len()
            );
            Ok(())
        }
    }
}

async fn add(
    js: &jetstream::Context,
    topo: &Topology,
    bucket: &kv::Store,
    raw: &str,
    every: Duration,
    sitemap: bool,
) -> anyhow::Result<()> {
    if every < Duration::from_secs(1) {
        anyhow::bail!("--every must be at least 1s");
    }
    let strip = default_strip();
    let url = normalize(raw, &strip)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let now = crawlq_runtime::now_ms();
    let id = feed_id(&url);
    let entry = match bucket.get(&id).await? {
        Some(old) => FeedEntry {
            every_ms: every.as_millis() as u64,
            kind: kind_of(sitemap).into(),
            next_poll_at: Some(now),
            ..serde_json::from_slice(&old).unwrap_or_else(|_| fresh(&url, every, sitemap, now))
        },
        None => fresh(&url, every, sitemap, now),
    };
    bucket
        .put(&id, Bytes::from(serde_json::to_vec(&entry)?))
        .await
        .context("writing the feed registry")?;
    // The first poll now; each poll schedules the next.
    crawlq_runtime::worker::publish_all(js, vec![schedule_poll(topo, &entry, now)])
        .await
        .map_err(|e| anyhow::anyhow!("scheduling the first poll: {e}"))?;
    println!(
        "registered {url} ({}), polled every {}; first poll now",
        entry.kind,
        human(entry.every_ms)
    );
    Ok(())
}

fn kind_of(sitemap: bool) -> &'static str {
    if sitemap {
        "sitemap"
    } else {
        "feed"
    }
}

fn fresh(url: &str, every: Duration, sitemap: bool, now: i64) -> FeedEntry {
    FeedEntry::new(
        url.to_string(),
        kind_of(sitemap),
        every.as_millis() as u64,
        now,
        false,
    )
}

/// Every registered feed, by URL.
pub async fn entries(bucket: &kv::Store) -> anyhow::Result<Vec<FeedEntry>> {
    let mut keys = bucket.keys().await?;
    let mut out = Vec::new();
    while let Some(key) = keys.next().await {
        if let Some(value) = bucket.get(key?).await? {
            if let Ok(entry) = serde_json::from_slice::<FeedEntry>(&value) {
                out.push(entry);
            }
        }
    }
    out.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(out)
}

async fn list(bucket: &kv::Store, json: bool) -> anyhow::Result<()> {
    let entries = entries(bucket).await?;
    if json {
        for e in &entries {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(());
    }
    let when = |t: Option<i64>| t.map_or("-".to_string(), rfc3339);
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            [
                e.url.clone(),
                human(e.every_ms),
                when(e.last_poll_at),
                if e.last_outcome.is_empty() {
                    "-".into()
                } else {
                    e.last_outcome.clone()
                },
                when(e.next_poll_at),
            ]
        })
        .collect();
    crate::cmd::table(
        &["URL", "EVERY", "LAST POLL", "LAST OUTCOME", "NEXT POLL"],
        &rows,
        5,
    );
    if rows.is_empty() {
        eprintln!("no feeds registered (crawlq feeds add URL)");
    }
    Ok(())
}

async fn remove(
    js: &jetstream::Context,
    topo: &Topology,
    bucket: &kv::Store,
    raw: &str,
) -> anyhow::Result<()> {
    let strip = default_strip();
    let url = normalize(raw, &strip)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();
    let id = feed_id(&url);
    if bucket.get(&id).await?.is_none() {
        anyhow::bail!("{url} is not registered (crawlq feeds list shows what is)");
    }
    remove_feed(js, topo, bucket, &id)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("removed {url}");
    Ok(())
}

/// Milliseconds as the shortest exact duration: `2s`, `90m`, `1h`, `3d`.
pub fn human(ms: u64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(human(3_600_000), "1h");
        assert_eq!(human(2_000), "2s");
        assert_eq!(human(5_400_000), "90m");
        assert_eq!(human(1_500), "1500ms");
    }
}
