//! `crawlq`: one binary for the three services and the user commands.
//!
//! The binary only wires crates together: each service is a library with a
//! typed config (clap `Args`) and a `run(config, shutdown)` function.

use clap::{Parser, Subcommand};

/// crawlq archives the web's news as it is published.
#[derive(Debug, Parser)]
#[command(name = "crawlq", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the crawler service: fetch URLs from the intake stream.
    Crawler,
    /// Run the extractor service: turn fetched pages into snapshot records.
    Extractor,
    /// Run the storage service: write snapshot records to object storage.
    Storage,
    /// Publish URLs, feeds or sitemaps to the intake subject.
    Submit,
    /// Show streams, consumers, dead letters and stored outcomes.
    Status,
    /// List or replay dead letters.
    Dlq,
    /// Read a stored record back from the archive.
    Get,
    /// Extract one HTML file into a snapshot record.
    Extract,
    /// Extract every page of a benchmark directory into predictions JSON.
    ExtractBench,
}

fn main() -> std::process::ExitCode {
    let cli: Cli = crawlq_runtime::config::parse();
    let (name, issue) = match cli.command {
        Command::Crawler => ("crawler", 3),
        Command::Extractor => ("extractor", 4),
        Command::Storage => ("storage", 5),
        Command::Submit => ("submit", 6),
        Command::Status => ("status", 6),
        Command::Dlq => ("dlq", 6),
        Command::Get => ("get", 5),
        Command::Extract => ("extract", 4),
        Command::ExtractBench => ("extract-bench", 4),
    };
    eprintln!("crawlq {name}: not built yet (tracked in issue {issue})");
    std::process::ExitCode::from(2)
}
