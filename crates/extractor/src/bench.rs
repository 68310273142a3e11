//! `crawlq extract-bench DIR`: predictions for the article-extraction
//! benchmark, `{file stem: {"articleBody": text}}`, one page at a time on
//! one thread.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::extract::{Extracted, Extractor, Page};

/// Result of a benchmark run.
pub struct BenchRun {
    /// The predictions object.
    pub predictions: Value,
    /// Pages read.
    pub pages: usize,
    /// Time spent extracting (reading files excluded).
    pub elapsed: Duration,
}

/// Reads every `*.html` and `*.html.gz` in `dir` and extracts its text.
pub fn run(dir: &Path, extractor: &Extractor) -> std::io::Result<BenchRun> {
    // Every benchmark page is an article: measure content, not classification.
    let extractor = &Extractor {
        keep_listings: true,
        ..extractor.clone()
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.to_str()
                .is_some_and(|s| s.ends_with(".html") || s.ends_with(".html.gz"))
        })
        .collect();
    files.sort();
    let url = url::Url::parse("https://bench.invalid/article").expect("static url");
    let mut out = Map::new();
    let mut elapsed = Duration::ZERO;
    for path in &files {
        let body = read_maybe_gz(path)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let stem = name
            .trim_end_matches(".gz")
            .trim_end_matches(".html")
            .to_string();
        let started = Instant::now();
        let page = Page {
            body: &body,
            content_type: None,
            content_language: None,
            url: &url,
            fetched_at: 0,
            hints: None,
        };
        let text = match extractor.extract(page) {
            Ok(Extracted::Article(r)) => r.text,
            Ok(Extracted::Listing {
                record: Some(r), ..
            }) => r.text,
            _ => String::new(),
        };
        elapsed += started.elapsed();
        out.insert(stem, json!({ "articleBody": text }));
    }
    Ok(BenchRun {
        predictions: Value::Object(out),
        pages: files.len(),
        elapsed,
    })
}

/// Reads a file, gunzipping `*.gz`.
pub fn read_maybe_gz(path: &Path) -> std::io::Result<Vec<u8>> {
    let raw = std::fs::read(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut out)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}
