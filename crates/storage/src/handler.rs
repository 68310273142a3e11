//! The storage stage: `SnapshotRecord`s and `CheckObservation`s in;
//! archive objects, a `StoredSnapshot` event and the article's next
//! scheduled check out.
//!
//! Every fetch of an article is a check of it: storage, which holds the
//! article's history, decides what the check means (see [`crate::watch`])
//! and schedules the next one as a message the NATS server publishes when
//! its time comes. Edits, removals and restorations go to the change log.

use std::sync::Arc;
use std::time::Instant;

use crawlq_proto::v1::{
    CheckObservation, CrawlRequest, Origin, RevisitTarget, SnapshotRecord, StoreOutcome,
    StoredSnapshot, UrlKind,
};
use crawlq_proto::Message as _;
use crawlq_record::labels::Label;
use crawlq_runtime::http::Readiness;
use crawlq_runtime::{schedule, Delivery, Described, Handler, Outgoing, Topology};

use crate::archive::{Archive, Written};
use crate::changes::{ChangeEntry, Changes};
use crate::error::StorageError;
use crate::index::{Index, IndexEntry};
use crate::metrics as m;
use crate::service::CHECK_STORE;
use crate::watch::Transition;

/// Archives records and applies checks.
pub struct StoreHandler {
    /// The archive writer.
    pub archive: Arc<Archive>,
    /// The WARC archive, when on.
    pub warc: Option<crate::warc::Shared>,
    /// The per-host index lists.
    pub index: Index,
    /// The change log.
    pub changes: Changes,
    /// Subject names.
    pub topology: Topology,
    /// Closed at the first sign of a store outage, so the worker stops
    /// pulling (and spending deliveries) until the probe sees it answer.
    pub readiness: Readiness,
}

/// Largest claim-checked record read back (its page was at most the body
/// cap; the record adds the clean HTML and text).
const MAX_CLAIMED_RECORD: usize = 64 * 1024 * 1024;

/// The article a record or a check is about.
struct Article<'a> {
    id: &'a str,
    host: &'a str,
    /// The check came from a scheduled revisit.
    revisit: bool,
    /// When it was checked, Unix ms (for event ids).
    at: i64,
}

impl StoreHandler {
    async fn record(&self, delivery: &Delivery) -> Result<Vec<Outgoing>, StorageError> {
        let started = Instant::now();
        let mut record = SnapshotRecord::decode(delivery.payload.clone())
            .map_err(|e| StorageError::BadMessage(e.to_string()))?;
        if !record.record_key.is_empty() {
            record = self
                .claimed(&record)
                .await
                .inspect_err(|e| self.on_error(e))?;
        }
        // The fetch's WARC records are durable before anything refers to
        // them (and before the message is acknowledged).
        let warc = match &self.warc {
            Some(w) => w
                .archive_fetch(&record)
                .await
                .inspect_err(|e| self.on_error(e))?,
            None => None,
        };
        let written = self
            .archive
            .write(&record, warc.as_ref())
            .await
            .inspect_err(|e| self.on_error(e))?;
        if matches!(written.outcome, StoreOutcome::New | StoreOutcome::Changed) {
            self.index_entry(&record.host, &record.id, &written, false)
                .await?;
        }
        tracing::debug!(url = %record.url, outcome = ?written.outcome, took = ?started.elapsed(), "archived");
        let article = Article {
            id: &record.id,
            host: &record.host,
            revisit: record.revisit,
            at: record.fetched_at,
        };
        // One event per outcome of one fetch: redeliveries collapse, but a
        // duplicate's `unchanged` never hides the first copy's `new`.
        let event_id = format!(
            "stored:{}:{}:{}:{}",
            record.id,
            &record.content_sha256[..16],
            record.fetched_at,
            written.outcome as i32
        );
        self.after_check(
            &article,
            &written,
            delivery,
            event_id,
            &record.content_sha256,
        )
        .await
    }

    async fn check(&self, delivery: &Delivery) -> Result<Vec<Outgoing>, StorageError> {
        let obs = CheckObservation::decode(delivery.payload.clone())
            .map_err(|e| StorageError::BadMessage(format!("not a CheckObservation: {e}")))?;
        if let Some(w) = &self.warc {
            w.archive_observation(&obs)
                .await
                .inspect_err(|e| self.on_error(e))?;
        }
        let Some(written) = self
            .archive
            .observe(&obs)
            .await
            .inspect_err(|e| self.on_error(e))?
        else {
            tracing::warn!(id = %obs.record_id, url = %obs.url, "check of an article not in the archive; ignored");
            return Ok(Vec::new());
        };
        let article = Article {
            id: &obs.record_id,
            host: &obs.host,
            revisit: true,
            at: obs.checked_at,
        };
        let event_id = format!("stored:check:{}:{}", obs.record_id, obs.checked_at);
        self.after_check(&article, &written, delivery, event_id, "")
            .await
    }

    /// What follows any check: the index marks a removal, the change log
    /// gets edits, removals and restorations, the next check is scheduled,
    /// and a stored event says what happened.
    async fn after_check(
        &self,
        a: &Article<'_>,
        w: &Written,
        delivery: &Delivery,
        event_id: String,
        sha: &str,
    ) -> Result<Vec<Outgoing>, StorageError> {
        if a.revisit {
            metrics::counter!(m::REVISITS, "outcome" => w.check.clone()).increment(1);
        }
        match w.transition {
            Transition::Removed => {
                metrics::counter!(m::REMOVED).increment(1);
                self.index_entry(a.host, a.id, w, true).await?;
            }
            Transition::Restored => self.index_entry(a.host, a.id, w, false).await?,
            Transition::None => {}
        }
        let kind = match (w.transition, w.outcome) {
            (Transition::Removed, _) => Some("removed"),
            (Transition::Restored, _) => Some("restored"),
            (_, StoreOutcome::Changed) if w.previous.is_some() => Some("changed"),
            _ => None,
        };
        if let Some(kind) = kind {
            self.changes.record(self.change(a, w, kind)).await?;
        }
        let outcome = if w.transition == Transition::Restored {
            StoreOutcome::Restored
        } else {
            w.outcome
        };
        let event = StoredSnapshot {
            record_id: a.id.to_string(),
            object_keys: w.keys.clone(),
            content_sha256: sha.to_string(),
            version: w.version,
            outcome: outcome as i32,
            url: w.url.clone(),
            request_id: request_id(delivery),
            host: a.host.to_string(),
            detail: w.evidence.clone(),
        };
        tracing::debug!(id = a.id, outcome = %outcome.label(), check = %w.check, next = ?w.next_check_at, "checked");
        let mut out =
            vec![Outgoing::protobuf(self.topology.stored(), &event).with_msg_id(event_id)];
        if let Some(at) = w.next_check_at {
            out.push(self.schedule_revisit(a, w, at));
        }
        Ok(out)
    }

    /// The article's next revisit, replacing any scheduled before.
    fn schedule_revisit(&self, a: &Article<'_>, w: &Written, at: i64) -> Outgoing {
        let req = CrawlRequest {
            url: w.url.clone(),
            request_id: crawlq_record::record_id(&format!("revisit:{}:{at}", a.id)),
            submitted_at: at,
            depth: 1,
            max_depth: 1,
            kind: UrlKind::Page as i32,
            origin: Origin::Revisit as i32,
            revisit: Some(RevisitTarget {
                record_id: a.id.to_string(),
                host: a.host.to_string(),
            }),
            ..Default::default()
        };
        let msg = Outgoing::protobuf(self.topology.due(), &req);
        schedule::at(
            msg,
            self.topology.article_schedule(a.id),
            self.topology.due(),
            at,
        )
    }

    fn change(&self, a: &Article<'_>, w: &Written, kind: &str) -> ChangeEntry {
        ChangeEntry {
            at: a.at,
            kind: kind.to_string(),
            id: a.id.to_string(),
            host: a.host.to_string(),
            title: w.title.clone(),
            url: w.url.clone(),
            version: w.version,
            version_key: w.version_key.clone(),
            previous_key: w
                .previous
                .as_ref()
                .map(|p| p.key.clone())
                .unwrap_or_default(),
            detail: w.evidence.clone(),
        }
    }

    async fn index_entry(
        &self,
        host: &str,
        id: &str,
        w: &Written,
        removed: bool,
    ) -> Result<(), StorageError> {
        let entry = IndexEntry {
            id: id.to_string(),
            title: w.title.clone(),
            published_at: w.published_at,
            removed,
        };
        self.index.add(host, entry).await
    }

    /// The whole record a claim-checked message names. The key must be a
    /// claim check, and the record the one the message announced.
    async fn claimed(&self, stub: &SnapshotRecord) -> Result<SnapshotRecord, StorageError> {
        let key = &stub.record_key;
        if !crawlq_runtime::store::is_claim_key(key) {
            return Err(StorageError::BadMessage(format!(
                "record_key `{}` is not a claim-check key",
                crawlq_runtime::clip(key, 200)
            )));
        }
        let bytes = match crawlq_runtime::store::get_claim(self.archive.store(), key).await {
            Ok(b) => b,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(StorageError::ClaimGone(key.clone()))
            }
            Err(source) => {
                return Err(StorageError::Store {
                    op: "get",
                    key: key.clone(),
                    source,
                })
            }
        };
        let raw = zstd::bulk::decompress(&bytes, MAX_CLAIMED_RECORD)
            .map_err(|e| StorageError::BadMessage(format!("claim-checked record `{key}`: {e}")))?;
        let record = SnapshotRecord::decode(&raw[..])
            .map_err(|e| StorageError::BadMessage(format!("claim-checked record `{key}`: {e}")))?;
        if record.id != stub.id || record.content_sha256 != stub.content_sha256 {
            return Err(StorageError::BadMessage(format!(
                "claim-checked record `{key}` is not the record the message announced"
            )));
        }
        Ok(record)
    }

    fn on_error(&self, e: &StorageError) {
        if e.is_outage() {
            self.readiness.set_failed(CHECK_STORE, e.to_string());
        }
    }
}

impl Handler for StoreHandler {
    type Error = StorageError;

    async fn handle(&self, delivery: &Delivery) -> Result<Vec<Outgoing>, StorageError> {
        if delivery.subject == self.topology.checks() {
            self.check(delivery).await
        } else {
            self.record(delivery).await
        }
    }

    fn describe(&self, delivery: &Delivery) -> Described {
        let url = if delivery.subject == self.topology.checks() {
            CheckObservation::decode(delivery.payload.clone())
                .map(|o| o.url)
                .ok()
        } else {
            SnapshotRecord::decode(delivery.payload.clone())
                .map(|r| r.url)
                .ok()
        };
        Described {
            url: url.unwrap_or_default(),
            request_id: request_id(delivery),
        }
    }
}

/// The crawl request id, carried in the `Crawlq-Request-Id` header.
fn request_id(d: &Delivery) -> String {
    d.header(crawlq_runtime::REQUEST_ID_HEADER)
        .unwrap_or_default()
        .to_string()
}
