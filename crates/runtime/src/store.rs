//! Opening the object store named by `CRAWLQ_STORE_URL`.
//!
//! Accepted forms: `file:///abs/path` or a plain path, `s3://bucket/prefix`
//! (AWS S3, MinIO, R2 or any S3-compatible server, configured with the
//! standard `AWS_*` variables such as `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`,
//! `AWS_REGION` and credentials), `gs://bucket/prefix` (`GOOGLE_*`),
//! `az://container/prefix` (`AZURE_*`) and `memory://`.

use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::Error;
use crate::group_sync::GroupSync;

/// Default archive location: a local folder.
pub const DEFAULT_STORE_URL: &str = "./data/archive";

/// Which kind of store a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// A local folder.
    Local,
    /// S3 or S3-compatible.
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage.
    Azure,
    /// In-process memory (tests, dry runs).
    Memory,
}

/// How a local folder makes an acknowledged write survive a power cut.
/// Object stores (S3, GCS, Azure) make their own promise and ignore this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Objects are written unsynced; [`Store::sync`] waits for one
    /// `syncfs` shared by every writer waiting (group commit). On systems
    /// without `syncfs`, as `Object`.
    Batch,
    /// Every object and its directory are fsynced as it is written.
    Object,
    /// Nothing is synced: a power cut may lose acknowledged writes.
    Off,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "batch" | "true" | "on" => Ok(Durability::Batch),
            "object" => Ok(Durability::Object),
            "off" | "false" => Ok(Durability::Off),
            other => Err(format!(
                "`{other}` is not one of batch, object, off (true means batch, false off)"
            )),
        }
    }
}

/// An opened store, rooted at the URL's prefix.
#[derive(Clone)]
pub struct Store {
    /// The store; keys are relative to the URL's prefix.
    pub inner: Arc<dyn ObjectStore>,
    /// Kind of store.
    pub kind: StoreKind,
    /// The URL it was opened from, for logs (credentials are never in it).
    pub url: String,
    /// Group commit of a local folder with [`Durability::Batch`].
    group: Option<GroupSync>,
}

impl Store {
    /// A store around a client built in code (writes are durable when they
    /// return, so [`Store::sync`] has nothing to do).
    pub fn from_client(inner: Arc<dyn ObjectStore>, kind: StoreKind, url: &str) -> Store {
        Store {
            inner,
            kind,
            url: url.to_string(),
            group: None,
        }
    }

    /// The folder of a local-folder store.
    pub fn local_root(&self) -> Option<std::path::PathBuf> {
        (self.kind == StoreKind::Local).then(|| {
            std::path::PathBuf::from(self.url.strip_prefix("file://").unwrap_or(&self.url))
        })
    }

    /// Returns once every write this process finished before the call is
    /// durable: a shared `syncfs` for a local folder with
    /// [`Durability::Batch`]; nothing to do for other stores, whose writes
    /// are durable when they return.
    pub async fn sync(&self) -> Result<(), object_store::Error> {
        match &self.group {
            None => Ok(()),
            Some(group) => group
                .sync()
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(e),
                }),
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .finish()
    }
}

/// Opens `url`, reading cloud settings from the environment; local folders
/// use group commit ([`Durability::Batch`]).
pub fn open(url: &str) -> Result<Store, Error> {
    open_with(url, Durability::Batch)
}

/// Opens `url`; `durability` applies to local folders.
pub fn open_with(url: &str, durability: Durability) -> Result<Store, Error> {
    let bad = |e: &dyn std::fmt::Display| Error::Config(format!("CRAWLQ_STORE_URL `{url}`: {e}"));
    let (kind, inner): (StoreKind, Arc<dyn ObjectStore>) = match url.split_once("://") {
        None | Some(("file", _)) => {
            let folder = url.strip_prefix("file://").unwrap_or(url);
            let (inner, group) = local(FsPath::new(folder), durability).map_err(|e| bad(&e))?;
            return Ok(Store {
                group,
                ..Store::from_client(inner, StoreKind::Local, url)
            });
        }
        Some(("memory", _)) => (StoreKind::Memory, Arc::new(InMemory::new())),
        Some((scheme @ ("s3" | "s3a" | "gs" | "az" | "azure" | "abfs"), rest)) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(&"missing bucket name"));
            }
            let (kind, store): (StoreKind, Arc<dyn ObjectStore>) = match scheme {
                "s3" | "s3a" => (
                    StoreKind::S3,
                    Arc::new(
                        AmazonS3Builder::from_env()
                            .with_bucket_name(bucket)
                            .build()
                            .map_err(|e| bad(&e))?,
                    ),
                ),
                "gs" => (
                    StoreKind::Gcs,
                    Arc::new(
                        GoogleCloudStorageBuilder::from_env()
                            .with_bucket_name(bucket)
                            .build()
                            .map_err(|e| bad(&e))?,
                    ),
                ),
                _ => (
                    StoreKind::Azure,
                    Arc::new(
                        MicrosoftAzureBuilder::from_env()
                            .with_container_name(bucket)
                            .build()
                            .map_err(|e| bad(&e))?,
                    ),
                ),
            };
            let prefix = prefix.trim_matches('/');
            let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                store
            } else {
                Arc::new(PrefixStore::new(store, prefix))
            };
            (kind, store)
        }
        Some((other, _)) => {
            return Err(bad(&format!(
                "unsupported scheme `{other}` (use file, s3, gs, az or memory)"
            )))
        }
    };
    Ok(Store::from_client(inner, kind, url))
}

fn local(
    path: &FsPath,
    durability: Durability,
) -> Result<(Arc<dyn ObjectStore>, Option<GroupSync>), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let fs = LocalFileSystem::new_with_prefix(path).map_err(|e| e.to_string())?;
    // Without syncfs (not Linux), batch falls back to per-object fsync.
    let batch = durability == Durability::Batch && cfg!(target_os = "linux");
    let per_object = durability != Durability::Off && !batch;
    let group = batch
        .then(|| GroupSync::start(path))
        .transpose()
        .map_err(|e| format!("cannot open {} to sync it: {e}", path.display()))?;
    // object_store stages each object in a temp file and renames it, so
    // readers never see half an object; a sync (per object, or the group's
    // before acknowledging) means a power cut never loses an acknowledged
    // one either.
    let fs = fs.with_automatic_cleanup(true).with_fsync(per_object);
    Ok((Arc::new(fs), group))
}

/// Writes a claim-checked body (already compressed) under `key`, durably.
pub async fn put_claim(
    store: &Store,
    key: &str,
    body: bytes::Bytes,
) -> Result<(), object_store::Error> {
    store
        .inner
        .put(&object_store::path::Path::from(key), body.into())
        .await?;
    store.sync().await
}

/// Prefix of every claim-checked body.
pub const CLAIMS_PREFIX: &str = "claims/";

/// Is `key` a claim check the crawler could have written? A message naming
/// any other object (an archived version, another site's record) is
/// refused: keys in messages are never trusted to point anywhere.
pub fn is_claim_key(key: &str) -> bool {
    key.starts_with(CLAIMS_PREFIX)
        && key.len() <= 512
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
}

/// Reads a claim-checked body; a key outside [`CLAIMS_PREFIX`] is refused
/// as not found.
pub async fn get_claim(store: &Store, key: &str) -> Result<bytes::Bytes, object_store::Error> {
    if !is_claim_key(key) {
        return Err(object_store::Error::NotFound {
            path: key.to_string(),
            source: format!("`{key}` is not a claim-check key ({CLAIMS_PREFIX}…)").into(),
        });
    }
    store
        .inner
        .get(&object_store::path::Path::from(key))
        .await?
        .bytes()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_claim_keys_are_claim_keys() {
        assert!(is_claim_key("claims/20000/abc123-1699530301000.zst"));
        for bad in [
            "versions/a.com/0123/1-ab.md",
            "claims/../versions/a.com/x.md",
            "claims//x",
            "/claims/x",
            "claims/x y",
            "articles/a.com/0123456789abcdef.json",
        ] {
            assert!(!is_claim_key(bad), "{bad}");
        }
    }

    #[test]
    fn opens_each_kind() {
        let dir = std::env::temp_dir().join(format!("crawlq-store-{}", std::process::id()));
        let s = open(dir.to_str().unwrap()).unwrap();
        assert_eq!(s.kind, StoreKind::Local);
        let s = open(&format!("file://{}", dir.display())).unwrap();
        assert_eq!(s.kind, StoreKind::Local);
        assert_eq!(open("memory://").unwrap().kind, StoreKind::Memory);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn durability_reads_modes_and_the_old_booleans() {
        assert_eq!("batch".parse(), Ok(Durability::Batch));
        assert_eq!("TRUE".parse(), Ok(Durability::Batch));
        assert_eq!("object".parse(), Ok(Durability::Object));
        assert_eq!("false".parse(), Ok(Durability::Off));
        assert!("sometimes"
            .parse::<Durability>()
            .unwrap_err()
            .contains("batch"));
    }

    #[tokio::test]
    async fn a_batch_folder_syncs_and_other_stores_need_not() {
        let dir = tempfile::tempdir().unwrap();
        let s = open_with(dir.path().to_str().unwrap(), Durability::Batch).unwrap();
        assert_eq!(s.group.is_some(), cfg!(target_os = "linux"));
        put_claim(&s, "claims/1/b.zst", bytes::Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(&get_claim(&s, "claims/1/b.zst").await.unwrap()[..], b"x");
        for d in [Durability::Object, Durability::Off] {
            let s = open_with(dir.path().to_str().unwrap(), d).unwrap();
            assert!(s.group.is_none());
            s.sync().await.unwrap();
        }
        let m = open("memory://").unwrap();
        assert!(m.group.is_none());
        m.sync().await.unwrap();
    }

    #[test]
    fn rejects_unknown_schemes_naming_the_variable() {
        let err = open("ftp://x/y").unwrap_err().to_string();
        assert!(
            err.contains("CRAWLQ_STORE_URL") && err.contains("ftp"),
            "{err}"
        );
        assert!(open("s3://").is_err());
    }
}
