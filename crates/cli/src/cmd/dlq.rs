//! `crawlq dlq list` and `crawlq dlq replay`.

use async_nats::jetstream;
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
        /// Only this stage (crawler, extractor, storage).
        #[arg(long)]
        stage: Option<String>,
        /// Only this reason.
        #[arg(long)]
        reason: Option<String>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back on their original subject, then remove them.
    Replay {
        /// Only this stage.
        #[arg(long)]
        stage: Option<String>,
        /// Only this reason.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// Runs `dlq`.
pub async fn dlq(args: DlqArgs) -> anyhow::Result<()> {
    let client = crawlq_runtime::nats::connect_command(&args.nats, "crawlq-dlq").await?;
    let js = jetstream::new(client);
    let topo = Topology::new(args.nats.subject_prefix.clone());
    let (stage, reason, json_out, replay) = match &args.command {
        DlqCommand::List {
            stage,
            reason,
            json,
        } => (stage.clone(), reason.clone(), *json, false),
        DlqCommand::Replay { stage, reason } => (stage.clone(), reason.clone(), false, true),
    };
    let letters: Vec<(u64, DeadLetter)> = scan(&js, &topo.dlq_stream())
        .await?
        .into_iter()
        .filter_map(|m| DeadLetter::decode(m.payload).ok().map(|d| (m.seq, d)))
        .filter(|(_, d)| {
            stage.as_ref().is_none_or(|s| &d.stage == s)
                && reason.as_ref().is_none_or(|r| &d.reason == r)
        })
        .collect();
    if replay {
        return replay_letters(&js, &topo, letters).await;
    }
    for (seq, d) in &letters {
        if json_out {
            println!(
                "{}",
                json!({"seq": seq, "stage": d.stage, "reason": d.reason, "url": d.url, "error": d.error, "deliveries": d.delivery_count, "subject": d.original_subject, "failed_at": d.failed_at})
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
    Ok(())
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
