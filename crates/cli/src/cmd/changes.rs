//! `crawlq changes [--follow] [--for D] [--until N]`: the edits, removals
//! and restorations the watch found, as they are found.
//!
//! It reads the stored-events stream (`{prefix}.stored`, kept 7 days); the
//! archive keeps the permanent record in `changes/{day}.md` and
//! `changes/feed.atom`.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use clap::Args;
use crawlq_proto::v1::{StoreOutcome, StoredSnapshot};
use crawlq_proto::Message as _;
use crawlq_record::labels::Label;
use crawlq_runtime::config::{parse_duration, NatsArgs};
use crawlq_runtime::nats::StreamReader;
use crawlq_runtime::Topology;

/// `crawlq changes`.
#[derive(Debug, Args)]
pub struct ChangesArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// Only changes found from now on (default: those still in the stream too).
    #[arg(long)]
    follow: bool,
    /// Stop after this long (with --follow; default: until interrupted).
    #[arg(long = "for", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop once this many changes were shown.
    #[arg(long)]
    until: Option<usize>,
}

/// Is this event an edit, a removal or a restoration?
fn is_change(e: &StoredSnapshot) -> bool {
    matches!(
        StoreOutcome::try_from(e.outcome),
        Ok(StoreOutcome::Changed | StoreOutcome::Removed | StoreOutcome::Restored)
    )
}

/// Runs `changes`.
pub async fn changes(args: ChangesArgs) -> anyhow::Result<()> {
    let client = crawlq_runtime::nats::connect_command(&args.nats, "crawlq-changes").await?;
    let js = jetstream::new(client);
    let topo = Topology::new(args.nats.subject_prefix.clone());
    let name = topo.stored_stream();
    let missing = |_| {
        anyhow::anyhow!(
            "no crawlq streams with prefix `{}` on {}",
            args.nats.subject_prefix,
            args.nats.url
        )
    };
    let mut reader = if args.follow {
        StreamReader::from_end(&js, &name).await.map_err(missing)?
    } else {
        StreamReader::from_start(&js, &name)
            .await
            .map_err(missing)?
    };
    let started = Instant::now();
    let mut shown = std::collections::BTreeMap::<&'static str, usize>::new();
    let mut total = 0usize;
    loop {
        for m in reader.read_new().await? {
            let Ok(e) = StoredSnapshot::decode(m.payload) else {
                continue;
            };
            if !is_change(&e) {
                continue;
            }
            let outcome = StoreOutcome::try_from(e.outcome).unwrap_or_default();
            let what = outcome.label();
            let version = if outcome == StoreOutcome::Changed {
                format!(" (version {})", e.version)
            } else {
                String::new()
            };
            crate::cmd::out(&format!(
                "{} {what:<8} {}{version}",
                crawlq_runtime::schedule::rfc3339(m.time_ms),
                crawlq_runtime::clip(&e.url, 300)
            ));
            *shown
                .entry(match outcome {
                    StoreOutcome::Changed => "changed",
                    StoreOutcome::Removed => "removed",
                    _ => "restored",
                })
                .or_default() += 1;
            total += 1;
        }
        let done = args.until.is_some_and(|n| total >= n)
            || !args.follow && args.duration.is_none()
            || args.duration.is_some_and(|d| started.elapsed() >= d);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let count = |k| shown.get(k).copied().unwrap_or(0);
    eprintln!(
        "changed {}, removed {}, restored {}",
        count("changed"),
        count("removed"),
        count("restored")
    );
    if let Some(n) = args.until {
        if total < n {
            anyhow::bail!("saw {total} of the {n} changes awaited");
        }
    }
    Ok(())
}
