//! Writing one record into the archive, idempotently.
//!
//! Order of writes, so a crash at any point leaves a state a redelivery
//! completes without duplicates:
//!
//! 1. read `articles/{host}/{id}.json`; if this very fetch is listed (a
//!    redelivery), nothing is written; if the latest version has the same
//!    content (or the same title and text but for white space), the
//!    outcome is `unchanged` and only the check is recorded in the JSON;
//! 2. create the raw page and the version object with `PutMode::Create`;
//!    if one already exists (a retried create), its bytes are compared
//!    instead of failing;
//! 3. overwrite the latest `.md` when this is the newest version;
//! 4. write the `.json` (the commit point listing the versions, the
//!    status and the checks), with a conditional update on its version
//!    where the store supports it; on a conflict, start again from 1.
//!
//! Checks that produced no record (a 304, a removal's evidence, an error;
//! see [`crate::watch`]) update the same JSON the same way.
//!
//! object_store stages each local-folder write in a temp file and renames
//! it, so readers never see half an object; before returning, the record's
//! objects are made durable (`Store::sync`: one group commit shared by the
//! writers waiting, or per-object fsync, as configured).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crawlq_proto::v1::{CheckObservation, CheckOutcome, SnapshotRecord, StoreOutcome};
pub use crawlq_record::article::VersionEntry;
use crawlq_record::article::{change_key, Check, Tracking, WarcRef};
use crawlq_record::json::to_json;
use crawlq_record::labels::Label;
use crawlq_record::render;
use crawlq_runtime::store::{Store, StoreKind};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::error::StorageError;
use crate::layout;
use crate::metrics as m;
use crate::watch::{self, Schedule, Seen, Transition};

/// What writing a record, or applying a check, did.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// New article, changed content, or unchanged.
    pub outcome: StoreOutcome,
    /// Version number of the record's content (the latest, for a check).
    pub version: u32,
    /// Keys written (empty when nothing was).
    pub keys: Vec<String>,
    /// What the check did to the article's status.
    pub transition: Transition,
    /// The check's outcome label (`new`, `changed`, `failed`, ...).
    pub check: String,
    /// When the article is checked next; `None` when it is not.
    pub next_check_at: Option<i64>,
    /// The version before this one, when this one is an edit.
    pub previous: Option<VersionEntry>,
    /// Title and canonical URL of the article.
    pub title: String,
    /// Canonical URL.
    pub url: String,
    /// Publication time, Unix ms.
    pub published_at: i64,
    /// Object key of the version `version`.
    pub version_key: String,
    /// The evidence of a removal, in words (`http 404 at …; http 410 at …`).
    pub evidence: String,
}

/// Conflicting writers retry this many times before giving the message back.
const MAX_ATTEMPTS: usize = 8;
/// Stripes of the per-article lock.
const STRIPES: usize = 256;

/// The archive writer.
pub struct Archive {
    store: Store,
    keep_raw: bool,
    schedule: Schedule,
    locks: Vec<Mutex<()>>,
}

/// An article's JSON document as read, with what history it holds.
struct Current {
    doc: Value,
    version: UpdateVersion,
    versions: Vec<VersionEntry>,
    tracking: Tracking,
}

impl Archive {
    /// An archive on `store`; `keep_raw` also archives raw pages;
    /// `schedule` is the revisit schedule.
    pub fn new(store: Store, keep_raw: bool, schedule: Schedule) -> Arc<Archive> {
        Arc::new(Archive {
            store,
            keep_raw,
            schedule,
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Archives `record`, and records the fetch as a check of the article.
    /// `warc` is where the fetch's response is in the WARC archive, when
    /// it is there: then no `raw/` object is written.
    pub async fn write(
        &self,
        record: &SnapshotRecord,
        warc: Option<&WarcRef>,
    ) -> Result<Written, StorageError> {
        validate(record)?;
        let started = Instant::now();
        let written = self
            .serialised(&record.id, || self.try_write(record, warc))
            .await?;
        metrics::counter!(m::WRITES, "outcome" => written.outcome.label()).increment(1);
        metrics::histogram!(m::WRITE_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(written)
    }

    /// Applies a check that produced no record (a 304, a removal's
    /// evidence, an error) to the article's history. `None` when the
    /// article is not in the archive.
    pub async fn observe(&self, obs: &CheckObservation) -> Result<Option<Written>, StorageError> {
        if obs.record_id.len() < 8 || !obs.record_id.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(StorageError::Incomplete("record_id"));
        }
        if obs.host.is_empty() {
            return Err(StorageError::Incomplete("host"));
        }
        self.serialised(&obs.record_id, || self.try_observe(obs))
            .await
    }

    /// Runs `attempt` under the article's lock until it does not conflict
    /// with another writer, then makes what it wrote durable.
    async fn serialised<T, F, Fut>(&self, id: &str, mut attempt: F) -> Result<T, StorageError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        // Two writes of one article in this process are made in turn;
        // in a local folder, in every process sharing it too.
        let stripe =
            u64::from_str_radix(&id[..id.len().min(8)], 16).unwrap_or(0) as usize % STRIPES;
        let _guard = self.locks[stripe].lock().await;
        let _folder_lock = match self.store.local_root() {
            Some(root) => Some(folder_lock(root, stripe).await?),
            None => None,
        };
        let mut last_conflict = None;
        for _ in 0..MAX_ATTEMPTS {
            match attempt().await {
                Ok(done) => {
                    // Durable before the caller acknowledges; a no-op too,
                    // since a failed attempt may have written.
                    self.store
                        .sync()
                        .await
                        .map_err(|e| store_err("sync", id, e))?;
                    return Ok(done);
                }
                Err(Attempt::Conflict(key)) => last_conflict = Some(key),
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        Err(StorageError::Contended(last_conflict.unwrap_or_default()))
    }

    async fn current(&self, json_key: &str) -> Result<Option<Current>, Attempt> {
        let Some((doc, version)) = self.read_json(json_key).await? else {
            return Ok(None);
        };
        let versions = versions_of(json_key, &doc).map_err(Attempt::Failed)?;
        let tracking = Tracking::of(&doc).map_err(|e| {
            Attempt::Failed(StorageError::Damaged {
                key: json_key.to_string(),
                why: format!("its status and checks do not parse: {e}"),
            })
        })?;
        Ok(Some(Current {
            doc,
            version,
            versions,
            tracking,
        }))
    }

    async fn try_write(
        &self,
        r: &SnapshotRecord,
        warc: Option<&WarcRef>,
    ) -> Result<Written, Attempt> {
        let json_key = layout::latest_json(&r.host, &r.id);
        let current = self.current(&json_key).await?;
        let versions = current.as_ref().map_or(&[][..], |c| &c.versions[..]);
        match classify(r, versions) {
            // Its check is recorded; the next one is scheduled again, in
            // case the first delivery died before publishing it.
            // A re-extraction that reads the same (or is redelivered):
            // nothing to record, no check, no schedule.
            Fetch::Redelivery(v) | Fetch::Unchanged { version: v, .. } if r.reextracted => {
                Ok(written(r, StoreOutcome::Unchanged, &v, Vec::new()))
            }
            // Written and committed by an earlier delivery that may not
            // have said so: the same outcome again (so its event, same id,
            // collapses with the first, or stands in for one lost).
            Fetch::Redelivery(v) => {
                let current = current.expect("a listed fetch has a document");
                Ok(redelivered(r, &v, &current.versions).tracked(&current.tracking))
            }
            Fetch::Unchanged { version, newest } => {
                let current = current.expect("a matching version has a document");
                self.record_unchanged(r, json_key, current, version, newest)
                    .await
            }
            Fetch::Changed { latest, newest } => {
                self.write_version(r, warc, json_key, current, latest, newest)
                    .await
            }
        }
    }

    /// The fetch found the latest content again: only the check is
    /// recorded (once; a late, older fetch records nothing).
    async fn record_unchanged(
        &self,
        r: &SnapshotRecord,
        json_key: String,
        current: Current,
        v: VersionEntry,
        newest: bool,
    ) -> Result<Written, Attempt> {
        let mut tracking = current.tracking;
        if !newest || watch::already_recorded(&tracking, r.fetched_at) {
            return Ok(written(r, StoreOutcome::Unchanged, &v, Vec::new()).tracked(&tracking));
        }
        let seen = Seen::Content {
            changed: false,
            first: false,
        };
        let (transition, check) = watch::apply(&mut tracking, &self.schedule, seen, check_of(r));
        let mut doc = current.doc;
        tracking.write_into(&mut doc);
        self.commit(&json_key, doc, Some(current.version), &r.content_sha256)
            .await?;
        let mut w = written(r, StoreOutcome::Unchanged, &v, vec![json_key]).tracked(&tracking);
        (w.transition, w.check) = (transition, check);
        Ok(w)
    }

    /// New content: the raw page, the version object, the latest `.md`
    /// when it is the newest, then the JSON that commits them.
    async fn write_version(
        &self,
        r: &SnapshotRecord,
        warc: Option<&WarcRef>,
        json_key: String,
        current: Option<Current>,
        latest: Option<VersionEntry>,
        newest: bool,
    ) -> Result<Written, Attempt> {
        let (versions, mut tracking) = match &current {
            Some(c) => (c.versions.clone(), c.tracking.clone()),
            None => (Vec::new(), Tracking::default()),
        };
        let outcome = if current.is_some() {
            StoreOutcome::Changed
        } else {
            StoreOutcome::New
        };
        let md = render(r);
        let mut keys = Vec::new();
        // A re-extraction's raw page is the archived one it was read from.
        if self.keep_raw && !r.reextracted && warc.is_none() {
            if let Some(key) = self.write_raw(r).await.map_err(Attempt::Failed)? {
                keys.push(key);
            }
        }
        let version_key = self
            .version_object(r, &versions, &md)
            .await
            .map_err(Attempt::Failed)?;
        keys.push(version_key.clone());
        if newest {
            let key = layout::latest_md(&r.host, &r.id);
            self.put(&key, Bytes::from(md), PutMode::Overwrite, &r.content_sha256)
                .await
                .map_err(Attempt::Failed)?;
            keys.push(key);
        }
        let entry = VersionEntry {
            version: versions.iter().map(|v| v.version).max().unwrap_or(0) + 1,
            fetched_at: r.fetched_at,
            content_sha256: r.content_sha256.clone(),
            key: version_key,
            change_key: change_key(&r.title, &r.text),
            extractor_version: r.extractor_version.clone(),
            cause: if r.reextracted {
                "reextract".into()
            } else {
                String::new()
            },
            warc: warc.cloned(),
        };
        let mut all = versions;
        all.push(entry.clone());
        all.sort_by_key(|v| (v.fetched_at, v.version));
        // A late, older fetch fills in history; it says nothing about now.
        // A re-extraction is a new reading of an old fetch: no check.
        let (transition, check) = if r.reextracted {
            (Transition::None, "reextracted".to_string())
        } else if newest {
            let seen = Seen::Content {
                changed: true,
                first: current.is_none(),
            };
            watch::apply(&mut tracking, &self.schedule, seen, check_of(r))
        } else {
            (Transition::None, "changed".to_string())
        };
        let (mut doc, update) = match current {
            Some(c) if !newest => (c.doc, Some(c.version)),
            Some(c) => (to_json(r), Some(c.version)),
            None => (to_json(r), None),
        };
        tracking.write_into(&mut doc);
        doc["versions"] = serde_json::to_value(&all).expect("versions serialise");
        self.commit(&json_key, doc, update, &r.content_sha256)
            .await?;
        keys.push(json_key);
        let mut w = written(r, outcome, &entry, keys);
        if !r.reextracted {
            // A re-extraction leaves the watch and its schedule alone, and
            // is no edit for the change log.
            w = w.tracked(&tracking);
            w.previous = latest.filter(|_| newest);
        }
        (w.transition, w.check) = (transition, check);
        Ok(w)
    }

    async fn try_observe(&self, obs: &CheckObservation) -> Result<Option<Written>, Attempt> {
        let json_key = layout::latest_json(&obs.host, &obs.record_id);
        let Some(current) = self.current(&json_key).await? else {
            return Ok(None);
        };
        let mut tracking = current.tracking.clone();
        let latest = current
            .versions
            .iter()
            .max_by_key(|v| (v.fetched_at, v.version))
            .cloned()
            .expect("versions_of refuses an empty list");
        let title = current.doc["title"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let url = current.doc["url"].as_str().unwrap_or_default().to_string();
        let (seen, outcome) = match obs.outcome() {
            CheckOutcome::NotModified => (Seen::NotModified, StoreOutcome::NotModified),
            CheckOutcome::Gone => (Seen::Gone, StoreOutcome::CheckFailed),
            _ => (Seen::Error, StoreOutcome::CheckError),
        };
        let mut written = Written {
            outcome,
            version: latest.version,
            keys: Vec::new(),
            transition: Transition::None,
            check: String::new(),
            next_check_at: tracking.watch.next_check_at,
            previous: None,
            title,
            url,
            published_at: current.doc["published_at"].as_i64().unwrap_or_default(),
            version_key: latest.key.clone(),
            evidence: String::new(),
        };
        if watch::already_recorded(&tracking, obs.checked_at) {
            written.check = tracking
                .checks
                .iter()
                .rev()
                .find(|c| c.at == obs.checked_at)
                .map(|c| c.outcome.clone())
                .unwrap_or_default();
            return Ok(Some(written));
        }
        let check = Check {
            at: obs.checked_at,
            status: obs.status,
            outcome: String::new(),
            final_url: if obs.final_url != obs.url {
                obs.final_url.clone()
            } else {
                String::new()
            },
            detail: crawlq_runtime::clip(&obs.detail, 500),
        };
        let (transition, label) = watch::apply(&mut tracking, &self.schedule, seen, check);
        let mut doc = current.doc;
        tracking.write_into(&mut doc);
        self.commit(
            &json_key,
            doc,
            Some(current.version),
            &latest.content_sha256,
        )
        .await?;
        written.outcome = match transition {
            Transition::Removed => StoreOutcome::Removed,
            Transition::Restored => StoreOutcome::Restored,
            Transition::None => outcome,
        };
        written.transition = transition;
        if transition == Transition::Removed {
            written.evidence = tracking
                .removal_evidence
                .iter()
                .map(|c| {
                    let what = if c.detail.is_empty() {
                        format!("http {}", c.status)
                    } else {
                        c.detail.clone()
                    };
                    format!("{what} at {}", crawlq_runtime::schedule::rfc3339(c.at))
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
        written.check = label;
        written.next_check_at = tracking.watch.next_check_at;
        written.keys.push(json_key);
        Ok(Some(written))
    }

    /// The version object of `r`: one left by an attempt that died between
    /// writing it and committing the JSON (a crash, a kill -9) is adopted
    /// rather than the same content archived twice; else a new one.
    async fn version_object(
        &self,
        r: &SnapshotRecord,
        versions: &[VersionEntry],
        md: &str,
    ) -> Result<String, StorageError> {
        if let Some(key) = self.find_version(r, versions).await? {
            return Ok(key);
        }
        let key = layout::version(&r.host, &r.id, r.fetched_at, &r.content_sha256);
        self.create_immutable(&key, Bytes::from(md.to_string()), &r.content_sha256)
            .await?;
        Ok(key)
    }

    /// Writes the article's JSON, the commit point: a conditional update
    /// of the version read (or a create) where the store supports it.
    async fn commit(
        &self,
        json_key: &str,
        doc: Value,
        update: Option<UpdateVersion>,
        sha: &str,
    ) -> Result<(), Attempt> {
        let body = Bytes::from(serde_json::to_vec_pretty(&doc).expect("json serialises"));
        let mode = match update {
            Some(version) => PutMode::Update(version),
            None => PutMode::Create,
        };
        match self.put(json_key, body.clone(), mode, sha).await {
            Ok(()) => Ok(()),
            Err(StorageError::Store {
                source: object_store::Error::NotImplemented { .. },
                ..
            }) => {
                // No conditional update here (local folders): the per-article
                // lock already serialises this process's writers.
                self.put(json_key, body, PutMode::Overwrite, sha)
                    .await
                    .map_err(Attempt::Failed)
            }
            Err(StorageError::Store {
                source:
                    object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. },
                ..
            }) => Err(Attempt::Conflict(json_key.to_string())),
            Err(e) => Err(Attempt::Failed(e)),
        }
    }

    async fn write_raw(&self, r: &SnapshotRecord) -> Result<Option<String>, StorageError> {
        let key = layout::raw(&r.host, &r.id, r.fetched_at);
        let Some(bytes) = raw_zstd(&self.store, r).await? else {
            return Ok(None);
        };
        let sha = hex::encode(Sha256::digest(&bytes));
        self.create_immutable(&key, bytes, &sha).await?;
        Ok(Some(key))
    }

    /// The key of an existing version object with `r`'s content that no
    /// listed version owns, if any.
    async fn find_version(
        &self,
        r: &SnapshotRecord,
        versions: &[VersionEntry],
    ) -> Result<Option<String>, StorageError> {
        use futures::TryStreamExt;
        let dir = layout::versions_dir(&r.host, &r.id);
        let suffix = layout::version_suffix(&r.content_sha256);
        let listed: Vec<_> = self
            .store
            .inner
            .list(Some(&Path::from(dir.as_str())))
            .try_collect()
            .await
            .map_err(|e| store_err("list", &dir, e))?;
        Ok(listed
            .into_iter()
            .map(|o| o.location.to_string())
            .find(|k| k.ends_with(&suffix) && !versions.iter().any(|v| &v.key == k)))
    }

    /// Creates an object that must never change. If it exists already (a
    /// retried create), its bytes must equal ours.
    async fn create_immutable(
        &self,
        key: &str,
        body: Bytes,
        sha: &str,
    ) -> Result<(), StorageError> {
        match self.put(key, body.clone(), PutMode::Create, sha).await {
            Ok(()) => Ok(()),
            Err(StorageError::Store {
                source:
                    object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
                ..
            }) => {
                let have = self.get(key).await?.map(|(b, _)| b);
                if have.as_deref() == Some(&body[..]) {
                    Ok(())
                } else {
                    Err(StorageError::Conflict(key.to_string()))
                }
            }
            Err(StorageError::Store {
                source: object_store::Error::NotImplemented { .. },
                ..
            }) => {
                // The store cannot create conditionally: check, then write.
                match self.get(key).await? {
                    Some((have, _)) if have == body => Ok(()),
                    Some(_) => Err(StorageError::Conflict(key.to_string())),
                    None => self.put(key, body, PutMode::Overwrite, sha).await,
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        mode: PutMode,
        sha: &str,
    ) -> Result<(), StorageError> {
        let mut attributes = Attributes::new();
        if self.store.kind != StoreKind::Local && self.store.kind != StoreKind::Memory {
            // Local folders cannot carry metadata; remote stores can.
            attributes.insert(
                Attribute::Metadata("content-sha256".into()),
                sha.to_string().into(),
            );
        }
        let len = body.len() as u64;
        let opts = PutOptions {
            mode,
            attributes,
            ..Default::default()
        };
        match self
            .store
            .inner
            .put_opts(&Path::from(key), PutPayload::from_bytes(body), opts)
            .await
        {
            Ok(_) => {}
            // The store cannot write conditionally (a local folder): the
            // caller falls back; not a store error.
            Err(source @ object_store::Error::NotImplemented { .. }) => {
                return Err(StorageError::Store {
                    op: "put",
                    key: key.to_string(),
                    source,
                })
            }
            Err(e) => return Err(store_err("put", key, e)),
        }
        metrics::counter!(m::BYTES).increment(len);
        Ok(())
    }

    /// Reads an object and its version, or `None` if it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<(Bytes, UpdateVersion)>, StorageError> {
        match self.store.inner.get(&Path::from(key)).await {
            Ok(res) => {
                let version = UpdateVersion {
                    e_tag: res.meta.e_tag.clone(),
                    version: res.meta.version.clone(),
                };
                let bytes = res.bytes().await.map_err(|e| store_err("get", key, e))?;
                Ok(Some((bytes, version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_err("get", key, e)),
        }
    }

    async fn read_json(&self, key: &str) -> Result<Option<(Value, UpdateVersion)>, Attempt> {
        match self.get(key).await.map_err(Attempt::Failed)? {
            None => Ok(None),
            Some((bytes, version)) => match serde_json::from_slice(&bytes) {
                Ok(v) => Ok(Some((v, version))),
                Err(e) => Err(Attempt::Failed(StorageError::Damaged {
                    key: key.to_string(),
                    why: format!("not valid JSON: {e}"),
                })),
            },
        }
    }
}

/// The version list of an article's JSON document. A document without a
/// valid list is damaged: starting again at version 1 would overwrite the
/// history it records.
/// An exclusive `flock(2)` on stripe `stripe` of a local folder, held
/// until the file is dropped: storage replicas sharing one folder write an
/// article's JSON in turn (object stores have conditional puts instead).
/// The kernel releases it when its process dies, so a crash leaves no
/// stale lock.
async fn folder_lock(
    root: std::path::PathBuf,
    stripe: usize,
) -> Result<std::fs::File, StorageError> {
    let dir = root.join(".crawlq/locks");
    let path = dir.join(format!("{stripe:03}"));
    let key = path.display().to_string();
    let locked = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(&dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        // SAFETY: flock on a file descriptor this function owns.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(file)
    })
    .await
    .map_err(|e| StorageError::Contended(format!("{key}: {e}")))?;
    locked.map_err(|e| {
        store_err(
            "lock",
            &key,
            object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            },
        )
    })
}

/// The raw page a record carries (zstd), inline or by claim check; `None`
/// when it carries none or its claim check is gone.
pub(crate) async fn raw_zstd(
    store: &Store,
    r: &SnapshotRecord,
) -> Result<Option<Bytes>, StorageError> {
    if !r.raw_zstd.is_empty() {
        return Ok(Some(Bytes::from(r.raw_zstd.clone())));
    }
    if r.raw_key.is_empty() {
        return Ok(None);
    }
    match claimed(store, &r.raw_key).await {
        Ok(b) => Ok(Some(b)),
        Err(StorageError::ClaimGone(key)) => {
            tracing::warn!(key = %key, "claim-checked raw page is gone; archiving the record without it");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// A claim-checked object a message names.
pub(crate) async fn claimed(store: &Store, key: &str) -> Result<Bytes, StorageError> {
    if !crawlq_runtime::store::is_claim_key(key) {
        return Err(StorageError::BadMessage(format!(
            "`{}` is not a claim-check key",
            crawlq_runtime::clip(key, 200)
        )));
    }
    match crawlq_runtime::store::get_claim(store, key).await {
        Ok(b) => Ok(b),
        Err(object_store::Error::NotFound { .. }) => Err(StorageError::ClaimGone(key.to_string())),
        Err(source) => Err(store_err("get", key, source)),
    }
}

pub fn versions_of(key: &str, doc: &Value) -> Result<Vec<VersionEntry>, StorageError> {
    let damaged = |why: String| StorageError::Damaged {
        key: key.to_string(),
        why,
    };
    let list = doc
        .get("versions")
        .ok_or_else(|| damaged("it has no `versions` list".into()))?;
    let versions: Vec<VersionEntry> = serde_json::from_value(list.clone())
        .map_err(|e| damaged(format!("its `versions` list does not parse: {e}")))?;
    if versions.is_empty() {
        return Err(damaged("its `versions` list is empty".into()));
    }
    Ok(versions)
}

enum Attempt {
    Conflict(String),
    Failed(StorageError),
}

pub(crate) fn store_err(op: &'static str, key: &str, source: object_store::Error) -> StorageError {
    metrics::counter!(m::STORE_ERRORS, "op" => op).increment(1);
    StorageError::Store {
        op,
        key: key.to_string(),
        source,
    }
}

/// What a fetched record is to the article's history.
enum Fetch {
    /// This very fetch is listed already (a redelivery).
    Redelivery(VersionEntry),
    /// The content of `version`: the latest one for a newer fetch, any one
    /// for a late, older fetch.
    Unchanged {
        /// The version with this content.
        version: VersionEntry,
        /// The fetch is newer than every version.
        newest: bool,
    },
    /// Content the article has not had (as its latest version).
    Changed {
        /// The latest version before it, if any.
        latest: Option<VersionEntry>,
        /// The fetch is newer than every version.
        newest: bool,
    },
}

/// Compares a fetch with the versions archived. A newer fetch is compared
/// with the latest version (so a revert is an edit too), a late, older one
/// with every version; the same title and text but for white space is the
/// same content.
fn classify(r: &SnapshotRecord, versions: &[VersionEntry]) -> Fetch {
    if let Some(v) = versions
        .iter()
        .find(|v| v.content_sha256 == r.content_sha256 && v.fetched_at == r.fetched_at)
    {
        return Fetch::Redelivery(v.clone());
    }
    let key = change_key(&r.title, &r.text);
    let same = |v: &&VersionEntry| {
        v.content_sha256 == r.content_sha256 || (!v.change_key.is_empty() && v.change_key == key)
    };
    let latest = versions
        .iter()
        .max_by_key(|v| (v.fetched_at, v.version))
        .cloned();
    let newest = latest.as_ref().is_none_or(|l| r.fetched_at >= l.fetched_at);
    let matching = if newest {
        latest.as_ref().filter(same).cloned()
    } else {
        versions.iter().find(same).cloned()
    };
    match matching {
        Some(version) => Fetch::Unchanged { version, newest },
        None => Fetch::Changed { latest, newest },
    }
}

/// What writing `r` as (or onto) version `v` did, before the check.
fn written(
    r: &SnapshotRecord,
    outcome: StoreOutcome,
    v: &VersionEntry,
    keys: Vec<String>,
) -> Written {
    Written {
        outcome,
        version: v.version,
        keys,
        transition: Transition::None,
        check: "unchanged".into(),
        next_check_at: None,
        previous: None,
        title: r.title.clone(),
        url: r.url.clone(),
        published_at: r.published_at,
        version_key: v.key.clone(),
        evidence: String::new(),
    }
}

/// What the delivery that wrote version `v` of fetch `r` reported: `new`
/// for the first version, else `changed`, with the version it replaced
/// when it was the newest then (so the change log gets its entry even if
/// that delivery died before recording it; entries are kept once).
fn redelivered(r: &SnapshotRecord, v: &VersionEntry, versions: &[VersionEntry]) -> Written {
    let before = versions.iter().filter(|o| o.version < v.version);
    let previous = before.clone().max_by_key(|o| (o.fetched_at, o.version));
    let was_newest = before.clone().all(|o| o.fetched_at <= v.fetched_at);
    let outcome = if previous.is_none() {
        StoreOutcome::New
    } else {
        StoreOutcome::Changed
    };
    let mut w = written(r, outcome, v, Vec::new());
    w.check = if outcome == StoreOutcome::New {
        "new".into()
    } else {
        "changed".into()
    };
    w.previous = previous.filter(|_| was_newest).cloned();
    w
}

impl Written {
    /// With the next check the tracking fields hold.
    fn tracked(mut self, t: &Tracking) -> Written {
        self.next_check_at = t.watch.next_check_at;
        self
    }
}

/// The check a fetched record is.
fn check_of(r: &SnapshotRecord) -> Check {
    Check {
        at: r.fetched_at,
        status: 200,
        outcome: String::new(),
        final_url: if r.fetched_url != r.url {
            r.fetched_url.clone()
        } else {
            String::new()
        },
        detail: String::new(),
    }
}

fn validate(r: &SnapshotRecord) -> Result<(), StorageError> {
    if r.id.len() < 8 || !r.id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(StorageError::Incomplete("id"));
    }
    if r.url.is_empty() {
        return Err(StorageError::Incomplete("url"));
    }
    if r.host.is_empty() {
        return Err(StorageError::Incomplete("host"));
    }
    // Hex only: it names objects and is sliced by byte offset.
    if r.content_sha256.len() < 16 || !r.content_sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(StorageError::Incomplete("content_sha256"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(title: &str, text: &str, html: &str, fetched_at: i64) -> SnapshotRecord {
        SnapshotRecord {
            title: title.into(),
            text: text.into(),
            content_sha256: crawlq_record::sha256_hex(html.as_bytes()),
            fetched_at,
            ..Default::default()
        }
    }

    fn version(n: u32, r: &SnapshotRecord) -> VersionEntry {
        VersionEntry {
            version: n,
            fetched_at: r.fetched_at,
            content_sha256: r.content_sha256.clone(),
            key: format!("v{n}"),
            change_key: change_key(&r.title, &r.text),
            ..VersionEntry::default()
        }
    }

    #[test]
    fn records_with_unusable_ids_or_hashes_are_refused() {
        let mut r = SnapshotRecord {
            id: "0123456789abcdef".into(),
            url: "https://a.com/x".into(),
            host: "a.com".into(),
            content_sha256: "é".repeat(32),
            ..Default::default()
        };
        assert!(matches!(
            validate(&r),
            Err(StorageError::Incomplete("content_sha256"))
        ));
        r.content_sha256 = "ab".repeat(32);
        assert!(validate(&r).is_ok());
        r.id = "../../etc/passwd".into();
        assert!(matches!(validate(&r), Err(StorageError::Incomplete("id"))));
    }

    #[test]
    fn fetches_are_classified_against_the_latest_version() {
        let a = rec("T", "one two", "<p>one two</p>", 1_000);
        let b = rec("T", "one three", "<p>one three</p>", 2_000);
        let versions = vec![version(1, &a), version(2, &b)];
        // The same fetch again.
        assert!(matches!(classify(&b, &versions), Fetch::Redelivery(v) if v.version == 2));
        // White space and markup only: unchanged.
        let b2 = rec("T ", "one\n  three", "<p>one <b>three</b></p>", 3_000);
        assert!(
            matches!(classify(&b2, &versions), Fetch::Unchanged { version, newest: true } if version.version == 2)
        );
        // A revert to version 1's text is an edit.
        let back = rec("T", "one two", "<p>one two</p>", 4_000);
        assert!(
            matches!(classify(&back, &versions), Fetch::Changed { latest: Some(l), newest: true } if l.version == 2)
        );
        // A late, older fetch of known content changes nothing.
        let late = rec("T", "one two", "<p>one two</p>", 1_500);
        assert!(matches!(
            classify(&late, &versions),
            Fetch::Unchanged { newest: false, .. }
        ));
        // A first fetch.
        assert!(matches!(
            classify(&a, &[]),
            Fetch::Changed {
                latest: None,
                newest: true
            }
        ));
    }
}
