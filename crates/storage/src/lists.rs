//! Bounded lists kept in a NATS key-value bucket and rendered into the
//! archive: the per-host index pages and the change log.
//!
//! Each list is one key, updated with compare-and-swap on its revision, so
//! several storage replicas never lose each other's entries. Updates are
//! grouped: handlers queue their entry and wait while one task applies a
//! whole batch per key in a single swap, so a record is acked only once
//! its entry is in the list. Lists that changed are re-rendered into the
//! store in batches, every flush interval.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::StorageError;
use crate::metrics as m;

/// An entry of a list.
pub trait Item: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Does `other` stand for the same entry (and is replaced by this one)?
    fn same(&self, other: &Self) -> bool;
    /// The list's order: newest first.
    fn order(&self, other: &Self) -> Ordering;
}

/// How one kind of list is bounded and rendered.
pub trait Render<T>: Send + Sync + 'static {
    /// Most entries kept under `key`.
    fn limit(&self, key: &str) -> usize;
    /// The objects (key, body) that show list `key`.
    fn render(&self, key: &str, list: &[T]) -> Vec<(String, String)>;
}

/// Why a list could not be updated.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The key-value bucket failed.
    #[error("list bucket {op} for `{key}`: {source}")]
    Kv {
        /// Operation.
        op: &'static str,
        /// List key.
        key: String,
        /// Underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The stored list does not parse. Replacing it would erase it, so the
    /// update is refused until someone repairs it.
    #[error("list `{key}` is damaged ({source}); refusing to replace it")]
    Damaged {
        /// List key.
        key: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// Other writers kept changing the list.
    #[error("list `{0}` kept changing")]
    Contended(String),
    /// The list task is gone (the process is stopping).
    #[error("list writer stopped")]
    Stopped,
}

type Waiter = oneshot::Sender<Result<(), Arc<ListError>>>;
type Dirty = Arc<Mutex<HashSet<String>>>;

/// Handle to the writer of one kind of list.
pub struct Lists<T> {
    tx: mpsc::Sender<(String, T, Waiter)>,
}

impl<T> Clone for Lists<T> {
    fn clone(&self) -> Self {
        Lists {
            tx: self.tx.clone(),
        }
    }
}

impl<T: Item> Lists<T> {
    /// Starts the batcher and the flusher.
    pub fn start<R: Render<T>>(
        kv: kv::Store,
        store: crawlq_runtime::store::Store,
        render: R,
        flush_every: Duration,
        stop: CancellationToken,
    ) -> Lists<T> {
        let (tx, rx) = mpsc::channel(4096);
        let dirty: Dirty = Arc::default();
        let render = Arc::new(render);
        tokio::spawn(batcher(kv.clone(), rx, dirty.clone(), render.clone()));
        tokio::spawn(flusher(kv, store, render, dirty, flush_every, stop));
        Lists { tx }
    }

    /// Adds `entry` to list `key`; returns once it is in the shared list.
    pub async fn add(&self, key: String, entry: T) -> Result<(), StorageError> {
        let stopped = || StorageError::List(Arc::new(ListError::Stopped));
        let (done, wait) = oneshot::channel();
        self.tx
            .send((key, entry, done))
            .await
            .map_err(|_| stopped())?;
        wait.await
            .map_err(|_| stopped())?
            .map_err(StorageError::List)
    }
}

async fn batcher<T: Item, R: Render<T>>(
    kv: kv::Store,
    mut rx: mpsc::Receiver<(String, T, Waiter)>,
    dirty: Dirty,
    render: Arc<R>,
) {
    while let Some(first) = rx.recv().await {
        // Take everything queued right now as one batch.
        let mut batch: BTreeMap<String, (Vec<T>, Vec<Waiter>)> = BTreeMap::new();
        let mut push = |(key, entry, done): (String, T, Waiter)| {
            let slot = batch.entry(key).or_default();
            slot.0.push(entry);
            slot.1.push(done);
        };
        push(first);
        while let Ok(more) = rx.try_recv() {
            push(more);
        }
        // Keys are independent: merge them at once, not in turn.
        let (kv, render) = (&kv, &render);
        let merged = futures::future::join_all(batch.into_iter().map(
            |(key, (entries, waiters))| async move {
                let limit = render.limit(&key);
                let result = merge(kv, &key, entries, limit).await.map_err(Arc::new);
                (key, waiters, result)
            },
        ))
        .await;
        for (key, waiters, result) in merged {
            if result.is_ok() {
                dirty.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
            }
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }
}

/// Merges `entries` into list `key` with compare-and-swap.
async fn merge<T: Item>(
    kv: &kv::Store,
    key: &str,
    entries: Vec<T>,
    limit: usize,
) -> Result<(), ListError> {
    for _ in 0..50 {
        let current = kv.entry(key).await.map_err(|e| kv_err("get", key, e))?;
        let (mut list, revision) = match &current {
            Some(e) if e.operation == kv::Operation::Put => {
                (parse_list::<T>(key, &e.value)?, e.revision)
            }
            Some(e) => (Vec::new(), e.revision),
            None => (Vec::new(), 0),
        };
        for entry in &entries {
            list.retain(|e| !entry.same(e));
            list.push(entry.clone());
        }
        list.sort_by(|a, b| a.order(b));
        list.truncate(limit);
        let value = Bytes::from(serde_json::to_vec(&list).expect("entries serialise"));
        let swapped = if revision == 0 {
            kv.create(key, value)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            kv.update(key, value, revision)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        match swapped {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::debug!(key, error = %e, "list swap lost a race; retrying");
                tokio::time::sleep(Duration::from_millis(5 + jitter())).await;
            }
        }
    }
    Err(ListError::Contended(key.to_string()))
}

/// The stored list under `key`, refused if damaged.
pub fn parse_list<T: Item>(key: &str, value: &[u8]) -> Result<Vec<T>, ListError> {
    serde_json::from_slice(value).map_err(|source| ListError::Damaged {
        key: key.to_string(),
        source,
    })
}

fn kv_err(
    op: &'static str,
    key: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> ListError {
    ListError::Kv {
        op,
        key: key.to_string(),
        source: Box::new(e),
    }
}

fn jitter() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos() % 20))
}

async fn flusher<T: Item, R: Render<T>>(
    kv: kv::Store,
    store: crawlq_runtime::store::Store,
    render: Arc<R>,
    dirty: Dirty,
    every: Duration,
    stop: CancellationToken,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = stop.cancelled() => true,
        };
        let keys: Vec<String> =
            std::mem::take(&mut *dirty.lock().unwrap_or_else(|p| p.into_inner()))
                .into_iter()
                .collect();
        let wrote = !keys.is_empty();
        for key in keys {
            if let Err(e) = flush_key::<T, R>(&kv, &store, render.as_ref(), &key).await {
                tracing::warn!(key, error = %e, "list page not written; will retry");
                dirty.lock().unwrap_or_else(|p| p.into_inner()).insert(key);
            }
        }
        if wrote {
            if let Err(e) = store.sync().await {
                tracing::warn!(error = %e, "list pages written but not synced");
            }
        }
        if stopping {
            return;
        }
    }
}

/// Renders list `key` from the bucket into the store.
pub async fn flush_key<T: Item, R: Render<T>>(
    kv: &kv::Store,
    store: &crawlq_runtime::store::Store,
    render: &R,
    key: &str,
) -> Result<(), String> {
    let Some(value) = kv.get(key).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let list = parse_list::<T>(key, &value).map_err(|e| e.to_string())?;
    for (path, body) in render.render(key, &list) {
        store
            .inner
            .put(&Path::from(path), Bytes::from(body).into())
            .await
            .map_err(|e| e.to_string())?;
    }
    metrics::counter!(m::INDEX_FLUSHES).increment(1);
    Ok(())
}
