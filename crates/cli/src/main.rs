//! `crawlq`: one binary for the three services and the user commands.
//!
//! The binary only wires crates together: each service is a library with a
//! typed config (clap `Args`) and a `run(config, shutdown)` function.

use clap::{Parser, Subcommand};

mod cmd;

/// crawlq archives the web's news as it is published.
#[derive(Debug, Parser)]
#[command(name = "crawlq", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start-up
enum Command {
    /// Run the crawler service: fetch URLs from the intake stream.
    Crawler(crawlq_crawler::Config),
    /// Run the extractor service: turn fetched pages into snapshot records.
    Extractor(crawlq_extractor::Config),
    /// Run the storage service: write snapshot records to object storage.
    Storage(crawlq_storage::Config),
    /// Publish URLs, feeds or sitemaps to the intake subject.
    Submit(cmd::submit::SubmitArgs),
    /// Show streams, consumers, dead letters and stored outcomes.
    Status(cmd::status::StatusArgs),
    /// List or replay dead letters.
    Dlq(cmd::dlq::DlqArgs),
    /// Read a stored record back from the archive.
    #[command(disable_version_flag = true)]
    Get(cmd::get::GetArgs),
    /// Register, list or remove the feeds and sitemaps polled forever.
    Feeds(cmd::feeds::FeedsArgs),
    /// List the edits, removals and restorations the watch found.
    Changes(cmd::changes::ChangesArgs),
    /// Show what changed between two versions of an article.
    Diff(cmd::diff::DiffArgs),
    /// Send archived raw pages back through the current extractor.
    Reextract(cmd::reextract::ReextractArgs),
    /// Extract one HTML file into a snapshot record.
    Extract(cmd::extract::ExtractArgs),
    /// Extract every page of a benchmark directory into predictions JSON.
    ExtractBench(cmd::extract::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli: Cli = crawlq_runtime::config::parse();
    let result = match cli.command {
        Command::Extract(args) => cmd::extract::extract(args),
        Command::ExtractBench(args) => cmd::extract::extract_bench(args),
        Command::Extractor(config) => serve(|stop| crawlq_extractor::run(config, stop)),
        Command::Storage(config) => serve(|stop| crawlq_storage::run(config, stop)),
        Command::Crawler(config) => serve(|stop| crawlq_crawler::run(config, stop)),
        Command::Get(args) => once(cmd::get::get(args)),
        Command::Submit(args) => once(cmd::submit::submit(args)),
        Command::Status(args) => once(cmd::status::status(args)),
        Command::Dlq(args) => once(cmd::dlq::dlq(args)),
        Command::Feeds(args) => once(cmd::feeds::feeds(args)),
        Command::Diff(args) => once(cmd::diff::diff(args)),
        Command::Changes(args) => once(cmd::changes::changes(args)),
        Command::Reextract(args) => once(cmd::reextract::reextract(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crawlq: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a service on a multi-threaded runtime until SIGTERM or SIGINT.
fn serve<F, Fut>(service: F) -> anyhow::Result<()>
where
    F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move { service(crawlq_runtime::shutdown::on_signal()).await })
}

/// Runs a one-shot async command. Its output may go to a pipe that closes
/// early (`crawlq status | head -1`): then it ends quietly, as Unix tools
/// do, instead of panicking on the write.
fn once(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    restore_sigpipe();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(command)
}

/// Gives SIGPIPE its default action back (Rust ignores it, so a write to a
/// closed pipe fails and `println!` panics).
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_DFL at start-up, before
    // any thread is spawned, has no memory-safety preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed_and_lists_every_subcommand() {
        Cli::command().debug_assert();
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .map(|c| c.get_name().to_string())
            .collect();
        for want in [
            "crawler",
            "extractor",
            "storage",
            "submit",
            "status",
            "dlq",
            "get",
            "extract",
            "extract-bench",
            "feeds",
            "diff",
            "changes",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        let get = Cli::try_parse_from(["crawlq", "get", "--version", "2", "0123456789abcdef"]);
        assert!(get.is_ok(), "{get:?}");
    }
}
