//! `crawlq get URL|ID [--version N] [--format md|json] [--versions] [--raw]`.

use clap::Args;
use crawlq_runtime::config::StoreArgs;
use crawlq_storage::read;

use crate::cmd::extract::Format;

/// `crawlq get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Version number (1 is the first); the latest by default.
    #[arg(long)]
    version: Option<u32>,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    format: Format,
    /// List the versions instead of printing one.
    #[arg(long)]
    versions: bool,
    /// Print the raw page of the version's fetch, as the extractor read it
    /// (from the WARC archive, or a `raw/` object of an older archive).
    #[arg(long, conflicts_with = "versions")]
    raw: bool,
    /// Canonical URL or 16-hex-digit record id.
    target: String,
}

/// A URL as the crawler normalises it (tracking parameters and fragment
/// dropped), so what a user pastes finds what was archived; ids and
/// anything unparsable are passed through.
pub fn normalised(target: &str) -> String {
    use crawlq_crawler::normalize::{default_strip, normalize};
    if !target.contains("://") {
        return target.to_string();
    }
    let strip = default_strip();
    normalize(target, &strip).map_or_else(|_| target.to_string(), |u| u.to_string())
}

/// The comment line that opens a removed article's record.
pub fn removal_note(json: &serde_json::Value) -> Option<String> {
    let t = crawlq_record::article::Tracking::of(json).ok()?;
    if t.status != crawlq_record::article::Status::Removed {
        return None;
    }
    let at = t
        .removed_at
        .map_or("an unknown time".into(), crawlq_runtime::schedule::rfc3339);
    let evidence: Vec<String> = t
        .removal_evidence
        .iter()
        .map(|c| {
            format!(
                "{} at {}",
                if c.status > 0 {
                    format!("http {}", c.status)
                } else {
                    c.detail.clone()
                },
                crawlq_runtime::schedule::rfc3339(c.at)
            )
        })
        .collect();
    Some(format!(
        "<!-- removed from its site at {at}; evidence: {} -->",
        evidence.join(", ")
    ))
}

/// Runs `get`.
pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let store = args.store.open_existing()?;
    let target = normalised(&args.target);
    let at = read::locate(&store, &target).await?;
    if args.versions {
        for v in at.versions() {
            println!(
                "{}\t{}\t{}\t{}",
                v.version,
                v.fetched_at,
                &v.content_sha256[..16],
                v.key
            );
        }
        return Ok(());
    }
    if args.raw {
        let versions = at.versions();
        let v = match args.version {
            Some(n) => versions.iter().find(|v| v.version == n),
            None => versions.iter().max_by_key(|v| (v.fetched_at, v.version)),
        }
        .ok_or_else(|| anyhow::anyhow!("`{}` has no such version", at.id))?;
        let page = read::raw_page(&store, &at.host, &at.id, &versions, v.fetched_at)
            .await?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "no raw page was kept for version {} of `{}`",
                    v.version,
                    at.id
                )
            })?;
        use std::io::Write;
        std::io::stdout().write_all(&page)?;
        return Ok(());
    }
    match args.format {
        Format::Md => {
            if let Some(note) = removal_note(&at.json) {
                println!("{note}");
            }
            print!("{}", read::markdown(&store, &at, args.version).await?)
        }
        Format::Json => match args.version {
            None => println!("{}", serde_json::to_string_pretty(&at.json)?),
            Some(n) => {
                let md = read::markdown(&store, &at, Some(n)).await?;
                let (published_at, title, url) =
                    crawlq_record::parse_header(&md).unwrap_or_default();
                let html = md
                    .split_once("\n------\n\n")
                    .map_or("", |(_, b)| b)
                    .trim_end();
                let v = at.versions().into_iter().find(|v| v.version == n);
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "id": at.id, "version": n, "url": url, "title": title,
                        "published_at": published_at, "fetched_at": v.as_ref().map(|v| v.fetched_at),
                        "key": v.map(|v| v.key), "content_html": html,
                    }))?
                )
            }
        },
    }
    Ok(())
}
