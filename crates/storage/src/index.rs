//! Per-host index pages, `index/{host}.md`: the newest 300 articles, newest
//! first, one line each: `M-D [title](../articles/{host}/{id}.md)`.
//!
//! The list itself lives in a NATS key-value bucket (one key per host) and
//! is updated with compare-and-swap on the key's revision, so several
//! storage replicas never lose each other's entries. Updates are grouped:
//! handlers queue their entry and wait while one task applies a whole
//! batch per host in a single swap, so a record is acked only once its
//! entry is in the list. The `.md` objects are re-rendered from the bucket
//! in batches, for hosts that changed since the last flush.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use chrono::{Datelike, FixedOffset, TimeZone};
use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::StorageError;
use crate::layout;
use crate::metrics as m;

/// Entries kept per host.
pub const INDEX_SIZE: usize = 300;

/// One line of an index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexEntry {
    /// Record id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Publication time, Unix ms.
    pub published_at: i64,
}

/// Why an index list could not be updated.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The key-value bucket failed.
    #[error("index bucket {op} for `{host}`: {source}")]
    Kv {
        /// Operation.
        op: &'static str,
        /// Host key.
        host: String,
        /// Underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stored list is not a list of entries. Replacing it would erase
    /// the host's index, so the update is refused until someone repairs it.
    #[error("index list of `{host}` is damaged ({source}); refusing to replace it")]
    Damaged {
        /// Host key.
        host: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// Other writers kept changing the list.
    #[error("index for `{0}` kept changing")]
    Contended(String),
    /// The index task is gone (the process is stopping).
    #[error("index writer stopped")]
    Stopped,
}

type Waiter = oneshot::Sender<Result<(), Arc<IndexError>>>;

/// Handle to the index writer.
#[derive(Clone)]
pub struct Index {
    tx: mpsc::Sender<(String, IndexEntry, Waiter)>,
}

impl Index {
    /// Starts the batcher and the flusher. `tz` is the offset index dates
    /// are shown in.
    pub fn start(
        kv: kv::Store,
        store: crawlq_runtime::store::Store,
        tz: FixedOffset,
        flush_every: Duration,
        stop: CancellationToken,
    ) -> Index {
        let (tx, rx) = mpsc::channel(4096);
        let dirty: Arc<Mutex<HashSet<String>>> = Arc::default();
        tokio::spawn(batcher(kv.clone(), rx, dirty.clone()));
        tokio::spawn(flusher(kv, store, tz, dirty, flush_every, stop));
        Index { tx }
    }

    /// Adds an entry for `host`; returns once it is in the shared list.
    pub async fn add(&self, host: &str, entry: IndexEntry) -> Result<(), StorageError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((layout::host_segment(host), entry, done))
            .await
            .map_err(|_| StorageError::Index(Arc::new(IndexError::Stopped)))?;
        wait.await
            .map_err(|_| StorageError::Index(Arc::new(IndexError::Stopped)))?
            .map_err(StorageError::Index)
    }
}

async fn batcher(
    kv: kv::Store,
    mut rx: mpsc::Receiver<(String, IndexEntry, Waiter)>,
    dirty: Arc<Mutex<HashSet<String>>>,
) {
    while let Some(first) = rx.recv().await {
        // Take everything queued right now as one batch.
        let mut batch: BTreeMap<String, (Vec<IndexEntry>, Vec<Waiter>)> = BTreeMap::new();
        let mut push = |(host, entry, done): (String, IndexEntry, Waiter)| {
            let slot = batch.entry(host).or_default();
            slot.0.push(entry);
            slot.1.push(done);
        };
        push(first);
        while let Ok(more) = rx.try_recv() {
            push(more);
        }
        // Hosts are independent keys: merge them at once, not in turn.
        let kv = &kv;
        let merged = futures::future::join_all(batch.into_iter().map(
            |(host, (entries, waiters))| async move {
                let result = merge(kv, &host, entries).await.map_err(Arc::new);
                (host, waiters, result)
            },
        ))
        .await;
        for (host, waiters, result) in merged {
            if result.is_ok() {
                dirty.lock().unwrap_or_else(|p| p.into_inner()).insert(host);
            }
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }
}

/// Merges `entries` into the host's list with compare-and-swap.
async fn merge(kv: &kv::Store, host: &str, entries: Vec<IndexEntry>) -> Result<(), IndexError> {
    for _ in 0..50 {
        let current = kv.entry(host).await.map_err(|e| kv_err("get", host, e))?;
        let (mut list, revision) = match &current {
            Some(e) if e.operation == kv::Operation::Put => {
                (parse_list(host, &e.value)?, e.revision)
            }
            Some(e) => (Vec::new(), e.revision),
            None => (Vec::new(), 0),
        };
        for entry in &entries {
            list.retain(|e| e.id != entry.id);
            list.push(entry.clone());
        }
        list.sort_by(|a, b| {
            b.published_at
                .cmp(&a.published_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        list.truncate(INDEX_SIZE);
        let value = Bytes::from(serde_json::to_vec(&list).expect("entries serialise"));
        let swapped = if revision == 0 {
            kv.create(host, value)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            kv.update(host, value, revision)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        match swapped {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::debug!(host, error = %e, "index swap lost a race; retrying");
                tokio::time::sleep(Duration::from_millis(5 + rand_jitter())).await;
            }
        }
    }
    Err(IndexError::Contended(host.to_string()))
}

/// The stored list of `host`, refused if damaged.
fn parse_list(host: &str, value: &[u8]) -> Result<Vec<IndexEntry>, IndexError> {
    serde_json::from_slice(value).map_err(|source| IndexError::Damaged {
        host: host.to_string(),
        source,
    })
}

fn kv_err(
    op: &'static str,
    host: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> IndexError {
    IndexError::Kv {
        op,
        host: host.to_string(),
        source: Box::new(e),
    }
}

fn rand_jitter() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos() % 20))
}

async fn flusher(
    kv: kv::Store,
    store: crawlq_runtime::store::Store,
    tz: FixedOffset,
    dirty: Arc<Mutex<HashSet<String>>>,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = stop.cancelled() => true,
        };
        let hosts: Vec<String> =
            std::mem::take(&mut *dirty.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        let wrote = !hosts.is_empty();
        for host in hosts {
            if let Err(e) = flush_host(&kv, &store, tz, &host).await {
                tracing::warn!(host, error = %e, "index page not written; will retry");
                dirty.lock().unwrap_or_else(|p| p.into_inner()).insert(host);
            }
        }
        if wrote {
            if let Err(e) = store.sync().await {
                tracing::warn!(error = %e, "index pages written but not synced");
            }
        }
        if stopping {
            return;
        }
    }
}

/// Renders `index/{host}.md` from the bucket.
pub async fn flush_host(
    kv: &kv::Store,
    store: &crawlq_runtime::store::Store,
    tz: FixedOffset,
    host: &str,
) -> Result<(), String> {
    let Some(value) = kv.get(host).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let list = parse_list(host, &value).map_err(|e| e.to_string())?;
    let md = render_index(host, &list, tz);
    store
        .inner
        .put(&Path::from(layout::index(host)), Bytes::from(md).into())
        .await
        .map_err(|e| e.to_string())?;
    metrics::counter!(m::INDEX_FLUSHES).increment(1);
    Ok(())
}

/// One line per entry, newest first.
pub fn render_index(host: &str, list: &[IndexEntry], tz: FixedOffset) -> String {
    let mut out = String::new();
    for e in list {
        let date = tz.timestamp_millis_opt(e.published_at).single();
        let (mo, d) = date.map_or((1, 1), |t| (t.month(), t.day()));
        out.push_str(&format!(
            "{mo}-{d} [{}](../articles/{}/{}.md)\n",
            crawlq_record::seed::escape_title(&e.title),
            layout::host_segment(host),
            e.id
        ));
    }
    out
}

/// Parses `UTC`, `Z` or an offset such as `+08:00`.
pub fn parse_tz(s: &str) -> Result<FixedOffset, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Ok(FixedOffset::east_opt(0).expect("zero offset"));
    }
    let sign = match s.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(format!("`{s}` is not UTC or an offset like +08:00")),
    };
    let (h, m) = s[1..].split_once(':').unwrap_or((&s[1..], "0"));
    let (h, m): (i32, i32) = (
        h.parse().map_err(|_| format!("`{s}`: bad hours"))?,
        m.parse().map_err(|_| format!("`{s}`: bad minutes"))?,
    );
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
        .ok_or_else(|| format!("`{s}`: offset out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_list_is_refused_not_replaced() {
        let good = serde_json::to_vec(&vec![IndexEntry {
            id: "a".into(),
            title: "t".into(),
            published_at: 1,
        }])
        .unwrap();
        assert_eq!(parse_list("h", &good).unwrap().len(), 1);
        let err = parse_list("h", b"{\"not\": \"a list\"}").unwrap_err();
        assert!(matches!(err, IndexError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("refusing to replace"), "{err}");
    }

    #[test]
    fn renders_lines_like_the_original_archive() {
        let list = vec![
            IndexEntry {
                id: "b".into(),
                title: "Second [x]".into(),
                published_at: 1_699_530_301_000,
            },
            IndexEntry {
                id: "a".into(),
                title: "First".into(),
                published_at: 1_699_488_000_000,
            },
        ];
        let utc = parse_tz("UTC").unwrap();
        assert_eq!(render_index("www.rfi.fr", &list, utc), "11-9 [Second \\[x\\]](../articles/www.rfi.fr/b.md)\n11-9 [First](../articles/www.rfi.fr/a.md)\n");
        let paris_minus = parse_tz("-12:00").unwrap();
        assert!(render_index("h", &list[1..], paris_minus).starts_with("11-8 "));
        assert!(parse_tz("+08:00").is_ok() && parse_tz("Asia/Shanghai").is_err());
    }
}
