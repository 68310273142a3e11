//! The crawler stage: intake messages in, `FetchedPage`s out.
//!
//! For each request: normalise the URL; skip it if the same URL was
//! fetched within the duplicate window (unless forced); check robots.txt;
//! wait for the host's politeness slot (without holding a fetch slot);
//! take one of the global fetch slots; fetch with a conditional GET; and
//! hand the page on, inline or by claim check.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use crawlq_proto::v1::{
    BodyEncoding, CrawlRequest, FetchedPage, Origin, StoreOutcome, StoredSnapshot, UrlKind,
};
use crawlq_runtime::store::Store;
use crawlq_runtime::{DeadLetterBuilder, Delivery, Described, Handler, Outgoing, Stage, Topology};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use url::Url;

use crate::config::Config;
use crate::error::CrawlError;
use crate::fetch::{Fetcher, Limits, Validators};
use crate::intake::{parse_intake, Intake};
use crate::metrics as m;
use crate::normalize::normalize;
use crate::politeness::{Politeness, SharedHosts};
use crate::robots::RobotsCache;
use crate::ssrf::Guard;

/// What fetching one request gave.
#[derive(Debug)]
pub(crate) enum Crawled {
    /// Fetched within the duplicate window; nothing done.
    Skipped,
    /// 304 Not Modified.
    NotModified(Url, Box<crawlq_proto::v1::HttpExchange>),
    /// A revisit's answer that the article is gone (404, 410, 451), with
    /// the exchange as evidence.
    Gone(u16, Url, Box<crawlq_proto::v1::HttpExchange>),
    /// A page to hand on.
    Page(Box<FetchedPage>),
}

/// What the crawler remembers about a URL it fetched.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Seen {
    request_id: String,
    etag: String,
    last_modified: String,
}

/// Fetches pages.
pub struct CrawlHandler {
    fetcher: Fetcher,
    robots: Option<RobotsCache>,
    politeness: Arc<Politeness>,
    shared: SharedHosts,
    per_host: usize,
    fetch_slots: Arc<Semaphore>,
    store: Store,
    pub(crate) topology: Topology,
    pub(crate) feeds: kv::Store,
    seen: kv::Store,
    validators: kv::Store,
    strip: Vec<String>,
    host_delay: Duration,
    max_wait: Duration,
    max_payload: usize,
}

/// The key-value buckets the crawler keeps its state in.
#[derive(Debug, Clone)]
pub struct Buckets {
    /// robots.txt, shared by every replica.
    pub robots: kv::Store,
    /// URLs fetched within the duplicate window.
    pub seen: kv::Store,
    /// ETag and Last-Modified per URL, for conditional GETs.
    pub validators: kv::Store,
    /// Registered feeds and sitemaps ([`crate::watch::FeedEntry`]).
    pub feeds: kv::Store,
    /// Each host's next start and requests in flight, cluster-wide.
    pub hosts: SharedHosts,
}

impl CrawlHandler {
    /// Builds the handler.
    pub fn new(
        config: &Config,
        store: Store,
        topology: Topology,
        buckets: Buckets,
        max_payload: usize,
    ) -> Result<Self, CrawlError> {
        let guard = Guard {
            allow_private: config.allow_private_networks,
            allow: config.allow_cidrs.clone(),
        };
        let limits = Limits {
            max_redirects: config.max_redirects,
            connect_timeout: config.connect_timeout,
            deadline: config.fetch_deadline,
            max_body: config.body.max_body,
        };
        Ok(CrawlHandler {
            fetcher: Fetcher::new(guard, limits, &config.user_agent)?,
            robots: config
                .respect_robots
                .then(|| RobotsCache::new(buckets.robots, &config.robots_agent)),
            politeness: Politeness::new(config.host_concurrency),
            shared: buckets.hosts,
            per_host: config.host_concurrency.max(1),
            fetch_slots: Arc::new(Semaphore::new(config.fetch_concurrency.max(1))),
            store,
            topology,
            feeds: buckets.feeds,
            seen: buckets.seen,
            validators: buckets.validators,
            strip: config.strip_params.clone(),
            host_delay: config.host_delay,
            max_wait: config.max_politeness_wait,
            max_payload,
        })
    }

    /// Turns an intake message into requests: a protobuf `CrawlRequest`, or
    /// plain text with one URL per line.
    fn intake(&self, d: &Delivery) -> Result<Vec<CrawlRequest>, CrawlError> {
        let lines = match parse_intake(&d.payload, d.is_protobuf())? {
            Intake::Request(r) => return Ok(vec![*r]),
            Intake::Lines(lines) => lines,
        };
        Ok(lines
            .into_iter()
            .enumerate()
            .map(|(i, url)| CrawlRequest {
                url: url.to_string(),
                request_id: short_hash(&format!("{}:{}:{url}", d.stream_sequence, i)),
                submitted_at: crawlq_runtime::now_ms(),
                origin: Origin::User as i32,
                ..Default::default()
            })
            .collect())
    }

    /// Splits a multi-URL text message into one protobuf request each; bad
    /// lines become dead letters of their own.
    fn fan_out(&self, reqs: Vec<CrawlRequest>, d: &Delivery) -> Vec<Outgoing> {
        reqs.into_iter()
            .map(|mut r| match normalize(&r.url, &self.strip) {
                Ok(u) => {
                    r.url = u.to_string();
                    Outgoing::protobuf(self.topology.urls(), &r).with_msg_id(format!("req:{}", r.request_id))
                }
                Err(e) => {
                    metrics::counter!(crawlq_runtime::metrics::WORKER_DEAD_LETTERS, "stage" => "crawler", "reason" => "invalid_url").increment(1);
                    // The line itself is the payload.
                    DeadLetterBuilder::new(Stage::Crawler, "invalid_url", &e.to_string())
                        .delivery(d)
                        .payload(r.url.clone().into_bytes())
                        .described(&Described {
                            url: r.url.clone(),
                            request_id: r.request_id.clone(),
                        })
                        .outgoing(
                            &self.topology,
                            format!("dlq:intake:{}", r.request_id),
                            self.max_payload,
                        )
                }
            })
            .collect()
    }

    /// Normalises, deduplicates, checks robots.txt and fetches `req`.
    pub(crate) async fn crawl(&self, req: &mut CrawlRequest) -> Result<Crawled, CrawlError> {
        let url = normalize(&req.url, &self.strip)?;
        req.url = url.to_string();
        if req.request_id.is_empty() {
            req.request_id = short_hash(&req.url);
        }
        let key = short_hash(url.as_str());
        if self.is_duplicate(req, &key).await? {
            m::request("duplicate", 0);
            tracing::debug!(url = %url, "fetched within the duplicate window; skipped");
            return Ok(Crawled::Skipped);
        }
        let crawl_delay = match &self.robots {
            Some(robots) => {
                let verdict = robots.check(&url, &self.fetcher).await?;
                if !verdict.allowed {
                    metrics::counter!(m::ROBOTS_DENIALS).increment(1);
                    return Err(CrawlError::RobotsDisallowed);
                }
                verdict.crawl_delay
            }
            None => None,
        };
        self.fetch(req, url, key, crawl_delay).await
    }

    /// Was this URL fetched within the duplicate window by another request?
    /// Forced requests, polls (feeds and sitemaps a user or the schedule
    /// asks for) and revisits are never duplicates: they exist to fetch
    /// again, conditionally, so an unchanged page costs a 304.
    async fn is_duplicate(&self, req: &CrawlRequest, key: &str) -> Result<bool, CrawlError> {
        let discovery = matches!(req.kind(), UrlKind::Feed | UrlKind::Sitemap);
        let scheduled = matches!(req.origin(), Origin::Revisit | Origin::FeedPoll);
        let poll = req.origin() == Origin::User && discovery;
        if req.force || poll || scheduled {
            return Ok(false);
        }
        let seen = self.get_seen(&self.seen, key).await?;
        Ok(seen.is_some_and(|s| s.request_id != req.request_id))
    }

    /// Waits for the host's slot and a fetch slot, then fetches.
    async fn fetch(
        &self,
        req: &CrawlRequest,
        url: Url,
        key: String,
        crawl_delay: Option<Duration>,
    ) -> Result<Crawled, CrawlError> {
        let host = url.host_str().unwrap_or_default().to_string();
        let delay = crawl_delay.map_or(self.host_delay, |d| d.max(self.host_delay));
        let (_host_permit, waited) = self
            .politeness
            .acquire(&host, delay, self.max_wait)
            .await
            .map_err(CrawlError::Deferred)?;
        // Cluster-wide: every replica's starts on this host are `delay`
        // apart, and at most `per_host` of them run at once.
        let (lease, wait) = self
            .shared
            .reserve(&host, delay, self.per_host, self.max_wait)
            .await?
            .map_err(CrawlError::Deferred)?;
        tokio::time::sleep(wait).await;
        let waited = waited + wait;
        metrics::histogram!(m::POLITENESS_WAIT).record(waited.as_secs_f64());
        let _slot = self
            .fetch_slots
            .acquire()
            .await
            .expect("fetch semaphore is never closed");
        let validators = self.validators_for(req, &key).await?;
        let gauge = metrics::gauge!(m::IN_FLIGHT);
        gauge.increment(1.0);
        // A revisit keeps a gone answer as the evidence of a removal.
        let keep_gone = req.origin() == Origin::Revisit;
        let result = self
            .fetcher
            .fetch_obeying(&url, validators.as_ref(), self.robots.as_ref(), keep_gone)
            .await;
        gauge.decrement(1.0);
        lease.release().await;
        if let Err(CrawlError::ServerError {
            status: 429 | 503,
            after: Some(after),
        }) = &result
        {
            // The host asked for a pause: every replica honours it.
            let until = crawlq_runtime::now_ms() + after.as_millis() as i64;
            if let Err(e) = self.shared.hold(&host, until).await {
                tracing::warn!(host, error = %e, "Retry-After not shared with the other replicas");
            }
        }
        let resp = result.inspect_err(|e| m::request("failed", e.status()))?;
        metrics::histogram!(m::FETCH_SECONDS).record(resp.elapsed.as_secs_f64());
        let fetched_at = crawlq_runtime::now_ms();
        let remember = Seen {
            request_id: req.request_id.clone(),
            etag: resp.headers.etag.clone(),
            last_modified: resp.headers.last_modified.clone(),
        };
        self.put_seen(&self.seen, &key, &remember).await?;
        if matches!(resp.status, 404 | 410 | 451) {
            m::request("failed", resp.status);
            return Ok(Crawled::Gone(
                resp.status,
                resp.final_url,
                Box::new(resp.exchange),
            ));
        }
        if resp.status == 304 {
            m::request("not_modified", 304);
            return Ok(Crawled::NotModified(url, Box::new(resp.exchange)));
        }
        if !remember.etag.is_empty() || !remember.last_modified.is_empty() {
            self.put_seen(&self.validators, &key, &remember).await?;
        }
        m::request("fetched", resp.status);
        let mut page = FetchedPage {
            final_url: resp.final_url.to_string(),
            redirect_chain: resp.chain,
            status: u32::from(resp.status),
            headers: Some(resp.headers),
            fetched_at,
            fetch_duration_ms: resp.elapsed.as_millis().min(u128::from(u32::MAX)) as u32,
            remote_addr: resp.remote.map(|a| a.to_string()).unwrap_or_default(),
            body_len: resp.body.len() as u64,
            request: Some(req.clone()),
            ..Default::default()
        };
        self.attach_body(&mut page, resp.body, req).await?;
        self.attach_exchange(&mut page, resp.exchange, req).await?;
        Ok(Crawled::Page(Box::new(page)))
    }

    /// Validators for a conditional GET, unless the stored ones came from
    /// this very request (a retry: its page may never have reached the
    /// extractor), or a forced feed/sitemap must be re-read for its items.
    async fn validators_for(
        &self,
        req: &CrawlRequest,
        key: &str,
    ) -> Result<Option<Validators>, CrawlError> {
        let discovery = matches!(req.kind(), UrlKind::Feed | UrlKind::Sitemap);
        Ok(self
            .get_seen(&self.validators, key)
            .await?
            .filter(|v| v.request_id != req.request_id && !(req.force && discovery))
            .map(|v| Validators {
                etag: v.etag,
                last_modified: v.last_modified,
            }))
    }

    /// What a crawl publishes: the fetched page, or a `not_modified` event.
    pub(crate) fn publish(&self, req: &CrawlRequest, crawled: Crawled) -> Vec<Outgoing> {
        match crawled {
            // A user's URL that is not fetched says so, and how to force
            // it; links and feed items found again stay quiet.
            Crawled::Skipped if req.origin() == Origin::User => {
                // `crawl` has already normalised `req.url`.
                let url = req.url.clone();
                let event = StoredSnapshot {
                    outcome: StoreOutcome::Skipped as i32,
                    host: url::Url::parse(&url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default(),
                    url,
                    request_id: req.request_id.clone(),
                    detail: "fetched within the duplicate window (CRAWLQ_DUPLICATE_WINDOW); submit with --force to fetch it again".into(),
                    ..Default::default()
                };
                vec![Outgoing::protobuf(self.topology.stored(), &event)
                    .with_msg_id(format!("skip:{}:{}", req.request_id, req.attempt))
                    .with_request_id(&req.request_id)]
            }
            // Only revisits keep gone answers, and `revisit` reports them.
            Crawled::Skipped | Crawled::Gone(..) => Vec::new(),
            Crawled::NotModified(url, _) => {
                let event = StoredSnapshot {
                    outcome: StoreOutcome::NotModified as i32,
                    url: url.to_string(),
                    request_id: req.request_id.clone(),
                    host: url.host_str().unwrap_or_default().to_string(),
                    ..Default::default()
                };
                vec![Outgoing::protobuf(self.topology.stored(), &event)
                    .with_msg_id(format!("nm:{}:{}", req.request_id, req.attempt))
                    .with_request_id(&req.request_id)]
            }
            Crawled::Page(page) => vec![Outgoing::protobuf(self.topology.fetched(), &*page)
                .with_msg_id(format!("fetched:{}:{}", req.request_id, req.attempt))
                .with_request_id(&req.request_id)],
        }
    }

    /// Inline when it fits (zstd when that helps), else by claim check.
    /// The compressed body is also the archived raw copy.
    async fn attach_body(
        &self,
        page: &mut FetchedPage,
        body: Bytes,
        req: &CrawlRequest,
    ) -> Result<(), CrawlError> {
        let budget = self.max_payload.saturating_sub(64 * 1024);
        let compressed = if body.len() > 4096 {
            zstd::bulk::compress(&body, crawlq_proto::BODY_ZSTD_LEVEL)
                .ok()
                .filter(|c| c.len() < body.len())
        } else {
            None
        };
        let (bytes, encoding) = match compressed {
            Some(c) => (Bytes::from(c), BodyEncoding::Zstd),
            None => (body.clone(), BodyEncoding::Identity),
        };
        if bytes.len() <= budget {
            page.body = bytes.to_vec();
            page.body_encoding = encoding as i32;
            return Ok(());
        }
        // Claim check: always zstd in the store.
        let z = if encoding == BodyEncoding::Zstd {
            bytes
        } else {
            Bytes::from(
                zstd::bulk::compress(&body, crawlq_proto::BODY_ZSTD_LEVEL)
                    .map_err(|e| CrawlError::infra("compressing the body", e))?,
            )
        };
        page.body_key = self.claim(page.fetched_at, req, "zst", z).await?;
        page.body_encoding = BodyEncoding::Zstd as i32;
        Ok(())
    }

    /// The exchange travels with the page; a coded body as received that
    /// would not fit beside the page goes by claim check (as it is: it is
    /// compressed already).
    async fn attach_exchange(
        &self,
        page: &mut FetchedPage,
        mut exchange: crawlq_proto::v1::HttpExchange,
        req: &CrawlRequest,
    ) -> Result<(), CrawlError> {
        let budget = self.max_payload.saturating_sub(64 * 1024);
        if page.body.len() + exchange.coded_body.len() > budget {
            let body = Bytes::from(std::mem::take(&mut exchange.coded_body));
            exchange.coded_body_key = self.claim(page.fetched_at, req, "coded", body).await?;
        }
        page.exchange = Some(exchange);
        Ok(())
    }

    /// Puts `body` in the store as a claim check of the fetch; its key.
    async fn claim(
        &self,
        fetched_at: i64,
        req: &CrawlRequest,
        ext: &str,
        body: Bytes,
    ) -> Result<String, CrawlError> {
        // Request ids come from users: the key holds only a hash of one.
        let key = format!(
            "{}{}/{}-{fetched_at}.{ext}",
            crawlq_runtime::store::CLAIMS_PREFIX,
            fetched_at / 86_400_000,
            short_hash(&req.request_id),
        );
        crawlq_runtime::store::put_claim(&self.store, &key, body)
            .await
            .map_err(|e| CrawlError::infra(format!("claim check {key}"), e))?;
        metrics::counter!(m::CLAIM_CHECKS).increment(1);
        Ok(key)
    }

    async fn get_seen(&self, kv: &kv::Store, key: &str) -> Result<Option<Seen>, CrawlError> {
        match kv.get(key).await {
            Ok(v) => Ok(v.and_then(|b| serde_json::from_slice(&b).ok())),
            Err(e) => Err(CrawlError::infra("kv get", e)),
        }
    }

    async fn put_seen(&self, kv: &kv::Store, key: &str, v: &Seen) -> Result<(), CrawlError> {
        let bytes = Bytes::from(serde_json::to_vec(v).expect("seen serialises"));
        kv.put(key, bytes)
            .await
            .map(|_| ())
            .map_err(|e| CrawlError::infra("kv put", e))
    }
}

impl Handler for CrawlHandler {
    type Error = CrawlError;

    async fn handle(&self, d: &Delivery) -> Result<Vec<Outgoing>, CrawlError> {
        let mut reqs = self.intake(d)?;
        if reqs.len() > 1 {
            return Ok(self.fan_out(reqs, d));
        }
        let mut req = reqs.pop().expect("one request");
        req.attempt = d.delivered.saturating_sub(1);
        match req.origin() {
            Origin::FeedPoll => self.poll_feed(req).await,
            Origin::Revisit => self.revisit(req).await,
            _ => {
                let crawled = self.crawl(&mut req).await?;
                Ok(self.publish(&req, crawled))
            }
        }
    }

    fn defer_allowance(&self) -> u32 {
        100
    }

    fn describe(&self, d: &Delivery) -> Described {
        match self.intake(d) {
            Ok(reqs) if reqs.len() == 1 => Described {
                url: reqs[0].url.clone(),
                request_id: reqs[0].request_id.clone(),
            },
            _ => Described {
                url: String::from_utf8_lossy(&d.payload[..d.payload.len().min(200)]).into_owned(),
                request_id: String::new(),
            },
        }
    }
}

fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..12])
}
