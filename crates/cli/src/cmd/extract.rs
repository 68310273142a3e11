//! `crawlq extract` and `crawlq extract-bench`: offline extraction.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use crawlq_extractor::{bench, Extracted, Extractor, Page};
use crawlq_record::render;

/// Output format of `extract`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// The archive's seed format.
    Md,
    /// The full record as JSON.
    Json,
}

/// `crawlq extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// The URL the page was fetched from (resolves links, picks site rules).
    #[arg(long, default_value = "https://example.invalid/article")]
    url: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    format: Format,
    /// Extra site rules (TOML), tried before the built-in ones.
    #[arg(long = "rules-file", env = "CRAWLQ_RULES_FILE")]
    rules_file: Option<PathBuf>,
    /// HTML file (`.html` or `.html.gz`); `-` reads standard input.
    file: PathBuf,
}

/// `crawlq extract-bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Directory of `*.html` / `*.html.gz` pages.
    dir: PathBuf,
    /// Ground truth (`{stem: {"url": ...}}`): production mode, each page
    /// at its real URL with the service's article-or-listing decision.
    #[arg(long)]
    truth: Option<PathBuf>,
}

/// Builds the extractor with optional extra rules.
pub fn extractor(rules_file: Option<&PathBuf>) -> anyhow::Result<Extractor> {
    let mut ex = Extractor::default();
    if let Some(path) = rules_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("CRAWLQ_RULES_FILE {}", path.display()))?;
        ex.rules = crawlq_extractor::rules::Rules::with_extra(&text)?;
    }
    Ok(ex)
}

/// Runs `extract`.
pub fn extract(args: ExtractArgs) -> anyhow::Result<()> {
    let body = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        bench::read_maybe_gz(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let url = url::Url::parse(&args.url).with_context(|| format!("--url {}", args.url))?;
    let ex = extractor(args.rules_file.as_ref())?;
    let page = Page {
        body: &body,
        content_type: None,
        content_language: None,
        url: &url,
        fetched_at: crawlq_runtime::now_ms(),
        hints: None,
    };
    let record = match ex.extract(page)? {
        Extracted::Article(r) => *r,
        Extracted::Listing {
            record: Some(r), ..
        } => *r,
        Extracted::Listing { why, links, .. } => {
            anyhow::bail!(
                "not an article: a listing page with {} same-site links ({why})",
                links.len()
            )
        }
    };
    match args.format {
        Format::Md => print!("{}", render(&record)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&crawlq_record::json::to_json(&record))?
        ),
    }
    Ok(())
}

/// Runs `extract-bench`.
pub fn extract_bench(args: BenchArgs) -> anyhow::Result<()> {
    let urls = match &args.truth {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("--truth {}", path.display()))?;
            let truth: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("--truth {}: not JSON", path.display()))?;
            Some(bench::truth_urls(&truth))
        }
        None => None,
    };
    let run = bench::run(&args.dir, &Extractor::default(), urls.as_ref())
        .with_context(|| format!("reading {}", args.dir.display()))?;
    let secs = run.elapsed.as_secs_f64();
    let mut lost: Vec<_> = run.lost.iter().collect();
    lost.sort();
    eprintln!(
        "extracted {} pages in {:.3} s: {:.1} pages/s (one thread); {} mode; not kept: {}",
        run.pages,
        secs,
        run.pages as f64 / secs.max(1e-9),
        if urls.is_some() {
            "production"
        } else {
            "content-only"
        },
        if lost.is_empty() {
            "none".to_string()
        } else {
            lost.iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!("{}", run.predictions);
    Ok(())
}
