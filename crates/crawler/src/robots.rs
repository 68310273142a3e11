//! robots.txt (RFC 9309), fetched once per origin and shared by every
//! crawler replica through a NATS key-value bucket whose entries expire
//! after the cache lifetime (24 h by default). Parsing uses texting_robots;
//! at most 500 KiB of a robots.txt is read. A 4xx means "allow all"; a 5xx
//! or a network failure means "try later". Parsed rules are also kept in a
//! small in-process cache, bounded by size and age.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use texting_robots::Robot;
use tokio::time::Instant;
use url::Url;

use crate::error::CrawlError;
use crate::fetch::Fetcher;

/// Most bytes of a robots.txt that are parsed.
pub const MAX_ROBOTS_BYTES: u64 = 500 * 1024;
/// Parsed rules kept in memory.
const LOCAL_ENTRIES: usize = 2048;
/// How long parsed rules stay in memory before the bucket is read again.
const LOCAL_TTL: Duration = Duration::from_secs(600);
/// How long a replica waits for another one's fetch of a robots.txt.
const LOCK_WAIT: Duration = Duration::from_secs(15);
/// A robots.txt lock older than this is abandoned (its holder died).
const LOCK_STALE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Cached {
    /// `None`: allow everything (no robots.txt, or a 4xx).
    body: Option<String>,
    fetched_at: i64,
}

enum Rules {
    AllowAll,
    Robot(Box<Robot>),
}

/// The verdict for one URL.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// May we fetch it?
    pub allowed: bool,
    /// Crawl-delay for our agent, if any.
    pub crawl_delay: Option<Duration>,
}

/// Shared robots.txt cache.
pub struct RobotsCache {
    kv: kv::Store,
    agent: String,
    local: Mutex<HashMap<String, (Instant, Arc<Rules>)>>,
    /// One lock per origin being looked up: requests for a cold host wait
    /// for the one fetch of its robots.txt instead of each fetching it.
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl RobotsCache {
    /// `agent` is the product token matched against `User-agent` lines.
    pub fn new(kv: kv::Store, agent: &str) -> RobotsCache {
        RobotsCache {
            kv,
            agent: agent.to_string(),
            local: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// Checks `url`, fetching the origin's robots.txt if no replica has.
    pub async fn check(&self, url: &Url, fetcher: &Fetcher) -> Result<Verdict, CrawlError> {
        let origin = url.origin().ascii_serialization();
        let rules = self.rules(&origin, fetcher).await?;
        Ok(match rules.as_ref() {
            Rules::AllowAll => Verdict {
                allowed: true,
                crawl_delay: None,
            },
            Rules::Robot(r) => Verdict {
                allowed: r.allowed(url.as_str()),
                crawl_delay: r
                    .delay
                    .filter(|d| d.is_finite() && *d > 0.0)
                    .map(|d| Duration::from_secs_f32(d.min(60.0))),
            },
        })
    }

    async fn rules(&self, origin: &str, fetcher: &Fetcher) -> Result<Arc<Rules>, CrawlError> {
        if let Some(rules) = self.cached(origin) {
            return Ok(rules);
        }
        // Single flight: the first request for an origin looks it up; the
        // others wait for it, then find its rules cached.
        let gate = self
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(origin.to_string())
            .or_default()
            .clone();
        let _turn = gate.lock().await;
        if let Some(rules) = self.cached(origin) {
            return Ok(rules);
        }
        let result = self.look_up(origin, fetcher).await;
        self.inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(origin);
        result
    }

    /// Rules parsed within the local lifetime, if any.
    fn cached(&self, origin: &str) -> Option<Arc<Rules>> {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let (at, rules) = local.get(origin)?;
        (at.elapsed() < LOCAL_TTL).then(|| rules.clone())
    }

    /// The origin's rules from the shared bucket, or fetched and shared.
    async fn look_up(&self, origin: &str, fetcher: &Fetcher) -> Result<Arc<Rules>, CrawlError> {
        let key = kv_key(origin);
        let cached = match self.shared(&key).await? {
            Some(c) => c,
            None => match self.fetched_elsewhere(&key).await? {
                Some(c) => c,
                None => {
                    let fresh = self.fetch(origin, fetcher).await;
                    if let Ok(fresh) = &fresh {
                        let bytes = Bytes::from(
                            serde_json::to_vec(fresh).expect("robots entry serialises"),
                        );
                        if let Err(e) = self.kv.put(&key, bytes).await {
                            tracing::warn!(origin, error = %e, "robots.txt not shared in the cache bucket");
                        }
                    }
                    let _ = self.kv.delete(format!("{key}.lock")).await;
                    fresh?
                }
            },
        };
        let rules = Arc::new(match cached.body {
            None => Rules::AllowAll,
            Some(body) => match Robot::new(&self.agent, body.as_bytes()) {
                Ok(r) => Rules::Robot(Box::new(r)),
                Err(e) => {
                    tracing::info!(origin, error = %e, "unparseable robots.txt; allowing all");
                    Rules::AllowAll
                }
            },
        });
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        if local.len() >= LOCAL_ENTRIES {
            local.retain(|_, (at, _)| at.elapsed() < LOCAL_TTL);
            if local.len() >= LOCAL_ENTRIES {
                local.clear();
            }
        }
        local.insert(origin.to_string(), (Instant::now(), rules.clone()));
        Ok(rules)
    }

    /// Single flight across replicas: the replica that creates the
    /// origin's lock key fetches (`None`); the others wait for its entry,
    /// up to [`LOCK_WAIT`]. A lock older than [`LOCK_STALE`] (its holder
    /// died) is taken over.
    async fn fetched_elsewhere(&self, key: &str) -> Result<Option<Cached>, CrawlError> {
        let lock = format!("{key}.lock");
        let now = crawlq_runtime::now_ms();
        let stamp = || Bytes::from(crawlq_runtime::now_ms().to_string());
        // Each time the lock turns out free, the last holder may have
        // shared the entry since we looked: read it before fetching.
        match self.kv.create(&lock, stamp()).await {
            Ok(_) => {
                let shared = self.shared(key).await?;
                if shared.is_some() {
                    let _ = self.kv.delete(&lock).await;
                }
                return Ok(shared);
            }
            Err(e) if e.kind() != kv::CreateErrorKind::AlreadyExists => {
                tracing::debug!(error = %e, "robots lock unavailable; fetching");
                return Ok(None);
            }
            Err(_) => {}
        }
        let held_since = match self.kv.get(&lock).await {
            Ok(Some(v)) => std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok()),
            _ => None,
        };
        if held_since.is_none_or(|t| now - t > LOCK_STALE.as_millis() as i64) {
            if let Some(c) = self.shared(key).await? {
                return Ok(Some(c));
            }
            let _ = self.kv.put(&lock, stamp()).await;
            return Ok(None);
        }
        let started = Instant::now();
        while started.elapsed() < LOCK_WAIT {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if let Some(c) = self.shared(key).await? {
                return Ok(Some(c));
            }
            // The lock is gone: the holder shared the entry between our
            // two reads, or gave up (its fetch failed) and we try ourselves.
            if matches!(self.kv.get(&lock).await, Ok(None)) {
                return self.shared(key).await;
            }
        }
        Ok(None)
    }

    /// The origin's entry in the bucket, if one is there and readable.
    async fn shared(&self, key: &str) -> Result<Option<Cached>, CrawlError> {
        match self.kv.get(key).await {
            Ok(bytes) => Ok(bytes.and_then(|b| serde_json::from_slice::<Cached>(&b).ok())),
            Err(e) => Err(CrawlError::infra("robots cache", e)),
        }
    }

    async fn fetch(&self, origin: &str, fetcher: &Fetcher) -> Result<Cached, CrawlError> {
        let url = Url::parse(&format!("{origin}/robots.txt"))
            .map_err(|e| CrawlError::InvalidUrl(origin.into(), e.to_string()))?;
        let now = crawlq_runtime::now_ms();
        match fetcher.fetch_text(&url, MAX_ROBOTS_BYTES).await {
            Ok((status, body)) if (200..300).contains(&status) => Ok(Cached {
                body: Some(String::from_utf8_lossy(&body).into_owned()),
                fetched_at: now,
            }),
            Ok((status, _)) if (400..500).contains(&status) => Ok(Cached {
                body: None,
                fetched_at: now,
            }),
            Ok((status, _)) => Err(CrawlError::RobotsUnavailable(format!("http {status}"))),
            Err(CrawlError::BlockedAddress(a)) => Err(CrawlError::BlockedAddress(a)),
            // The site itself is out of reach: that, not robots.txt, is
            // the reason the page cannot be fetched.
            Err(e @ CrawlError::Unresolved(_)) => Err(e),
            Err(e) => Err(CrawlError::RobotsUnavailable(e.to_string())),
        }
    }
}

/// A bucket key for an origin or a host: KV keys allow only
/// `[-/_=.a-zA-Z0-9]`.
pub(crate) fn kv_key(origin: &str) -> String {
    hex::encode(&Sha256::digest(origin.as_bytes())[..16])
}
