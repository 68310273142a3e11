//! `crawlq extract-bench DIR [--truth GROUND_TRUTH]`: predictions for the
//! article-extraction benchmark, `{file stem: {"articleBody", "title",
//! "published", "outcome"}}`, one page at a time on one thread.
//!
//! With a ground truth the run is in production mode: each page is given
//! its real URL and the service's own article-or-listing decision is made,
//! so a page the service would not keep scores as empty. Without one every
//! page is taken as an article at a placeholder URL (content only).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use crawlq_proto::v1::{DateSource, SnapshotRecord};
use serde_json::{json, Map, Value};

use crawlq_runtime::Classify;

use crate::extract::{Extracted, Extractor, Page};

/// Result of a benchmark run.
pub struct BenchRun {
    /// The predictions object.
    pub predictions: Value,
    /// Pages read.
    pub pages: usize,
    /// Pages the service would not keep as articles, by outcome.
    pub lost: HashMap<String, usize>,
    /// Time spent extracting (reading files excluded).
    pub elapsed: Duration,
}

/// Page URLs by file stem, from a ground-truth file (`{stem: {"url": ...}}`).
pub fn truth_urls(truth: &Value) -> HashMap<String, url::Url> {
    truth
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), url::Url::parse(v.get("url")?.as_str()?).ok()?)))
        .collect()
}

/// Reads every `*.html` and `*.html.gz` in `dir` and extracts it. `urls`
/// (production mode) gives each stem its real URL.
pub fn run(
    dir: &Path,
    extractor: &Extractor,
    urls: Option<&HashMap<String, url::Url>>,
) -> std::io::Result<BenchRun> {
    let content_only = Extractor {
        keep_listings: true,
        ..extractor.clone()
    };
    let extractor = if urls.is_some() {
        extractor
    } else {
        &content_only
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
    let placeholder = url::Url::parse("https://bench.invalid/article").expect("static url");
    let mut out = Map::new();
    let mut lost = HashMap::new();
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
        let url = urls.and_then(|u| u.get(&stem)).unwrap_or(&placeholder);
        let started = Instant::now();
        let page = Page {
            body: &body,
            content_type: None,
            content_language: None,
            url,
            fetched_at: crawlq_runtime::now_ms(),
            hints: None,
        };
        let result = extractor.extract(page);
        elapsed += started.elapsed();
        let (record, outcome) = match result {
            Ok(Extracted::Article(r)) => (Some(r), "article".to_string()),
            Ok(Extracted::Listing {
                record: Some(r), ..
            }) => (Some(r), "listing".to_string()),
            Ok(Extracted::Listing {
                record: None, why, ..
            }) => (None, format!("listing: {why}")),
            Err(e) => (None, format!("{}: {e}", e.reason())),
        };
        if record.is_none() {
            let kind = outcome.split(':').next().unwrap_or_default().to_string();
            *lost.entry(kind).or_insert(0) += 1;
        }
        out.insert(stem, prediction(record.as_deref(), &outcome));
    }
    Ok(BenchRun {
        predictions: Value::Object(out),
        pages: files.len(),
        lost,
        elapsed,
    })
}

/// One page's prediction: body, title and, when the page gave one, the
/// publication time in RFC 3339 with the page's own offset.
fn prediction(record: Option<&SnapshotRecord>, outcome: &str) -> Value {
    let Some(r) = record else {
        return json!({ "articleBody": "", "outcome": outcome });
    };
    let mut v = json!({ "articleBody": r.text, "title": r.title, "outcome": outcome });
    if r.published_at_source != DateSource::FetchTime as i32 {
        v["published"] = json!(crawlq_record::json::published_rfc3339(r));
        v["published_source"] = json!(crawlq_record::labels::of::<DateSource>(
            r.published_at_source
        ));
    }
    if r.modified_at > 0 {
        v["modified"] = json!(crawlq_record::json::rfc3339(r.modified_at, None));
    }
    v
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
