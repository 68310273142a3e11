//! `crawlq reextract [--host H] [--since DATE] [--dry-run]`: archived raw
//! pages back through the current extractor, so the archive improves
//! whenever the extractor does.
//!
//! For each archived article (of one host, or every host), the raw page of
//! its latest version is published to the extractor's subject as it was
//! fetched (same URL, same fetch time), inline or, when too large for one
//! message, by claim check. The extractor marks what it reads as a
//! re-extraction; storage keeps it as a new version only when the record
//! changed (title or text), recording the extractor version and the cause,
//! and never counts it as an edit of the article or a check of it.

use std::collections::BTreeMap;

use async_nats::jetstream;
use clap::Args;
use crawlq_proto::v1::{BodyEncoding, CrawlRequest, FetchedPage, Origin, ResponseHeaders, UrlKind};
use crawlq_record::article::VersionEntry;
use crawlq_runtime::config::{NatsArgs, StoreArgs};
use crawlq_runtime::{Outgoing, Topology};
use crawlq_storage::layout;
use object_store::path::Path;
use object_store::ObjectStoreExt;

/// `crawlq reextract`.
#[derive(Debug, Args)]
pub struct ReextractArgs {
    #[command(flatten)]
    nats: NatsArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Only this host's articles (as archived, e.g. `www.rfi.fr`).
    #[arg(long)]
    host: Option<String>,
    /// Only articles whose latest version was fetched on or after this day
    /// (`2024-03-01`) or time (RFC 3339).
    #[arg(long, value_parser = parse_since)]
    since: Option<i64>,
    /// List what would be sent, and send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// A day or an RFC 3339 time, as Unix ms.
fn parse_since(s: &str) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| {
            d.and_time(chrono::NaiveTime::MIN)
                .and_utc()
                .timestamp_millis()
        })
        .map_err(|_| format!("`{s}` is neither a day (2024-03-01) nor an RFC 3339 time"))
}

/// One archived article to read again.
struct Target {
    id: String,
    host: String,
    url: String,
    fetched_url: String,
    fetched_at: i64,
    versions: Vec<VersionEntry>,
}

/// Runs `reextract`.
pub async fn reextract(args: ReextractArgs) -> anyhow::Result<()> {
    let store = args.store.open_existing()?;
    let prefix = match &args.host {
        Some(h) => format!("articles/{}", layout::host_segment(h)),
        None => "articles".to_string(),
    };
    let keys: Vec<String> = crawlq_storage::read::keys(&store, &prefix)
        .await?
        .into_iter()
        .filter(|k| k.ends_with(".json"))
        .collect();
    let mut targets = Vec::new();
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    for key in keys {
        let bytes = store
            .inner
            .get(&Path::from(key.as_str()))
            .await?
            .bytes()
            .await?;
        let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            *skipped.entry("unreadable JSON").or_default() += 1;
            continue;
        };
        let s = |k: &str| {
            doc.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let versions: Vec<VersionEntry> =
            serde_json::from_value(doc.get("versions").cloned().unwrap_or_default())
                .unwrap_or_default();
        let Some(latest) = versions.iter().max_by_key(|v| (v.fetched_at, v.version)) else {
            *skipped.entry("no versions").or_default() += 1;
            continue;
        };
        if args.since.is_some_and(|since| latest.fetched_at < since) {
            continue;
        }
        let fetched_at = latest.fetched_at;
        targets.push(Target {
            id: s("id"),
            host: s("host"),
            url: s("url"),
            fetched_url: s("fetched_url"),
            fetched_at,
            versions,
        });
    }
    targets.sort_by(|a, b| (&a.host, &a.id).cmp(&(&b.host, &b.id)));

    let js = if args.dry_run {
        None
    } else {
        let client = crawlq_runtime::nats::connect_command(&args.nats, "crawlq-reextract").await?;
        let js = jetstream::new(client.clone());
        let topo = Topology::new(args.nats.subject_prefix.clone());
        crawlq_runtime::nats::require_streams(
            &js,
            &topo,
            &args.nats.url,
            std::time::Duration::from_secs(2),
        )
        .await?;
        let budget = crawlq_runtime::nats::max_payload(&client).saturating_sub(64 * 1024);
        Some((js, topo, budget))
    };
    let mut sent = 0usize;
    // Published in batches: PubAcks awaited together, bodies not all held.
    let mut batch = Vec::new();
    for t in &targets {
        let raw = crawlq_storage::read::raw_page(&store, &t.host, &t.id, &t.versions, t.fetched_at)
            .await?;
        let Some(raw) = raw else {
            *skipped.entry("no raw page archived").or_default() += 1;
            continue;
        };
        let Some((js, topo, budget)) = &js else {
            crate::cmd::out(&format!(
                "would reextract {}\t{}\t{}",
                t.id,
                crawlq_runtime::schedule::rfc3339(t.fetched_at),
                t.url
            ));
            sent += 1;
            continue;
        };
        let page = fetched_page(t, raw, &store, *budget).await?;
        let msg_id = page
            .request
            .as_ref()
            .map(|r| r.request_id.clone())
            .unwrap_or_default();
        batch.push(Outgoing::protobuf(topo.fetched(), &page).with_msg_id(msg_id));
        if batch.len() >= PUBLISH_BATCH {
            sent += publish(js, std::mem::take(&mut batch)).await?;
        }
    }
    if let Some((js, _, _)) = &js {
        sent += publish(js, batch).await?;
    }
    let verb = if args.dry_run { "would send" } else { "sent" };
    let skips: Vec<String> = skipped.iter().map(|(r, n)| format!("{n} {r}")).collect();
    crate::cmd::out(&format!(
        "{verb} {sent} archived pages to the extractor{}",
        if skips.is_empty() {
            String::new()
        } else {
            format!("; skipped {}", skips.join(", "))
        }
    ));
    Ok(())
}

/// Pages published per batch of PubAcks.
const PUBLISH_BATCH: usize = 64;

/// Publishes a batch; the number the stream acknowledged.
async fn publish(js: &jetstream::Context, batch: Vec<Outgoing>) -> anyhow::Result<usize> {
    let n = crawlq_runtime::worker::publish_all(js, batch)
        .await
        .map_err(|e| anyhow::anyhow!("publish to the extractor not acknowledged: {e}"))?;
    Ok(n as usize)
}

/// The archived page as the crawler would have handed it on: zstd, and,
/// too large for one message, by claim check.
async fn fetched_page(
    t: &Target,
    decoded: Vec<u8>,
    store: &crawlq_runtime::store::Store,
    budget: usize,
) -> anyhow::Result<FetchedPage> {
    let url = if t.fetched_url.is_empty() {
        t.url.clone()
    } else {
        t.fetched_url.clone()
    };
    let request_id = crawlq_record::record_id(&format!(
        "reextract:{}:{}:{}",
        t.id,
        t.fetched_at,
        crawlq_extractor::extract::EXTRACTOR_VERSION
    ));
    let decoded_len = decoded.len() as u64;
    let raw = bytes::Bytes::from(zstd::bulk::compress(
        &decoded,
        crawlq_proto::BODY_ZSTD_LEVEL,
    )?);
    let mut page = FetchedPage {
        request: Some(CrawlRequest {
            url: url.clone(),
            request_id: request_id.clone(),
            submitted_at: crawlq_runtime::now_ms(),
            kind: UrlKind::Page as i32,
            origin: Origin::Reextract as i32,
            force: true,
            ..Default::default()
        }),
        final_url: url,
        status: 200,
        headers: Some(ResponseHeaders {
            content_type: "text/html".into(),
            ..Default::default()
        }),
        fetched_at: t.fetched_at,
        body_encoding: BodyEncoding::Zstd as i32,
        body_len: decoded_len,
        ..Default::default()
    };
    if raw.len() <= budget {
        page.body = raw.to_vec();
    } else {
        let key = format!(
            "{}reextract/{}-{}.zst",
            crawlq_runtime::store::CLAIMS_PREFIX,
            request_id,
            t.fetched_at
        );
        crawlq_runtime::store::put_claim(store, &key, raw).await?;
        page.body_key = key;
    }
    Ok(page)
}
