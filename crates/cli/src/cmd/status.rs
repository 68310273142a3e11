//! `crawlq status [--json]`: streams, consumers, dead letters by reason and
//! stored outcomes.

use std::collections::BTreeMap;

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

/// Runs `status`.
pub async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let client = crawlq_runtime::nats::connect_command(&args.nats, "crawlq-status").await?;
    let js = jetstream::new(client);
    let topo = Topology::new(args.nats.subject_prefix.clone());
    let mut stages = Vec::new();
    for stage in Stage::ALL {
        let (stream, _) = topo.input_of(stage);
        let s = js.get_stream(&stream).await?;
        let messages = s.get_info().await?.state.messages;
        let (pending, ack_pending, redelivered) = match s.consumer_info(topo.consumer(stage)).await
        {
            Ok(i) => (
                i.num_pending,
                i.num_ack_pending as u64,
                i.num_redelivered as u64,
            ),
            Err(_) => (messages, 0, 0),
        };
        stages.push(json!({"stage": stage.as_str(), "stream": stream, "messages": messages, "pending": pending, "ack_pending": ack_pending, "redelivered": redelivered}));
    }
    let mut dead: BTreeMap<String, u64> = BTreeMap::new();
    for m in scan(&js, &topo.dlq_stream()).await? {
        if let Ok(d) = DeadLetter::decode(m.payload) {
            *dead.entry(format!("{}/{}", d.stage, d.reason)).or_insert(0) += 1;
        }
    }
    let mut stored: BTreeMap<String, u64> = BTreeMap::new();
    for m in scan(&js, &topo.stored_stream()).await? {
        if let Ok(e) = StoredSnapshot::decode(m.payload) {
            let name = crawlq_record::labels::of::<StoreOutcome>(e.outcome);
            *stored.entry(name).or_insert(0) += 1;
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"stages": stages, "dead_letters": dead, "stored": stored})
            )?
        );
        return Ok(());
    }
    println!(
        "{:<10} {:<22} {:>9} {:>9} {:>12} {:>12}",
        "STAGE", "STREAM", "MESSAGES", "PENDING", "ACK PENDING", "REDELIVERED"
    );
    for s in &stages {
        println!(
            "{:<10} {:<22} {:>9} {:>9} {:>12} {:>12}",
            s["stage"].as_str().unwrap_or(""),
            s["stream"].as_str().unwrap_or(""),
            s["messages"],
            s["pending"],
            s["ack_pending"],
            s["redelivered"]
        );
    }
    println!("\nDEAD LETTERS (stage/reason)");
    if dead.is_empty() {
        println!("  none");
    }
    for (k, v) in &dead {
        println!("  {k:<40} {v:>8}");
    }
    println!("\nSTORED (events by outcome)");
    if stored.is_empty() {
        println!("  none");
    }
    for (k, v) in &stored {
        println!("  {k:<40} {v:>8}");
    }
    Ok(())
}

/// Up to the last [`SCAN_LIMIT`] messages of a stream.
pub async fn scan(
    js: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<Vec<crawlq_runtime::nats::StoredMessage>> {
    let mut reader = crawlq_runtime::nats::StreamReader::last(js, stream, SCAN_LIMIT).await?;
    Ok(reader.read_new().await?)
}
