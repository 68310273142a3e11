//! The extractor stage: `FetchedPage` in; `SnapshotRecord`s and new
//! `CrawlRequest`s out.
//!
//! Parsing runs on the blocking pool, at most one page per core at a time,
//! within a time budget; a page over budget is dead-lettered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crawlq_proto::v1::{
    BodyEncoding, CheckObservation, CheckOutcome, CrawlRequest, FeedHints, FetchedPage, Origin,
    ResponseHeaders, RevisitTarget, SnapshotRecord, UrlKind,
};
use crawlq_proto::Message as _;
use crawlq_runtime::store::Store;
use crawlq_runtime::{Classify, Delivery, Described, Disposition, Handler, Outgoing, Topology};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use url::Url;

use crate::config::Config;
use crate::error::ExtractError;
use crate::extract::{Extracted, Extractor, Page};
use crate::feeds::{self, Discovery, Entry, Kind};
use crate::metrics as m;

/// Sitemap indexes followed, nested, before a chain is refused.
pub const MAX_SITEMAP_NESTING: u32 = 4;

/// Turns fetched pages into records and requests.
pub struct ExtractHandler {
    extractor: Arc<Extractor>,
    store: Store,
    topology: Topology,
    feed_content: bool,
    default_max_depth: u32,
    timeout: Duration,
    max_payload: usize,
    max_body: usize,
    limits: feeds::Limits,
    parsers: Arc<Semaphore>,
}

impl ExtractHandler {
    /// Builds a handler.
    pub fn new(
        extractor: Extractor,
        store: Store,
        topology: Topology,
        config: &Config,
        max_payload: usize,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        ExtractHandler {
            extractor: Arc::new(extractor),
            store,
            topology,
            feed_content: config.feed_content,
            default_max_depth: config.max_depth,
            timeout: config.extract_timeout,
            max_payload,
            max_body: usize::try_from(config.body.max_body).unwrap_or(usize::MAX),
            limits: feeds::Limits {
                max_bytes: config.body.max_body,
                max_feed_entries: config.max_feed_entries,
            },
            parsers: Arc::new(Semaphore::new(cores)),
        }
    }

    /// The decoded body, and the body as it arrived when that was zstd
    /// (kept as the raw page's archive copy rather than compressed again).
    /// An inline body is moved out of `page`, not copied.
    async fn body(&self, page: &mut FetchedPage) -> Result<(Bytes, Option<Bytes>), ExtractError> {
        let (raw, encoding) = if page.body_key.is_empty() {
            (
                Bytes::from(std::mem::take(&mut page.body)),
                page.body_encoding(),
            )
        } else {
            if !crawlq_runtime::store::is_claim_key(&page.body_key) {
                return Err(ExtractError::BadMessage(format!(
                    "body_key `{}` is not a claim-check key",
                    crawlq_runtime::clip(&page.body_key, 200)
                )));
            }
            let bytes = crawlq_runtime::store::get_claim(&self.store, &page.body_key)
                .await
                .map_err(|source| ExtractError::ClaimCheck {
                    key: page.body_key.clone(),
                    source,
                })?;
            (bytes, BodyEncoding::Zstd)
        };
        match encoding {
            BodyEncoding::Identity => Ok((raw, None)),
            BodyEncoding::Zstd => {
                // Inflated to the body cap at most, whatever the message
                // declares: a small frame can claim gigabytes.
                let limit = (page.body_len as usize).clamp(1, self.max_body);
                let decoded = zstd::bulk::decompress(&raw, limit)
                    .map_err(|e| ExtractError::BadMessage(format!("zstd body: {e}")))?;
                Ok((Bytes::from(decoded), Some(raw)))
            }
        }
    }

    fn requests(
        &self,
        parent: &CrawlRequest,
        entries: Vec<Entry>,
        kind: UrlKind,
        origin: Origin,
        same_depth: bool,
    ) -> Vec<CrawlRequest> {
        let max_depth = if parent.max_depth == 0 {
            self.default_max_depth
        } else {
            parent.max_depth
        };
        let depth = if same_depth {
            parent.depth
        } else {
            parent.depth + 1
        };
        if depth > max_depth {
            return Vec::new();
        }
        entries
            .into_iter()
            .map(|e| CrawlRequest {
                request_id: child_id(&parent.request_id, &e.url),
                submitted_at: crawlq_runtime::now_ms(),
                depth,
                max_depth,
                priority: parent.priority,
                kind: kind as i32,
                origin: origin as i32,
                hints: Some(FeedHints {
                    title: e.title,
                    published_at: e.published_at,
                    summary: e.summary,
                    content_html: String::new(),
                }),
                attempt: 0,
                // Children are fresh work: a forced sitemap index does not
                // force every sitemap under it.
                force: parent.force && kind != UrlKind::Sitemap,
                url: e.url,
                revisit: None,
                // Every index level counts, so a chain of indexes ends.
                sitemap_nesting: parent.sitemap_nesting + u32::from(same_depth),
            })
            .collect()
    }

    fn publish_requests(&self, reqs: &[CrawlRequest]) -> Vec<Outgoing> {
        reqs.iter()
            .map(|r| {
                Outgoing::protobuf(self.topology.urls(), r)
                    .with_msg_id(format!("req:{}", r.request_id))
            })
            .collect()
    }

    /// The record's message; `body_zstd` is the body as it arrived, if zstd.
    async fn publish_record(
        &self,
        mut record: SnapshotRecord,
        page: &FetchedPage,
        body: &[u8],
        body_zstd: Option<&Bytes>,
    ) -> Result<Outgoing, ExtractError> {
        if page.body_key.is_empty() {
            record.raw_zstd = match body_zstd {
                Some(z) => z.to_vec(),
                None => {
                    zstd::bulk::compress(body, crawlq_proto::BODY_ZSTD_LEVEL).unwrap_or_default()
                }
            };
        } else {
            record.raw_key = page.body_key.clone();
        }
        record.exchange = page.exchange.clone();
        // A re-extraction is a new reading of the same fetch: its own id,
        // or the stream's duplicate window would drop it as the first one.
        let id = if record.reextracted {
            let sha = &record.content_sha256;
            format!(
                "snap:{}:{}:reextract:{}",
                record.id,
                record.fetched_at,
                &sha[..sha.len().min(16)]
            )
        } else {
            format!("snap:{}:{}", record.id, record.fetched_at)
        };
        let mut out = Outgoing::protobuf(self.topology.snapshots(), &record);
        if out.payload.len() + 1024 > self.max_payload {
            // Too large for one message (a very long article): the whole
            // record travels by claim check, as big pages do.
            out = self.claim_check_record(&record).await?;
        }
        m::record_date(record.published_at_source);
        let request_id = page
            .request
            .as_ref()
            .map(|r| r.request_id.as_str())
            .unwrap_or_default();
        Ok(out.with_msg_id(id).with_request_id(request_id))
    }

    /// Puts the whole record in the store and returns a message naming it.
    async fn claim_check_record(&self, record: &SnapshotRecord) -> Result<Outgoing, ExtractError> {
        let bytes = zstd::bulk::compress(&record.encode_to_vec(), crawlq_proto::BODY_ZSTD_LEVEL)
            .map_err(|e| ExtractError::BadMessage(format!("compressing the record: {e}")))?;
        let key = format!(
            "{}{}/rec-{}-{}.zst",
            crawlq_runtime::store::CLAIMS_PREFIX,
            record.fetched_at / 86_400_000,
            record.id,
            &record.content_sha256[..16.min(record.content_sha256.len())]
        );
        crawlq_runtime::store::put_claim(&self.store, &key, Bytes::from(bytes))
            .await
            .map_err(|source| ExtractError::ClaimCheck {
                key: key.clone(),
                source,
            })?;
        tracing::info!(url = %record.url, key, "record claim-checked: too large for one message");
        let stub = SnapshotRecord {
            id: record.id.clone(),
            url: record.url.clone(),
            host: record.host.clone(),
            title: crawlq_runtime::clip(&record.title, 1024),
            fetched_at: record.fetched_at,
            content_sha256: record.content_sha256.clone(),
            revisit: record.revisit,
            record_key: key,
            ..SnapshotRecord::default()
        };
        Ok(Outgoing::protobuf(self.topology.snapshots(), &stub))
    }

    async fn discover(
        &self,
        page: &FetchedPage,
        req: &CrawlRequest,
        body: &[u8],
        kind: Kind,
        url: &Url,
    ) -> Result<Vec<Outgoing>, ExtractError> {
        let discovery = feeds::parse(body, kind, url, self.limits)?;
        let mut out = Vec::new();
        match discovery {
            Discovery::Feed(entries) => {
                m::page("feed");
                let mut pending = Vec::new();
                for entry in entries {
                    // A feed may carry full articles of its own site only:
                    // an item claiming another site's URL is fetched there.
                    let own_site =
                        Url::parse(&entry.url).is_ok_and(|u| crate::metadata::same_site(&u, url));
                    if self.feed_content && own_site && !entry.content_html.trim().is_empty() {
                        if let Some(record) = self.feed_record(&entry, page.fetched_at) {
                            out.push(self.publish_record(record, page, &[], None).await?);
                            continue;
                        }
                    }
                    pending.push(entry);
                }
                m::expanded("feed", pending.len() + out.len());
                out.extend(self.publish_requests(&self.requests(
                    req,
                    pending,
                    UrlKind::Page,
                    Origin::Feed,
                    false,
                )));
            }
            Discovery::Sitemap(entries) => out.extend(self.expand_sitemap(req, entries, false)),
            Discovery::SitemapIndex(_) if req.sitemap_nesting >= MAX_SITEMAP_NESTING => {
                return Err(ExtractError::TooDeep(req.sitemap_nesting + 1));
            }
            Discovery::SitemapIndex(entries) => out.extend(self.expand_sitemap(req, entries, true)),
        }
        Ok(out)
    }

    /// Requests for a sitemap's entries: pages, or for an index the
    /// sitemaps it lists (at the same link depth).
    fn expand_sitemap(
        &self,
        req: &CrawlRequest,
        entries: Vec<Entry>,
        index: bool,
    ) -> Vec<Outgoing> {
        m::page("sitemap");
        m::expanded("sitemap", entries.len());
        let kind = if index {
            UrlKind::Sitemap
        } else {
            UrlKind::Page
        };
        self.publish_requests(&self.requests(req, entries, kind, Origin::Sitemap, index))
    }

    fn feed_record(&self, entry: &Entry, fetched_at: i64) -> Option<SnapshotRecord> {
        let url = Url::parse(&entry.url).ok()?;
        let hints = FeedHints {
            title: entry.title.clone(),
            published_at: entry.published_at,
            summary: entry.summary.clone(),
            content_html: entry.content_html.clone(),
        };
        self.extractor.from_feed_item(&url, &hints, fetched_at).ok()
    }

    /// Extracts an HTML page on the blocking pool, within the time budget.
    /// The body is a refcounted handle: the blocking task shares it, no copy.
    async fn extract_html(
        &self,
        body: Bytes,
        headers: &ResponseHeaders,
        url: &Url,
        fetched_at: i64,
        hints: Option<&FeedHints>,
    ) -> Result<Extracted, ExtractError> {
        // The permit moves into the blocking task: a parse that outlives
        // its time budget keeps holding it until it really ends, so at most
        // one page per core is ever being parsed.
        let permit = self
            .parsers
            .clone()
            .acquire_owned()
            .await
            .expect("parser semaphore is never closed");
        let extractor = self.extractor.clone();
        let ct = Some(headers.content_type.clone()).filter(|c| !c.is_empty());
        let cl = Some(headers.content_language.clone()).filter(|c| !c.is_empty());
        let url = url.clone();
        let hints = hints.cloned();
        let job = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let page = Page {
                body: &body,
                content_type: ct.as_deref(),
                content_language: cl.as_deref(),
                url: &url,
                fetched_at,
                hints: hints.as_ref(),
            };
            extractor.extract(page)
        });
        match tokio::time::timeout(self.timeout, job).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(ExtractError::Panicked(panic_message(join))),
            Err(_) => Err(ExtractError::Timeout(self.timeout)),
        }
    }
}

impl ExtractHandler {
    /// Messages for what an extraction found on a page that was not a revisit.
    async fn publish_extracted(
        &self,
        extracted: Extracted,
        req: &CrawlRequest,
        page: &FetchedPage,
        body: &[u8],
        body_zstd: Option<&Bytes>,
    ) -> Result<Vec<Outgoing>, ExtractError> {
        match extracted {
            Extracted::Article(record) => {
                self.publish_article(*record, page, body, body_zstd).await
            }
            Extracted::Listing { why, links, record } => {
                m::page("non_article");
                tracing::info!(url = %req.url, %why, links = links.len(), "not an article: following its links");
                let entries = links
                    .into_iter()
                    .map(|url| Entry {
                        url,
                        ..Entry::default()
                    })
                    .collect();
                let reqs = self.requests(req, entries, UrlKind::Auto, Origin::Link, false);
                m::expanded("link", reqs.len());
                let mut out = self.publish_requests(&reqs);
                if let Some(record) = record {
                    out.push(self.publish_record(*record, page, body, body_zstd).await?);
                }
                Ok(out)
            }
        }
    }

    /// An article, counted and published (an untitled one is titled by
    /// its URL).
    async fn publish_article(
        &self,
        mut record: SnapshotRecord,
        page: &FetchedPage,
        body: &[u8],
        body_zstd: Option<&Bytes>,
    ) -> Result<Vec<Outgoing>, ExtractError> {
        m::page("article");
        if record.title.is_empty() {
            record.title = record.url.clone();
        }
        Ok(vec![
            self.publish_record(record, page, body, body_zstd).await?,
        ])
    }

    /// An archived raw page read again by `crawlq reextract`: the record
    /// as the current extractor reads it, marked so storage keeps it as a
    /// new reading of the old fetch (never an edit, never a check). Links
    /// are not followed; a page that no longer reads as an article is
    /// dead-lettered with the reason, and its archived versions stay.
    async fn settle_reextract(
        &self,
        extracted: Result<Extracted, ExtractError>,
        page: &FetchedPage,
        body: &[u8],
        body_zstd: Option<&Bytes>,
    ) -> Result<Vec<Outgoing>, ExtractError> {
        match extracted? {
            Extracted::Article(record) => {
                let record = SnapshotRecord {
                    reextracted: true,
                    ..*record
                };
                self.publish_article(record, page, body, body_zstd).await
            }
            Extracted::Listing { why, .. } => Err(ExtractError::NoContent(format!(
                "re-extraction takes the archived page for a listing ({why}); its versions are kept"
            ))),
        }
    }

    /// A revisit of an archived article: the article as it reads now, or,
    /// when the page no longer is this article, an observation saying so.
    /// A redirect to another article or to a page that is no article is
    /// evidence of removal; an article that no longer extracts, at its own
    /// URL, is not (the check failed, not the article).
    async fn settle_revisit(
        &self,
        target: &RevisitTarget,
        req: &CrawlRequest,
        page: &FetchedPage,
        extracted: Result<Extracted, ExtractError>,
        body: &[u8],
        body_zstd: Option<&Bytes>,
    ) -> Result<Vec<Outgoing>, ExtractError> {
        let redirected = page.final_url != req.url;
        let observe = |outcome: CheckOutcome, detail: String| {
            let obs = CheckObservation {
                record_id: target.record_id.clone(),
                host: target.host.clone(),
                url: req.url.clone(),
                checked_at: page.fetched_at,
                status: page.status,
                final_url: page.final_url.clone(),
                outcome: outcome as i32,
                detail,
                request_id: req.request_id.clone(),
                exchange: None,
            };
            Ok(vec![Outgoing::check(&self.topology, &obs)])
        };
        match extracted {
            Ok(Extracted::Article(record)) => {
                let mut record = *record;
                if record.id != target.record_id {
                    if redirected {
                        return observe(
                            CheckOutcome::Gone,
                            format!("redirected to another article: {}", record.url),
                        );
                    }
                    // Same URL, new canonical: still this article, filed
                    // where its history is.
                    record.id = target.record_id.clone();
                    record.host = target.host.clone();
                }
                record.revisit = true;
                self.publish_article(record, page, body, body_zstd).await
            }
            Ok(Extracted::Listing { why, .. }) if redirected => observe(
                CheckOutcome::Gone,
                format!(
                    "redirected to a page that is not an article: {} ({why})",
                    page.final_url
                ),
            ),
            Ok(Extracted::Listing { why, .. }) => observe(
                CheckOutcome::Error,
                format!("the page no longer reads as an article: {why}"),
            ),
            Err(e) if matches!(e.disposition(), Disposition::Retry(_)) => Err(e),
            Err(e) => observe(CheckOutcome::Error, format!("{}: {e}", e.reason())),
        }
    }
}

impl Handler for ExtractHandler {
    type Error = ExtractError;

    async fn handle(&self, delivery: &Delivery) -> Result<Vec<Outgoing>, ExtractError> {
        let started = Instant::now();
        let mut page = FetchedPage::decode(delivery.payload.clone())
            .map_err(|e| ExtractError::BadMessage(e.to_string()))?;
        let req = page.request.clone().unwrap_or_default();
        let url = Url::parse(&page.final_url).map_err(|e| {
            ExtractError::BadMessage(format!("final_url `{}`: {e}", page.final_url))
        })?;
        let (body, body_zstd) = self.body(&mut page).await?;
        metrics::counter!(m::INPUT_BYTES).increment(body.len() as u64);
        let headers = page.headers.clone().unwrap_or_default();
        let ct = headers.content_type.to_ascii_lowercase();

        let kind = match req.kind() {
            UrlKind::Feed => Kind::Feed,
            UrlKind::Sitemap => Kind::Sitemap,
            _ => feeds::sniff(&body, &ct),
        };
        let result = if kind != Kind::Other {
            self.discover(&page, &req, &body, kind, &url).await
        } else if !(ct.is_empty()
            || ct.contains("html")
            || ct.contains("xml")
            || ct.starts_with("text/"))
        {
            Err(ExtractError::UnsupportedContentType(
                headers.content_type.clone(),
            ))
        } else {
            let extracted = self
                .extract_html(
                    body.clone(),
                    &headers,
                    &url,
                    page.fetched_at,
                    req.hints.as_ref(),
                )
                .await;
            match req.revisit.clone() {
                _ if req.origin() == Origin::Reextract => {
                    self.settle_reextract(extracted, &page, &body, body_zstd.as_ref())
                        .await
                }
                Some(target) => {
                    self.settle_revisit(&target, &req, &page, extracted, &body, body_zstd.as_ref())
                        .await
                }
                None => {
                    self.publish_extracted(extracted?, &req, &page, &body, body_zstd.as_ref())
                        .await
                }
            }
        };
        metrics::histogram!(m::DURATION).record(started.elapsed().as_secs_f64());
        result
    }

    fn describe(&self, delivery: &Delivery) -> Described {
        match FetchedPage::decode(delivery.payload.clone()) {
            Ok(p) => Described {
                url: p.final_url,
                request_id: p.request.map(|r| r.request_id).unwrap_or_default(),
            },
            Err(_) => Described::default(),
        }
    }
}

/// Request id of a child request: stable for the same parent and URL, so a
/// redelivered page does not enqueue its links twice.
fn child_id(parent: &str, url: &str) -> String {
    let mut h = Sha256::new();
    h.update(parent.as_bytes());
    h.update(b"\n");
    h.update(url.as_bytes());
    hex::encode(&h.finalize()[..12])
}

/// What a panicking extraction said, for its dead letter.
fn panic_message(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string panic payload".into()),
        Err(join) => join.to_string(),
    }
}
