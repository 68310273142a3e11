//! The storage stage: `SnapshotRecord` in, archive objects and a
//! `StoredSnapshot` event out.
//!
//! The store is probed before the first message is pulled and every few
//! seconds after; while it fails, `/readyz` says why and no work is taken.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::FixedOffset;
use clap::{ArgAction, Args};
use crawlq_proto::v1::{SnapshotRecord, StoreOutcome, StoredSnapshot};
use crawlq_proto::Message as _;
use crawlq_runtime::config::{parse_duration, CommonArgs, StoreArgs};
use crawlq_runtime::http::Readiness;
use crawlq_runtime::store::Store;
use crawlq_runtime::{Delivery, Described, Handler, Outgoing, Runtime, Stage, Topology};
use object_store::path::Path;
use tokio_util::sync::CancellationToken;

use crate::archive::Archive;
use crate::error::StorageError;
use crate::index::{self, Index, IndexEntry};
use crate::metrics as m;

/// Readiness check name of the object store.
pub const CHECK_STORE: &str = "store";

/// Settings of `crawlq storage`.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Archive the raw fetched page next to each version.
    #[arg(long = "keep-raw", env = "CRAWLQ_KEEP_RAW", default_value_t = true, action = ArgAction::Set)]
    pub keep_raw: bool,
    /// Time zone of the dates in index pages: UTC or an offset like +08:00.
    #[arg(long = "index-timezone", env = "CRAWLQ_INDEX_TIMEZONE", default_value = "UTC", value_parser = index::parse_tz)]
    pub index_timezone: FixedOffset,
    /// How often changed index pages are rewritten.
    #[arg(long = "index-flush-interval", env = "CRAWLQ_INDEX_FLUSH_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub index_flush_interval: Duration,
}

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
    let kv = crawlq_runtime::nats::ensure_kv(
        &rt.js,
        &rt.topology.bucket("index"),
        Duration::ZERO,
        usize::from(config.common.nats.stream_replicas),
    )
    .await?;
    let index = Index::start(
        kv,
        store.clone(),
        config.index_timezone,
        config.index_flush_interval,
        stop.clone(),
    );
    let handler = StoreHandler {
        archive: Archive::new(store, config.keep_raw),
        index,
        topology: rt.topology.clone(),
        readiness: rt.readiness.clone(),
    };
    rt.run_worker(Stage::Storage, 32, handler).await?;
    Ok(())
}

/// Lists one key to prove the store answers and accepts our credentials.
pub async fn probe(store: &Store) -> Result<(), String> {
    use futures::StreamExt;
    let mut listing = store.inner.list(Some(&Path::from("articles")));
    match tokio::time::timeout(Duration::from_secs(10), listing.next()).await {
        Ok(None) | Ok(Some(Ok(_))) => Ok(()),
        Ok(Some(Err(e))) => Err(e.to_string()),
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

/// Archives records.
pub struct StoreHandler {
    archive: Arc<Archive>,
    index: Index,
    topology: Topology,
    /// Closed at the first sign of a store outage, so the worker stops
    /// pulling (and spending deliveries) until the probe sees it answer.
    readiness: Readiness,
}

impl Handler for StoreHandler {
    type Error = StorageError;

    async fn handle(&self, delivery: &Delivery) -> Result<Vec<Outgoing>, StorageError> {
        let started = Instant::now();
        let record = SnapshotRecord::decode(delivery.payload.clone())
            .map_err(|e| StorageError::BadMessage(e.to_string()))?;
        let written = self.archive.write(&record).await.inspect_err(|e| {
            if e.is_outage() {
                self.readiness.set_failed(CHECK_STORE, e.to_string());
            }
        })?;
        if written.outcome != StoreOutcome::Unchanged {
            let entry = IndexEntry {
                id: record.id.clone(),
                title: record.title.clone(),
                published_at: record.published_at,
            };
            self.index.add(&record.host, entry).await?;
        }
        let event = StoredSnapshot {
            record_id: record.id.clone(),
            object_keys: written.keys,
            content_sha256: record.content_sha256.clone(),
            version: written.version,
            outcome: written.outcome as i32,
            url: record.url.clone(),
            request_id: request_id(delivery),
            host: record.host.clone(),
        };
        tracing::debug!(url = %record.url, outcome = ?written.outcome, took = ?started.elapsed(), "archived");
        // One event per outcome of one fetch: redeliveries collapse, but a
        // duplicate's `unchanged` never hides the first copy's `new`.
        let id = format!(
            "stored:{}:{}:{}:{}",
            record.id,
            &record.content_sha256[..16],
            record.fetched_at,
            written.outcome as i32
        );
        Ok(vec![
            Outgoing::protobuf(self.topology.stored(), &event).with_msg_id(id)
        ])
    }

    fn describe(&self, delivery: &Delivery) -> Described {
        match SnapshotRecord::decode(delivery.payload.clone()) {
            Ok(r) => Described {
                url: r.url,
                request_id: request_id(delivery),
            },
            Err(_) => Described::default(),
        }
    }
}

/// The crawl request id, carried in the `Crawlq-Request-Id` header.
fn request_id(d: &Delivery) -> String {
    d.header(crawlq_runtime::worker::REQUEST_ID_HEADER)
        .unwrap_or_default()
        .to_string()
}
