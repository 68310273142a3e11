//! Writing one record into the archive, idempotently.
//!
//! Order of writes, so a crash at any point leaves a state a redelivery
//! completes without duplicates:
//!
//! 1. read `articles/{host}/{id}.json`; if a version with the record's
//!    content hash is listed, the outcome is `unchanged` and nothing is
//!    written;
//! 2. create the raw page and the version object with `PutMode::Create`;
//!    if one already exists (a retried create), its bytes are compared
//!    instead of failing;
//! 3. overwrite the latest `.md` when this is the newest version;
//! 4. write the `.json` (the commit point listing the versions), with a
//!    conditional update on its version where the store supports it; on a
//!    conflict, start again from 1.
//!
//! object_store stages each local-folder write in a temp file and renames
//! it, so readers never see half an object; before returning, the record's
//! objects are made durable (`Store::sync`: one group commit shared by the
//! writers waiting, or per-object fsync, as configured).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crawlq_proto::v1::{SnapshotRecord, StoreOutcome};
use crawlq_record::json::to_json;
use crawlq_record::labels::Label;
use crawlq_record::render;
use crawlq_runtime::store::{Store, StoreKind};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::error::StorageError;
use crate::layout;
use crate::metrics as m;

/// One archived version of an article.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VersionEntry {
    /// 1 for the first version.
    pub version: u32,
    /// When this content was fetched, Unix ms.
    pub fetched_at: i64,
    /// SHA-256 of the content HTML.
    pub content_sha256: String,
    /// Object key of the version.
    pub key: String,
}

/// What writing a record did.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// New article, changed content, or unchanged.
    pub outcome: StoreOutcome,
    /// Version number of the record's content.
    pub version: u32,
    /// Keys written (empty when unchanged).
    pub keys: Vec<String>,
}

/// Conflicting writers retry this many times before giving the message back.
const MAX_ATTEMPTS: usize = 8;
/// Stripes of the per-article lock.
const STRIPES: usize = 256;

/// The archive writer.
pub struct Archive {
    store: Store,
    keep_raw: bool,
    locks: Vec<Mutex<()>>,
}

impl Archive {
    /// An archive on `store`; `keep_raw` also archives raw pages.
    pub fn new(store: Store, keep_raw: bool) -> Arc<Archive> {
        Arc::new(Archive {
            store,
            keep_raw,
            locks: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        })
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Archives `record`.
    pub async fn write(&self, record: &SnapshotRecord) -> Result<Written, StorageError> {
        validate(record)?;
        let started = Instant::now();
        // Two versions of one article in this process are written in turn.
        let stripe = u64::from_str_radix(&record.id[..record.id.len().min(8)], 16).unwrap_or(0)
            as usize
            % STRIPES;
        let _guard = self.locks[stripe].lock().await;
        let mut last_conflict = None;
        for _ in 0..MAX_ATTEMPTS {
            match self.try_write(record).await {
                Ok(w) => {
                    // Durable before the caller acknowledges; `unchanged`
                    // too, since a failed attempt may have written it.
                    self.store
                        .sync()
                        .await
                        .map_err(|e| store_err("sync", &record.id, e))?;
                    metrics::counter!(m::WRITES, "outcome" => w.outcome.label()).increment(1);
                    metrics::histogram!(m::WRITE_SECONDS).record(started.elapsed().as_secs_f64());
                    return Ok(w);
                }
                Err(Attempt::Conflict(key)) => last_conflict = Some(key),
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        Err(StorageError::Contended(last_conflict.unwrap_or_default()))
    }

    async fn try_write(&self, r: &SnapshotRecord) -> Result<Written, Attempt> {
        let json_key = layout::latest_json(&r.host, &r.id);
        let existing = self.read_json(&json_key).await?;
        let mut versions = match &existing {
            Some((doc, _)) => versions_of(&json_key, doc).map_err(Attempt::Failed)?,
            None => Vec::new(),
        };
        if let Some(v) = versions
            .iter()
            .find(|v| v.content_sha256 == r.content_sha256)
        {
            return Ok(Written {
                outcome: StoreOutcome::Unchanged,
                version: v.version,
                keys: Vec::new(),
            });
        }
        let outcome = if existing.is_some() {
            StoreOutcome::Changed
        } else {
            StoreOutcome::New
        };
        let number = versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        let md = render(r);
        let mut keys = Vec::new();

        if self.keep_raw {
            if let Some(key) = self.write_raw(r).await.map_err(Attempt::Failed)? {
                keys.push(key);
            }
        }
        // An attempt that died between writing the version and committing
        // the JSON (a crash, a kill -9) left this content's version object
        // behind, perhaps under another fetch time: adopt it rather than
        // archive the same content twice.
        let version_key = match self.find_version(r).await.map_err(Attempt::Failed)? {
            Some(key) => key,
            None => {
                let key = layout::version(&r.host, &r.id, r.fetched_at, &r.content_sha256);
                self.create_immutable(&key, Bytes::from(md.clone()), &r.content_sha256)
                    .await
                    .map_err(Attempt::Failed)?;
                key
            }
        };
        keys.push(version_key.clone());

        let newest = versions.iter().all(|v| r.fetched_at >= v.fetched_at);
        if newest {
            let key = layout::latest_md(&r.host, &r.id);
            self.put(&key, Bytes::from(md), PutMode::Overwrite, &r.content_sha256)
                .await
                .map_err(Attempt::Failed)?;
            keys.push(key);
        }

        versions.push(VersionEntry {
            version: number,
            fetched_at: r.fetched_at,
            content_sha256: r.content_sha256.clone(),
            key: version_key,
        });
        versions.sort_by_key(|v| (v.fetched_at, v.version));
        let mut doc = if newest {
            to_json(r)
        } else {
            existing
                .as_ref()
                .map(|(v, _)| v.clone())
                .unwrap_or_else(|| to_json(r))
        };
        doc["versions"] = serde_json::to_value(&versions).expect("versions serialise");
        let body = Bytes::from(serde_json::to_vec_pretty(&doc).expect("json serialises"));
        let mode = match existing.map(|(_, v)| v) {
            Some(version) => PutMode::Update(version),
            None => PutMode::Create,
        };
        match self
            .put(&json_key, body.clone(), mode, &r.content_sha256)
            .await
        {
            Ok(()) => {}
            Err(StorageError::Store {
                source: object_store::Error::NotImplemented { .. },
                ..
            }) => {
                // No conditional update here (local folders): the per-article
                // lock already serialises this process's writers.
                self.put(&json_key, body, PutMode::Overwrite, &r.content_sha256)
                    .await
                    .map_err(Attempt::Failed)?;
            }
            Err(StorageError::Store {
                source:
                    object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. },
                ..
            }) => {
                return Err(Attempt::Conflict(json_key));
            }
            Err(e) => return Err(Attempt::Failed(e)),
        }
        keys.push(json_key);
        Ok(Written {
            outcome,
            version: number,
            keys,
        })
    }

    async fn write_raw(&self, r: &SnapshotRecord) -> Result<Option<String>, StorageError> {
        let key = layout::raw(&r.host, &r.id, r.fetched_at);
        let bytes = if !r.raw_zstd.is_empty() {
            Bytes::from(r.raw_zstd.clone())
        } else if !r.raw_key.is_empty() {
            match crawlq_runtime::store::get_claim(&self.store, &r.raw_key).await {
                Ok(b) => b,
                Err(object_store::Error::NotFound { .. }) => {
                    tracing::warn!(key = %r.raw_key, "claim-checked raw page is gone; archiving the record without it");
                    return Ok(None);
                }
                Err(source) => return Err(store_err("get", &r.raw_key, source)),
            }
        } else {
            return Ok(None);
        };
        let sha = hex::encode(Sha256::digest(&bytes));
        self.create_immutable(&key, bytes, &sha).await?;
        Ok(Some(key))
    }

    /// The key of an existing version object with `r`'s content, if any.
    async fn find_version(&self, r: &SnapshotRecord) -> Result<Option<String>, StorageError> {
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
            .find(|k| k.ends_with(&suffix)))
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
        self.store
            .inner
            .put_opts(&Path::from(key), PutPayload::from_bytes(body), opts)
            .await
            .map_err(|e| store_err("put", key, e))?;
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

fn store_err(op: &'static str, key: &str, source: object_store::Error) -> StorageError {
    metrics::counter!(m::STORE_ERRORS, "op" => op).increment(1);
    StorageError::Store {
        op,
        key: key.to_string(),
        source,
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
    if r.content_sha256.len() < 16 {
        return Err(StorageError::Incomplete("content_sha256"));
    }
    Ok(())
}
