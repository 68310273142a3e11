//! The storage stage's wiring: open and probe the store, start the index
//! writer, build the handler, run the worker.
//!
//! The store is probed before the first message is pulled and every few
//! seconds after; while it fails, `/readyz` says why and no work is taken.

use std::time::Duration;

use crawlq_runtime::http::Readiness;
use crawlq_runtime::store::{Store, StoreKind};
use crawlq_runtime::{Runtime, Stage};
use object_store::path::Path;
use object_store::ObjectStoreExt;
use tokio_util::sync::CancellationToken;

use crate::archive::Archive;
use crate::changes::Changes;
use crate::config::Config;
use crate::handler::StoreHandler;
use crate::index::Index;
use crate::metrics as m;

/// Readiness check name of the object store.
pub const CHECK_STORE: &str = "store";

/// Runs the storage service until `stop` fires.
pub async fn run(config: Config, stop: CancellationToken) -> anyhow::Result<()> {
    let store = config.store.open()?;
    let rt = Runtime::start(&config.common, "crawlq-storage", stop.clone()).await?;
    // After Runtime::start, which installs the recorder these register with.
    m::describe();
    tracing::info!(store = %store.url, "archive store");
    if !wait_for_store(&store, &rt.readiness, &stop).await {
        return Ok(());
    }
    watch_store(store.clone(), rt.readiness.clone(), stop.clone());
    let replicas = usize::from(config.common.nats.stream_replicas);
    let bucket = |purpose: &str| {
        let (js, name) = (rt.js.clone(), rt.topology.bucket(purpose));
        async move { crawlq_runtime::nats::ensure_kv(&js, &name, Duration::ZERO, replicas).await }
    };
    let index = Index::start(
        bucket("index").await?,
        store.clone(),
        config.index_timezone,
        config.index_flush_interval,
        stop.clone(),
    );
    let changes = Changes::start(
        bucket("changes").await?,
        store.clone(),
        config.index_flush_interval,
        stop.clone(),
    );
    let (warc, writer_task) = if config.warc {
        let leases = crawlq_runtime::nats::ensure_kv(
            &rt.js,
            &rt.topology.bucket("warc_writers"),
            crate::warc::writer::LEASE_TTL,
            replicas,
        )
        .await?;
        let settings = crate::warc::Settings {
            max_bytes: config.warc_max_size,
            max_age: config.warc_max_age,
            name: config.warc_writer.clone().unwrap_or_else(host_name),
            software: format!("crawlq/{}", env!("CARGO_PKG_VERSION")),
        };
        let (writer, task) = crate::warc::Writer::start(store.clone(), settings, leases).await?;
        let captures = bucket("warc_captures").await?;
        let warc = crate::warc::Warc::new(writer, store.clone(), captures);
        (Some(std::sync::Arc::new(warc)), Some(task))
    } else {
        (None, None)
    };
    let handler = StoreHandler {
        archive: Archive::new(store, config.keep_raw, config.revisit_schedule.clone()),
        warc,
        index,
        changes,
        topology: rt.topology.clone(),
        readiness: rt.readiness.clone(),
    };
    rt.run_worker(Stage::Storage, 32, handler).await?;
    // The handler (and with it the last writer handle) is gone: the writer
    // seals its file and releases its lease.
    if let Some(task) = writer_task {
        if tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .is_err()
        {
            tracing::warn!("the WARC writer did not finish sealing within 60 s; its file is sealed by the next replica to start");
        }
    }
    Ok(())
}

/// This host's name (the pod name on Kubernetes).
fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "storage".into())
}

/// Proves the store answers and accepts our credentials by listing one
/// key; a local folder must also take a small write (and its delete), so a
/// full or read-only disk makes the stage not ready instead of turning
/// the backlog into dead letters. (Remote stores are only listed: the
/// production S3 user may not delete.)
pub async fn probe(store: &Store) -> Result<(), String> {
    use futures::StreamExt;
    let answer = async {
        let mut listing = store.inner.list(Some(&Path::from("articles")));
        if let Some(Err(e)) = listing.next().await {
            return Err(e.to_string());
        }
        if store.kind == StoreKind::Local {
            let key = Path::from(format!(".crawlq/probe-{}", std::process::id()));
            store
                .inner
                .put(&key, bytes::Bytes::from_static(b"probe").into())
                .await
                .map_err(|e| format!("cannot write: {e}"))?;
            store
                .inner
                .delete(&key)
                .await
                .map_err(|e| format!("cannot delete: {e}"))?;
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(10), answer).await {
        Ok(result) => result,
        Err(_) => Err("no answer within 10 s".into()),
    }
}

async fn wait_for_store(store: &Store, readiness: &Readiness, stop: &CancellationToken) -> bool {
    let mut delay = Duration::from_millis(500);
    loop {
        match probe(store).await {
            Ok(()) => {
                readiness.set_ok(CHECK_STORE);
                return true;
            }
            Err(e) => {
                tracing::error!(store = %store.url, error = %e, "object store unavailable; not taking work until it answers");
                readiness.set_failed(CHECK_STORE, e);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => delay = (delay * 2).min(Duration::from_secs(30)),
            _ = stop.cancelled() => return false,
        }
    }
}

fn watch_store(store: Store, readiness: Readiness, stop: CancellationToken) {
    crawlq_runtime::service::every(Duration::from_secs(5), stop, move || {
        let (store, readiness) = (store.clone(), readiness.clone());
        async move {
            match probe(&store).await {
                Ok(()) => readiness.set_ok(CHECK_STORE),
                Err(e) => {
                    tracing::warn!(error = %e, "object store probe failed");
                    readiness.set_failed(CHECK_STORE, e);
                }
            }
        }
    });
}
