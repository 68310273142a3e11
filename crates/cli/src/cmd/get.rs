//! `crawlq get URL|ID [--version N] [--format md|json] [--versions]`.

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
    /// Canonical URL or 16-hex-digit record id.
    target: String,
}

/// Runs `get`.
pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let store = args.store.open()?;
    let at = read::locate(&store, &args.target).await?;
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
    match args.format {
        Format::Md => print!("{}", read::markdown(&store, &at, args.version).await?),
        Format::Json => println!("{}", serde_json::to_string_pretty(&at.json)?),
    }
    Ok(())
}
