//! `crawlq dlq list` and `crawlq dlq replay`.

use async_nats::jetstream;
use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use crawlq_proto::v1::DeadLetter;
use crawlq_proto::Message as _;
use crawlq_runtime::config::NatsArgs;
use crawlq_runtime::Topology;
use serde_json::json;

use crate::cmd::status::scan;

/// `crawlq dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(flatten)]
    nats: NatsArgs,
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// List dead letters.
    List {
        #[command(flatten)]
        filter: Filter,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back on their original subject, then remove them.
    /// Reasons that cannot succeed as they are (robots_disallowed,
    /// http_not_found...) are skipped unless named with --reason or --all.
    Replay {
        #[command(flatten)]
        filter: Filter,
        /// Say what would be replayed, and replay nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replay every reason, even those that cannot succeed as they are.
        #[arg(long)]
        all: bool,
    },
}

/// Which dead letters.
#[derive(Debug, Args)]
struct Filter {
    /// Only this stage.
    #[arg(long, value_parser = ["crawler", "extractor", "storage"])]
    stage: Option<String>,
    /// Only this reason (one of the codes in the README's reasons).
    #[arg(long, value_parser = known_reason)]
    reason: Option<String>,
    /// Only these stream sequences (as `dlq list` shows them).
    #[arg(long, value_delimiter = ',')]
    seq: Vec<u64>,
    /// At most this many.
    #[arg(long)]
    limit: Option<usize>,
}

/// Every reason code of every stage, and whether a replay can succeed as
/// it is.
fn reasons() -> impl Iterator<Item = (&'static str, bool)> {
    crawlq_crawler::error::REASONS
        .iter()
        .chain(crawlq_extractor::error::REASONS)
        .chain(crawlq_storage::error::REASONS)
        .copied()
        .chain([(crawlq_runtime::settle::MAX_DELIVERIES, true)])
}

fn known_reason(s: &str) -> Result<String, String> {
    if reasons().any(|(r, _)| r == s) {
        return Ok(s.to_string());
    }
    let mut all: Vec<&str> = reasons().map(|(r, _)| r).collect();
    all.sort_unstable();
    all.dedup();
    Err(format!("unknown reason; one of: {}", all.join(", ")))
}

/// Can a message dead-lettered for `reason` succeed if replayed as it is?
fn replayable(reason: &str) -> bool {
    reasons().any(|(r, ok)| r == reason && ok)
}

impl Filter {
    fn keeps(&self, seq: u64, d: &DeadLetter) -> bool {
        self.stage.as_ref().is_none_or(|s| &d.stage == s)
            && self.reason.as_ref().is_none_or(|r| &d.reason == r)
            && (self.seq.is_empty() || self.seq.contains(&seq))
    }
}

/// Runs `dlq`.
pub async fn dlq(args: DlqArgs) -> anyhow::Result<()> {
    let client = crawlq_runtime::nats::connect_command(&args.nats, "crawlq-dlq").await?;
    let js = jetstream::new(client);
    let topo = Topology::new(args.nats.subject_prefix.clone());
    let filter = match &args.command {
        DlqCommand::List { filter, .. } | DlqCommand::Replay { filter, .. } => filter,
    };
    let mut letters: Vec<(u64, DeadLetter)> = scan(&js, &topo.dlq_stream())
        .await?
        .into_iter()
        .filter_map(|m| DeadLetter::decode(m.payload).ok().map(|d| (m.seq, d)))
        .filter(|(seq, d)| filter.keeps(*seq, d))
        .collect();
    match &args.command {
        DlqCommand::List { json, .. } => {
            letters.truncate(filter.limit.unwrap_or(usize::MAX));
            list(&letters, *json);
            Ok(())
        }
        DlqCommand::Replay { dry_run, all, .. } => {
            let (go, skipped): (Vec<_>, Vec<_>) = letters
                .into_iter()
                .partition(|(_, d)| *all || filter.reason.is_some() || replayable(&d.reason));
            let mut go = go;
            go.truncate(filter.limit.unwrap_or(usize::MAX));
            if !skipped.is_empty() {
                let mut by: BTreeMap<&str, usize> = BTreeMap::new();
                for (_, d) in &skipped {
                    *by.entry(d.reason.as_str()).or_default() += 1;
                }
                eprintln!(
                    "skipped {} that cannot succeed as they are ({}); name one with --reason, or use --all",
                    skipped.len(),
                    by.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ")
                );
            }
            if *dry_run {
                list(&go, false);
                println!("would replay {}", go.len());
                return Ok(());
            }
            replay_letters(&js, &topo, go).await
        }
    }
}

fn list(letters: &[(u64, DeadLetter)], json_out: bool) {
    for (seq, d) in letters {
        if json_out {
            crate::cmd::out(
                &json!({"seq": seq, "stage": d.stage, "reason": d.reason, "url": d.url, "error": d.error, "deliveries": d.delivery_count, "subject": d.original_subject, "failed_at": d.failed_at})
                    .to_string(),
            );
        } else {
            let err: String = d.error.chars().take(80).collect();
            crate::cmd::out(&format!(
                "{seq:>7}  {:<9} {:<26} {}  {}",
                d.stage,
                d.reason,
                crawlq_runtime::printable(&d.url),
                crawlq_runtime::printable(&err)
            ));
        }
    }
    if !json_out {
        eprintln!("{} dead letters", letters.len());
    }
}

async fn replay_letters(
    js: &jetstream::Context,
    topo: &Topology,
    letters: Vec<(u64, DeadLetter)>,
) -> anyhow::Result<()> {
    let stream = js.get_stream(topo.dlq_stream()).await?;
    let mut replayed = 0;
    for (seq, d) in letters {
        let mut headers = async_nats::HeaderMap::new();
        for (k, v) in &d.headers {
            headers.insert(k.as_str(), v.as_str());
        }
        // Acknowledged by the stream before the dead letter is removed.
        js.publish_with_headers(
            d.original_subject.clone(),
            headers,
            d.payload.clone().into(),
        )
        .await?
        .await?;
        stream.delete_message(seq).await?;
        replayed += 1;
    }
    println!("replayed {replayed}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_known_and_classed() {
        assert!(known_reason("robots_disallowed").is_ok());
        let err = known_reason("robots_dissallowed").unwrap_err();
        assert!(err.contains("robots_disallowed"), "{err}");
        assert!(replayable("network_error") && replayable("max_deliveries"));
        assert!(!replayable("robots_disallowed") && !replayable("http_not_found"));
    }
}
