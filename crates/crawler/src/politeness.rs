//! Per-host politeness: at most N requests in flight per host and at least
//! a delay between request starts. Waiting happens here, without holding a
//! global fetch slot, so a slow host never delays other hosts. A host whose
//! queue would make a request wait longer than `max_wait` gets it deferred
//! (handed back to NATS with a delay) instead of occupying a worker.
//!
//! The map holds only hosts with work in flight or a delay still running;
//! idle entries are dropped, so it does not grow with the URLs ever seen.
//!
//! Across replicas, [`SharedSpacing`] keeps each host's next allowed start
//! in NATS KV, advanced by compare-and-set: every request start, whichever
//! replica makes it, is at least the host's delay (or Crawl-delay) after
//! the previous one, and a 429's Retry-After holds the host back for all.
//! The per-host limit on requests in flight stays per replica.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use tokio::time::Instant;

use crate::error::CrawlError;

/// Lifetime of a host's entry in the spacing bucket: longer than any
/// delay or hold (Retry-After is capped at a day).
pub const SPACING_TTL: Duration = Duration::from_secs(25 * 3600);

/// Cluster-wide spacing of request starts per host (see the module doc).
pub struct SharedSpacing {
    kv: kv::Store,
}

impl SharedSpacing {
    /// Spacing kept in `kv` (a bucket whose entries live [`SPACING_TTL`]).
    pub fn new(kv: kv::Store) -> SharedSpacing {
        SharedSpacing { kv }
    }

    /// Reserves `host`'s next start, `delay` after the previous one made by
    /// any replica: returns how long to wait before starting, or
    /// `Err(wait)` when that is longer than `max_wait` (nothing reserved).
    pub async fn reserve(
        &self,
        host: &str,
        delay: Duration,
        max_wait: Duration,
    ) -> Result<Result<Duration, Duration>, CrawlError> {
        self.advance(host, |now, next| {
            let start = now.max(next);
            let wait = Duration::from_millis((start - now) as u64);
            if wait > max_wait {
                return Err(wait);
            }
            Ok((start + delay.as_millis() as i64, wait))
        })
        .await
    }

    /// Holds `host` back until `until_ms` (Unix ms) for every replica.
    pub async fn hold(&self, host: &str, until_ms: i64) -> Result<(), CrawlError> {
        self.advance(host, |_, next| Ok::<_, ()>((next.max(until_ms), ())))
            .await
            .map(|_| ())
    }

    /// A compare-and-set loop on the host's next start: `step(now, next)`
    /// gives the new next start and a result, or refuses.
    async fn advance<T, E>(
        &self,
        host: &str,
        step: impl Fn(i64, i64) -> Result<(i64, T), E>,
    ) -> Result<Result<T, E>, CrawlError> {
        let key = crate::robots::kv_key(host);
        for attempt in 0..50u64 {
            let entry = self
                .kv
                .entry(&key)
                .await
                .map_err(|e| CrawlError::infra("host spacing", e))?;
            let (next, revision) = match &entry {
                Some(e) if e.operation == kv::Operation::Put => (
                    std::str::from_utf8(&e.value)
                        .ok()
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0),
                    Some(e.revision),
                ),
                Some(e) => (0, Some(e.revision)),
                None => (0, None),
            };
            let (new, out) = match step(crawlq_runtime::now_ms(), next) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            let value = Bytes::from(new.to_string());
            let written = match revision {
                Some(r) => self.kv.update(&key, value, r).await.is_ok(),
                None => self.kv.create(&key, value).await.is_ok(),
            };
            if written {
                return Ok(Ok(out));
            }
            // Another replica moved first: read again, after a little
            // jitter so racing replicas spread out.
            tokio::time::sleep(Duration::from_millis(1 + attempt % 7)).await;
        }
        Err(CrawlError::infra(
            "host spacing",
            std::io::Error::other(format!("{host}: compare-and-set lost 50 times in a row")),
        ))
    }
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
