//! Per-host politeness: at most N requests in flight per host and at least
//! a delay between request starts. Waiting happens here, without holding a
//! global fetch slot, so a slow host never delays other hosts. A host whose
//! queue would make a request wait longer than `max_wait` gets it deferred
//! (handed back to NATS with a delay) instead of occupying a worker.
//!
//! The map holds only hosts with work in flight or a delay still running;
//! idle entries are dropped, so it does not grow with the URLs ever seen.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

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
