//! Per-host politeness: at most N requests in flight per host and at least
//! a delay between request starts. Waiting happens here, without holding a
//! global fetch slot, so a slow host never delays other hosts. A host whose
//! queue would make a request wait longer than `max_wait` gets it deferred
//! (handed back to NATS with a delay) instead of occupying a worker.
//!
//! The map holds only hosts with work in flight or a delay still running;
//! idle entries are dropped, so it does not grow with the URLs ever seen.
//!
//! Across replicas, [`SharedHosts`] keeps each host's next allowed start
//! and its requests in flight in one NATS KV entry, changed by
//! compare-and-set: every request start, whichever replica makes it, is
//! at least the host's delay (or Crawl-delay) after the previous one, at
//! most `per_host` requests run on the host cluster-wide, and a 429's
//! Retry-After holds the host back for all. A place in flight is a lease
//! ([`LEASE`], renewed while the request runs), so a replica killed
//! mid-fetch frees it within seconds. The in-process layer below it
//! keeps one replica's requests from racing each other for the entry.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::error::CrawlError;

/// Lifetime of a host's entry in the hosts bucket: longer than any delay
/// or hold (Retry-After is capped at a day).
pub const SPACING_TTL: Duration = Duration::from_secs(25 * 3600);

/// How long a request's place among a host's requests in flight lasts
/// unless its replica renews it (every third of this while the request
/// runs): a replica that dies mid-fetch frees its place within this.
pub const LEASE: Duration = Duration::from_secs(15);

/// One host's entry in the hosts bucket.
#[derive(Debug, Default, Serialize, Deserialize)]
struct HostEntry {
    /// Earliest start of the next request, Unix ms.
    next: i64,
    /// The requests in flight, by any replica.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    held: Vec<Held>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Held {
    id: u64,
    /// Unix ms after which the place is free even if never given back.
    until: i64,
}

impl HostEntry {
    /// An entry as stored; a bare number is the format before in-flight
    /// places were shared (the next start alone).
    fn decode(value: &[u8]) -> HostEntry {
        let text = std::str::from_utf8(value).unwrap_or_default();
        if let Ok(next) = text.parse::<i64>() {
            return HostEntry {
                next,
                held: Vec::new(),
            };
        }
        serde_json::from_str(text).unwrap_or_default()
    }
}

/// What a reservation attempt found.
enum Attempt {
    /// Reserved: wait this long, then start.
    Start(Duration),
    /// The next start is further away than the caller waits.
    TooLong(Duration),
    /// Every place in flight is taken; the earliest lapses at this Unix ms.
    Full(i64),
}

/// Cluster-wide politeness per host (see the module doc). Clones share
/// one state.
#[derive(Clone)]
pub struct SharedHosts {
    inner: Arc<SharedInner>,
}

struct SharedInner {
    kv: std::sync::RwLock<kv::Store>,
    /// Where to create the bucket again when it vanished (a memory bucket
    /// does not survive a restart of its server): the context and the
    /// replica count.
    reopen: Option<(async_nats::jetstream::Context, usize)>,
    reopening: tokio::sync::Mutex<()>,
    /// This process's prefix of lease ids (random per process).
    process: u64,
    next_id: AtomicU64,
    lease: Duration,
    cache: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

/// A request's place among its host's requests in flight, cluster-wide.
/// Renewed while held; [`HostLease::release`] gives it back (dropping it
/// does too, in the background).
pub struct HostLease {
    inner: Arc<SharedInner>,
    host: String,
    id: u64,
    renew: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SharedHosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedHosts")
            .field("bucket", &self.inner.store().name)
            .finish_non_exhaustive()
    }
}

impl SharedHosts {
    /// Host state kept in `kv` (a bucket whose entries live [`SPACING_TTL`]).
    pub fn new(kv: kv::Store) -> SharedHosts {
        SharedHosts::with_lease(kv, LEASE)
    }

    /// [`SharedHosts::new`] with places in flight lasting `lease`.
    pub fn with_lease(kv: kv::Store, lease: Duration) -> SharedHosts {
        SharedHosts::build(kv, lease, None)
    }

    /// The hosts bucket `name` (in memory, with `replicas`), created if
    /// missing, and created again whenever it is found missing later, as
    /// after a restart of the server that held it.
    pub async fn open(
        js: async_nats::jetstream::Context,
        name: &str,
        replicas: usize,
    ) -> Result<SharedHosts, CrawlError> {
        let kv = create_bucket(&js, name, replicas).await?;
        Ok(SharedHosts::build(kv, LEASE, Some((js, replicas))))
    }

    fn build(
        kv: kv::Store,
        lease: Duration,
        reopen: Option<(async_nats::jetstream::Context, usize)>,
    ) -> SharedHosts {
        let process = std::collections::hash_map::RandomState::new().hash_one(std::process::id())
            & !0xffff_ffff;
        SharedHosts {
            inner: Arc::new(SharedInner {
                kv: std::sync::RwLock::new(kv),
                reopen,
                reopening: tokio::sync::Mutex::new(()),
                process,
                next_id: AtomicU64::new(1),
                lease,
                cache: Mutex::default(),
            }),
        }
    }

    /// Takes one of `host`'s `per_host` places in flight and its next
    /// start, `delay` after the previous start made by any replica.
    /// Returns the lease and how long to wait before starting, or
    /// `Err(wait)` when that is longer than `max_wait` (nothing kept).
    pub async fn reserve(
        &self,
        host: &str,
        delay: Duration,
        per_host: usize,
        max_wait: Duration,
    ) -> Result<Result<(HostLease, Duration), Duration>, CrawlError> {
        let inner = &self.inner;
        let id = inner.process | inner.next_id.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff;
        let started = Instant::now();
        let mut poll = Duration::from_millis(10);
        loop {
            let attempt = inner
                .advance(host, |now, e| {
                    e.held.retain(|h| h.until > now);
                    if e.held.len() >= per_host.max(1) {
                        let earliest = e.held.iter().map(|h| h.until).min().unwrap_or(now);
                        return (false, Attempt::Full(earliest));
                    }
                    let start = now.max(e.next);
                    let wait = Duration::from_millis((start - now) as u64);
                    if wait + started.elapsed() > max_wait {
                        return (false, Attempt::TooLong(wait));
                    }
                    e.next = start + delay.as_millis() as i64;
                    e.held.push(Held {
                        id,
                        until: start + inner.lease.as_millis() as i64,
                    });
                    (true, Attempt::Start(wait))
                })
                .await?;
            match attempt {
                Attempt::Start(wait) => {
                    let lease = HostLease {
                        inner: inner.clone(),
                        host: host.to_string(),
                        id,
                        renew: Some(tokio::spawn(renew(inner.clone(), host.to_string(), id))),
                    };
                    return Ok(Ok((lease, wait)));
                }
                Attempt::TooLong(wait) => return Ok(Err(wait)),
                Attempt::Full(earliest) => {
                    // Requests on other replicas hold every place: look
                    // again soon, or give up when the wait is too long.
                    if started.elapsed() + poll > max_wait {
                        let lapse = (earliest - crawlq_runtime::now_ms()).max(0) as u64;
                        return Ok(Err(Duration::from_millis(lapse).max(poll)));
                    }
                    tokio::time::sleep(poll).await;
                    poll = (poll * 2).min(Duration::from_millis(200));
                }
            }
        }
    }

    /// Holds `host` back until `until_ms` (Unix ms) for every replica.
    pub async fn hold(&self, host: &str, until_ms: i64) -> Result<(), CrawlError> {
        self.inner
            .advance(host, |_, e| {
                e.next = e.next.max(until_ms);
                (true, ())
            })
            .await
    }
}

/// Keeps a lease alive while its request runs.
async fn renew(inner: Arc<SharedInner>, host: String, id: u64) {
    loop {
        tokio::time::sleep(inner.lease / 3).await;
        let renewed = inner
            .advance(&host, |now, e| {
                let held = e.held.iter_mut().find(|h| h.id == id);
                let found = held.is_some();
                if let Some(h) = held {
                    h.until = now + inner.lease.as_millis() as i64;
                }
                (found, ())
            })
            .await;
        if let Err(e) = renewed {
            tracing::warn!(host, error = %e, "host lease not renewed");
        }
    }
}

impl HostLease {
    /// Gives the place back for the host's next request.
    pub async fn release(mut self) {
        if let Some(renew) = self.renew.take() {
            renew.abort();
        }
        self.inner.release(&self.host, self.id).await;
    }
}

impl Drop for HostLease {
    fn drop(&mut self) {
        // Not released (the request was cancelled): give it back in the
        // background; it lapses by itself if that fails too.
        if let Some(renew) = self.renew.take() {
            renew.abort();
            let (inner, host, id) = (self.inner.clone(), std::mem::take(&mut self.host), self.id);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { inner.release(&host, id).await });
            }
        }
    }
}

/// The hosts bucket: in memory, since it is rewritten at every request
/// start and end (after a restart of the whole cluster, hosts start
/// afresh); entries live [`SPACING_TTL`].
async fn create_bucket(
    js: &async_nats::jetstream::Context,
    name: &str,
    replicas: usize,
) -> Result<kv::Store, CrawlError> {
    crawlq_runtime::nats::ensure_kv_stored(
        js,
        name,
        SPACING_TTL,
        replicas,
        async_nats::jetstream::stream::StorageType::Memory,
    )
    .await
    .map_err(|e| CrawlError::infra("host politeness", e))
}

impl SharedInner {
    async fn release(&self, host: &str, id: u64) {
        let released = self
            .advance(host, |_, e| {
                let before = e.held.len();
                e.held.retain(|h| h.id != id);
                (e.held.len() != before, ())
            })
            .await;
        if let Err(e) = released {
            tracing::warn!(host, error = %e, "host lease not given back; it lapses in {:?}", self.lease);
        }
    }

    fn store(&self) -> kv::Store {
        self.kv.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Creates the bucket again if it is missing, and forgets every kept
    /// copy (their revisions belong to the old bucket).
    async fn reopen_bucket(&self) -> Result<(), CrawlError> {
        let Some((js, replicas)) = &self.reopen else {
            return Ok(());
        };
        let _one = self.reopening.lock().await;
        let name = self.store().name;
        let store = create_bucket(js, &name, *replicas).await?;
        *self.kv.write().unwrap_or_else(|p| p.into_inner()) = store;
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| Arc::strong_count(c) > 1);
        Ok(())
    }

    /// The host's local copy of its entry, shared by this process's
    /// requests for the host (the map keeps hosts in use and up to 4,096).
    fn cached(&self, host: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut map = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 4096 {
            map.retain(|_, c| Arc::strong_count(c) > 1);
        }
        map.entry(host.to_string()).or_default().clone()
    }

    /// A compare-and-set loop on the host's entry: `step(now, entry)`
    /// changes it and says whether to write it back. This process's
    /// requests for one host take turns, so they never race each other;
    /// the copy kept from the last write saves the read unless another
    /// replica wrote since (then the write fails and the entry is read).
    async fn advance<T>(
        &self,
        host: &str,
        mut step: impl FnMut(i64, &mut HostEntry) -> (bool, T),
    ) -> Result<T, CrawlError> {
        let key = crate::robots::kv_key(host);
        let cached = self.cached(host);
        let mut cached = cached.lock().await;
        let mut reopened = false;
        for attempt in 0..50u64 {
            let from_cache = cached.is_some();
            let kv = self.store();
            let (mut state, revision) = match cached.take() {
                Some(c) => (c.entry, Some(c.revision)),
                None => match kv.entry(&key).await {
                    Ok(entry) => entry,
                    Err(e) if !reopened && self.reopen.is_some() => {
                        // Perhaps the bucket is gone: create it again once.
                        tracing::info!(error = %e, "host politeness bucket unreadable; opening it again");
                        reopened = true;
                        self.reopen_bucket().await?;
                        continue;
                    }
                    Err(e) => return Err(CrawlError::infra("host politeness", e)),
                }
                .map_or((HostEntry::default(), None), |e| match e.operation {
                    kv::Operation::Put => (HostEntry::decode(&e.value), Some(e.revision)),
                    _ => (HostEntry::default(), Some(e.revision)),
                }),
            };
            let (write, out) = step(crawlq_runtime::now_ms(), &mut state);
            if !write {
                if from_cache {
                    // Only an entry just read can refuse: another replica
                    // may have freed a place since the copy was kept.
                    continue;
                }
                if let Some(revision) = revision {
                    *cached = Some(Cached {
                        entry: state,
                        revision,
                    });
                }
                return Ok(out);
            }
            let value = Bytes::from(serde_json::to_vec(&state).expect("host entry serializes"));
            let written = match revision {
                Some(r) => kv.update(&key, value, r).await.ok(),
                None => kv.create(&key, value).await.ok(),
            };
            if let Some(revision) = written {
                *cached = Some(Cached {
                    entry: state,
                    revision,
                });
                return Ok(out);
            }
            // Another replica moved first: read again, after a little
            // jitter so racing replicas spread out.
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(1 + attempt % 7)).await;
            }
        }
        Err(CrawlError::infra(
            "host politeness",
            std::io::Error::other(format!("{host}: compare-and-set lost 50 times in a row")),
        ))
    }
}

/// A host's entry as this process last wrote it.
struct Cached {
    entry: HostEntry,
    revision: u64,
}

#[derive(Debug)]
struct HostState {
    next_at: Instant,
    in_flight: usize,
    waiting: usize,
}

/// Politeness bookkeeping for all hosts.
#[derive(Debug)]
pub struct Politeness {
    hosts: Mutex<HashMap<String, HostState>>,
    per_host: usize,
}

/// A granted slot; dropping it frees the host for the next request.
pub struct HostPermit {
    owner: Arc<Politeness>,
    host: String,
}

impl Drop for HostPermit {
    fn drop(&mut self) {
        let mut hosts = self.owner.lock();
        if let Some(s) = hosts.get_mut(&self.host) {
            s.in_flight -= 1;
        }
        self.owner.gc(&mut hosts);
    }
}

impl Politeness {
    /// `per_host` requests may run at once on one host.
    pub fn new(per_host: usize) -> Arc<Politeness> {
        Arc::new(Politeness {
            hosts: Mutex::new(HashMap::new()),
            per_host: per_host.max(1),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HostState>> {
        self.hosts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn gc(&self, hosts: &mut HashMap<String, HostState>) {
        if hosts.len() > 1024 {
            let now = Instant::now();
            hosts.retain(|_, s| s.in_flight > 0 || s.waiting > 0 || s.next_at > now);
        }
    }

    /// Hosts currently tracked.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// Waits for `host`'s next slot, `delay` after the previous start.
    /// Returns `Err(expected wait)` when that would exceed `max_wait`.
    pub async fn acquire(
        self: &Arc<Self>,
        host: &str,
        delay: Duration,
        max_wait: Duration,
    ) -> Result<(HostPermit, Duration), Duration> {
        let started = Instant::now();
        let mut queued = false;
        loop {
            let wait = {
                let mut hosts = self.lock();
                let now = Instant::now();
                let s = hosts.entry(host.to_string()).or_insert(HostState {
                    next_at: now,
                    in_flight: 0,
                    waiting: 0,
                });
                if queued {
                    s.waiting -= 1;
                }
                if s.in_flight < self.per_host && now >= s.next_at {
                    s.in_flight += 1;
                    s.next_at = now + delay;
                    return Ok((
                        HostPermit {
                            owner: self.clone(),
                            host: host.to_string(),
                        },
                        started.elapsed(),
                    ));
                }
                let until_next = s.next_at.saturating_duration_since(now);
                let expected = until_next + delay.mul_f64(s.waiting as f64 / self.per_host as f64);
                if expected > max_wait {
                    return Err(expected);
                }
                s.waiting += 1;
                queued = true;
                until_next.max(Duration::from_millis(5))
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spaces_requests_and_defers_floods() {
        let p = Politeness::new(1);
        let d = Duration::from_millis(200);
        let t0 = Instant::now();
        let (a, _) = p.acquire("h", d, Duration::from_secs(5)).await.unwrap();
        drop(a);
        let (b, waited) = p.acquire("h", d, Duration::from_secs(5)).await.unwrap();
        assert!(
            t0.elapsed() >= d && waited >= Duration::from_millis(150),
            "{waited:?}"
        );
        // Another host is not held up.
        let t1 = Instant::now();
        let (_c, _) = p.acquire("other", d, Duration::from_secs(5)).await.unwrap();
        assert!(t1.elapsed() < Duration::from_millis(50));
        drop(b);
        // A wait longer than max_wait is refused with the expected wait.
        let _held = p
            .acquire("h", Duration::from_secs(10), Duration::from_secs(1))
            .await;
        assert!(p
            .acquire("h", Duration::from_secs(10), Duration::from_secs(1))
            .await
            .is_err());
    }
}
