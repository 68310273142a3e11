//! The storage stage: `SnapshotRecord` in, archive objects and a
//! `StoredSnapshot` event out.

use std::sync::Arc;
use std::time::Instant;

use crawlq_proto::v1::{SnapshotRecord, StoreOutcome, StoredSnapshot};
use crawlq_proto::Message as _;
use crawlq_runtime::http::Readiness;
use crawlq_runtime::{Delivery, Described, Handler, Outgoing, Topology};

use crate::archive::Archive;
use crate::error::StorageError;
use crate::index::{Index, IndexEntry};
use crate::service::CHECK_STORE;

/// Archives records.
pub struct StoreHandler {
    /// The archive writer.
    pub archive: Arc<Archive>,
    /// The per-host index lists.
    pub index: Index,
    /// Subject names.
    pub topology: Topology,
    /// Closed at the first sign of a store outage, so the worker stops
    /// pulling (and spending deliveries) until the probe sees it answer.
    pub readiness: Readiness,
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
    d.header(crawlq_runtime::REQUEST_ID_HEADER)
        .unwrap_or_default()
        .to_string()
}
