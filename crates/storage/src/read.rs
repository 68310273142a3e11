//! Reading the archive back: `crawlq get URL|ID [--version N] [--versions]`.

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde_json::Value;

use crate::archive::VersionEntry;
use crate::layout;

/// Errors of `get`.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Nothing archived under that URL or id.
    #[error("no archived record for `{0}`")]
    NotFound(String),
    /// No such version.
    #[error("`{0}` has no version {1}")]
    NoVersion(String, u32),
    /// The store failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// The JSON is damaged.
    #[error("damaged record JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A raw page (a WARC record or a `raw/` object) did not read.
    #[error("raw page: {0}")]
    Raw(String),
}

/// Largest raw page read back: the largest WARC block read.
const MAX_RAW: u64 = crate::warc::MAX_BLOCK;

/// The raw page of the fetch at `fetched_at` of article `host`/`id`, as
/// the extractor read it (any content coding undone): from the WARC
/// response a version points at, else from a `raw/` object (archives
/// written before WARC). `None` when neither was kept.
pub async fn raw_page(
    store: &crawlq_runtime::store::Store,
    host: &str,
    id: &str,
    versions: &[VersionEntry],
    fetched_at: i64,
) -> Result<Option<Vec<u8>>, ReadError> {
    let warc = versions
        .iter()
        .filter(|v| v.fetched_at == fetched_at)
        .find_map(|v| v.warc.as_ref());
    if let Some(at) = warc {
        return crate::warc::page(store, at, MAX_RAW)
            .await
            .map(Some)
            .map_err(|e| ReadError::Raw(e.to_string()));
    }
    let key = layout::raw(host, id, fetched_at);
    let bytes = match store.inner.get(&Path::from(key.as_str())).await {
        Ok(r) => r.bytes().await?,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    zstd::bulk::decompress(&bytes, MAX_RAW as usize)
        .map(Some)
        .map_err(|e| ReadError::Raw(format!("`{key}`: {e}")))
}

/// A located article.
#[derive(Debug, Clone)]
pub struct Located {
    /// Host segment.
    pub host: String,
    /// Record id.
    pub id: String,
    /// The JSON document.
    pub json: Value,
}

impl Located {
    /// Its versions, oldest first.
    pub fn versions(&self) -> Vec<VersionEntry> {
        serde_json::from_value(self.json.get("versions").cloned().unwrap_or(Value::Null))
            .unwrap_or_default()
    }
}

/// Finds an article by URL (normalised the way the extractor does) or by
/// its 16-hex-digit id.
pub async fn locate(
    store: &crawlq_runtime::store::Store,
    url_or_id: &str,
) -> Result<Located, ReadError> {
    let (hosts, id) = if url_or_id.len() == 16 && url_or_id.chars().all(|c| c.is_ascii_hexdigit()) {
        let listing = store
            .inner
            .list_with_delimiter(Some(&Path::from("articles")))
            .await?;
        let hosts = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        (hosts, url_or_id.to_ascii_lowercase())
    } else {
        let url =
            url::Url::parse(url_or_id).map_err(|_| ReadError::NotFound(url_or_id.to_string()))?;
        let host = url.host_str().unwrap_or_default().to_string();
        let canonical = crawlq_record::canonical_url(&url);
        (
            vec![layout::host_segment(&host)],
            crawlq_record::record_id(&canonical),
        )
    };
    for host in hosts {
        let key = layout::latest_json(&host, &id);
        match store.inner.get(&Path::from(key)).await {
            Ok(res) => {
                let json = serde_json::from_slice(&res.bytes().await?)?;
                return Ok(Located { host, id, json });
            }
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ReadError::NotFound(url_or_id.to_string()))
}

/// The seed-format text of the latest version, or of version `n`.
pub async fn markdown(
    store: &crawlq_runtime::store::Store,
    at: &Located,
    version: Option<u32>,
) -> Result<String, ReadError> {
    let key = match version {
        None => layout::latest_md(&at.host, &at.id),
        Some(n) => at
            .versions()
            .into_iter()
            .find(|v| v.version == n)
            .map(|v| v.key)
            .ok_or_else(|| ReadError::NoVersion(at.id.clone(), n))?,
    };
    let bytes = store.inner.get(&Path::from(key)).await?.bytes().await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Every object key under `prefix`.
pub async fn keys(
    store: &crawlq_runtime::store::Store,
    prefix: &str,
) -> Result<Vec<String>, ReadError> {
    let metas: Vec<_> = store
        .inner
        .list(Some(&Path::from(prefix)))
        .try_collect()
        .await?;
    let mut keys: Vec<String> = metas.into_iter().map(|m| m.location.to_string()).collect();
    keys.sort();
    Ok(keys)
}

/// The text of one object, if it exists.
pub async fn markdown_key(store: &crawlq_runtime::store::Store, key: &str) -> Option<String> {
    let bytes = store
        .inner
        .get(&Path::from(key))
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}
