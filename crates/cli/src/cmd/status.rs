//! `crawlq status [--json]`: streams, consumers, dead letters by reason and
//! stored outcomes.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use clap::Args;
use crawlq_proto::v1::{DeadLetter, StoreOutcome, StoredSnapshot};
use crawlq_proto::Message as _;
use crawlq_runtime::config::NatsArgs;
use crawlq_runtime::{Stage, Topology};
use serde_json::json;

/// Messages read from the end of a stream when counting.
const SCAN_LIMIT: u64 = 100_000;

/// `crawlq status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    nats: NatsArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Messages not yet acknowledged by any stage (pending + ack-pending).
pub async fn in_flight(js: &jetstream::Context, topo: &Topology) -> anyhow::Result<u64> {
    let mut total = 0;
    for stage in Stage::ALL {
        let (stream, _) = topo.input_of(stage);
        let s = js.get_stream(&stream).await?;
        match s.consumer_info(topo.consumer(stage)).await {
            Ok(info) => total += info.num_pending + info.num_ack_pending as u64,
            // No consumer yet: whatever is in the stream is waiting.
            Err(_) => total += s.get_info().await?.state.messages,
        }
    }
    Ok(total)
}

/// Messages read from the end of the dead-letter and stored streams for
/// the breakdowns by reason and outcome (totals come from stream info).
const BREAKDOWN_LIMIT: u64 = 10_000;

/// Runs `status`.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let client = crawlq_runtime::nats::connect_command(&args.nats, "crawlq-status").await?;
    let js = jetstream::new(client);
    let topo = Topology::new(args.nats.subject_prefix.clone());
    crawlq_runtime::nats::require_streams(&js, &topo, &args.nats.url, Duration::ZERO).await?;
    let mut stages = Vec::new();
    let mut inputs: Vec<(String, String, String)> = Stage::ALL
        .iter()
        .map(|st| {
            (
                st.as_str().to_string(),
                topo.input_of(*st).0,
                topo.consumer(*st),
            )
        })
        .collect();
    inputs.push((
        "due checks".into(),
        topo.schedules_stream(),
        topo.due_consumer(),
    ));
    for (stage, stream, consumer) in inputs {
        let s = js.get_stream(&stream).await?;
        let messages = s.get_info().await?.state.messages;
        let (pending, ack_pending, redelivered) = match s.consumer_info(consumer).await {
            Ok(i) => (
                i.num_pending,
                i.num_ack_pending as u64,
                i.num_redelivered as u64,
            ),
            Err(_) => (messages, 0, 0),
        };
        stages.push(json!({"stage": stage, "stream": stream, "messages": messages, "pending": pending, "ack_pending": ack_pending, "redelivered": redelivered}));
    }
    // Dead letters per stage, from the stream's subject counts.
    let mut per_stage: BTreeMap<String, u64> = BTreeMap::new();
    let dlq = js.get_stream(topo.dlq_stream()).await?;
    let mut subjects = dlq.info_with_subjects(topo.dlq_all()).await?;
    while let Some(entry) = futures::StreamExt::next(&mut subjects).await {
        let (subject, n) = entry?;
        let stage = subject.rsplit('.').next().unwrap_or_default().to_string();
        *per_stage.entry(stage).or_default() += n as u64;
    }
    let mut dead: BTreeMap<String, u64> = BTreeMap::new();
    for m in scan_last(&js, &topo.dlq_stream(), BREAKDOWN_LIMIT).await? {
        if let Ok(d) = DeadLetter::decode(m.payload) {
            *dead.entry(format!("{}/{}", d.stage, d.reason)).or_insert(0) += 1;
        }
    }
    let mut stored: BTreeMap<String, u64> = BTreeMap::new();
    for m in scan_last(&js, &topo.stored_stream(), BREAKDOWN_LIMIT).await? {
        if let Ok(e) = StoredSnapshot::decode(m.payload) {
            let name = crawlq_record::labels::of::<StoreOutcome>(e.outcome);
            *stored.entry(name).or_insert(0) += 1;
        }
    }
    if args.json {
        crate::cmd::out(&serde_json::to_string_pretty(
            &json!({"stages": stages, "dead_letters_per_stage": per_stage, "dead_letters": dead, "stored": stored}),
        )?);
        return Ok(());
    }
    let header = [
        "STAGE",
        "STREAM",
        "MESSAGES",
        "PENDING",
        "ACK PENDING",
        "REDELIVERED",
    ];
    let rows: Vec<[String; 6]> = stages
        .iter()
        .map(|s| {
            [
                s["stage"].as_str().unwrap_or("").to_string(),
                s["stream"].as_str().unwrap_or("").to_string(),
                s["messages"].to_string(),
                s["pending"].to_string(),
                s["ack_pending"].to_string(),
                s["redelivered"].to_string(),
            ]
        })
        .collect();
    crate::cmd::table(&header, &rows, 2);
    let total: u64 = per_stage.values().sum();
    crate::cmd::out(&format!(
        "\nDEAD LETTERS: {total} ({})",
        per_stage
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    breakdown("by stage/reason, of the latest 10,000", &dead);
    crate::cmd::out("\nSTORED EVENTS");
    breakdown("by outcome, of the latest 10,000", &stored);
    Ok(())
}

fn breakdown(title: &str, counts: &BTreeMap<String, u64>) {
    crate::cmd::out(&format!("  {title}:"));
    if counts.is_empty() {
        crate::cmd::out("    none");
        return;
    }
    let width = counts.keys().map(|k| k.chars().count()).max().unwrap_or(0);
    for (k, v) in counts {
        crate::cmd::out(&format!("    {k:<width$}  {v:>8}"));
    }
}

/// Up to the last [`SCAN_LIMIT`] messages of a stream.
pub async fn scan(
    js: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<Vec<crawlq_runtime::nats::StoredMessage>> {
    scan_last(js, stream, SCAN_LIMIT).await
}

/// Up to the last `n` messages of a stream.
pub async fn scan_last(
    js: &jetstream::Context,
    stream: &str,
    n: u64,
) -> anyhow::Result<Vec<crawlq_runtime::nats::StoredMessage>> {
    let mut reader = crawlq_runtime::nats::StreamReader::last(js, stream, n).await?;
    Ok(reader.read_new().await?)
}
