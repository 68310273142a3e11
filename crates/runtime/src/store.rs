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

/// An opened store, rooted at the URL's prefix.
#[derive(Clone)]
pub struct Store {
    /// The store; keys are relative to the URL's prefix.
    pub inner: Arc<dyn ObjectStore>,
    /// Kind of store.
    pub kind: StoreKind,
    /// The URL it was opened from, for logs (credentials are never in it).
    pub url: String,
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
/// fsync every object.
pub fn open(url: &str) -> Result<Store, Error> {
    open_with(url, true)
}

/// Opens `url`; `fsync` applies to local folders.
pub fn open_with(url: &str, fsync: bool) -> Result<Store, Error> {
    let bad = |e: &dyn std::fmt::Display| Error::Config(format!("CRAWLQ_STORE_URL `{url}`: {e}"));
    let (kind, inner): (StoreKind, Arc<dyn ObjectStore>) = match url.split_once("://") {
        None => (
            StoreKind::Local,
            local(FsPath::new(url), fsync).map_err(|e| bad(&e))?,
        ),
        Some(("file", rest)) => (
            StoreKind::Local,
            local(FsPath::new(rest), fsync).map_err(|e| bad(&e))?,
        ),
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
    Ok(Store {
        inner,
        kind,
        url: url.to_string(),
    })
}

fn local(path: &FsPath, fsync: bool) -> Result<Arc<dyn ObjectStore>, String> {
    std::fs::create_dir_all(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let fs = LocalFileSystem::new_with_prefix(path).map_err(|e| e.to_string())?;
    // object_store stages each object in a temp file and renames it, so
    // readers never see half an object; with fsync a power cut never loses
    // an acknowledged one either.
    Ok(Arc::new(fs.with_automatic_cleanup(true).with_fsync(fsync)))
}

/// Writes a claim-checked body (already compressed) under `key`.
pub async fn put_claim(
    store: &Store,
    key: &str,
    body: bytes::Bytes,
) -> Result<(), object_store::Error> {
    store
        .inner
        .put(&object_store::path::Path::from(key), body.into())
        .await
        .map(|_| ())
}

/// Reads a claim-checked body.
pub async fn get_claim(store: &Store, key: &str) -> Result<bytes::Bytes, object_store::Error> {
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
    fn rejects_unknown_schemes_naming_the_variable() {
        let err = open("ftp://x/y").unwrap_err().to_string();
        assert!(
            err.contains("CRAWLQ_STORE_URL") && err.contains("ftp"),
            "{err}"
        );
        assert!(open("s3://").is_err());
    }
}
