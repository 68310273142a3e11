//! The WARC archive (ISO 28500, WARC/1.1): every fetch as it happened, in
//! files that pywb, ReplayWeb.page, warcio and other archives read.
//!
//! - [`format`]: the records (gzip member each) and reading one back;
//! - [`cdxj`]: the index beside each file;
//! - [`writer`]: one writer per storage replica, its files, their
//!   durability and their sealing;
//! - [`Warc::archive_fetch`]: the records of one fetch (response or
//!   revisit, request, metadata).
//!
//! Layout (see `layout`): a file being written is a folder of segments,
//! `warc/open/{name}/{offset}`, each a whole number of records, written
//! (and synced) before the messages of its records are acknowledged. A
//! sealed file is `warc/{YYYY}/{MM}/{DD}/{name}` with `{name}.cdxj`
//! beside it: the segments concatenated, published whole by one multipart
//! upload, so no reader ever sees a truncated record.

pub mod cdxj;
pub mod format;
pub mod writer;

use std::sync::Arc;

use bytes::Bytes;
use crawlq_proto::v1::{CheckObservation, HttpExchange, SnapshotRecord};
use crawlq_record::article::WarcRef;
use crawlq_runtime::store::Store;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::archive::store_err;
use crate::error::StorageError;
use format::{record_id, Record};
pub use writer::{Settings, Writer};

/// Largest record block read back.
pub const MAX_BLOCK: u64 = 256 << 20;

/// The last response archived for one URL: what a revisit refers to.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Capture {
    id: String,
    uri: String,
    /// Unix ms.
    date: i64,
    digest: String,
    at: WarcRef,
    /// Fetch time of the last check of the URL archived after it (a
    /// revisit record, a 304, a gone answer): a redelivery of that check
    /// writes nothing again.
    #[serde(default)]
    revisit_at: i64,
}

impl Capture {
    /// The fields a revisit record refers to this capture by.
    fn refers_to(&self) -> [(&'static str, String); 3] {
        [
            ("WARC-Refers-To", self.id.clone()),
            ("WARC-Refers-To-Target-URI", self.uri.clone()),
            ("WARC-Refers-To-Date", format::warc_date(self.date)),
        ]
    }
}

/// The WARC side of storage.
pub struct Warc {
    writer: Writer,
    store: Store,
    /// Last response per target URI (NATS KV): revisits, redeliveries.
    captures: async_nats::jetstream::kv::Store,
}

impl Warc {
    /// WARC archiving through `writer`, remembering captures in `captures`.
    pub fn new(writer: Writer, store: Store, captures: async_nats::jetstream::kv::Store) -> Warc {
        Warc {
            writer,
            store,
            captures,
        }
    }

    /// Archives the fetch that made `r`: a response record (or a revisit
    /// record, when the payload is the one archived last for the URL),
    /// the request record and a metadata record holding the snapshot as
    /// JSON. Returns where the response that holds the page is, durable,
    /// or `None` when the record carries no HTTP exchange (a
    /// re-extraction, a message from an older crawler).
    pub async fn archive_fetch(&self, r: &SnapshotRecord) -> Result<Option<WarcRef>, StorageError> {
        let Some(x) = &r.exchange else {
            return Ok(None);
        };
        if r.reextracted {
            return Ok(None);
        }
        let payload = self.payload(r).await?;
        let uri = first_of(&r.fetched_url, &r.url);
        let key = capture_key(&uri);
        let prev = self.capture(&key).await?;
        let digest = format::sha1_digest(&payload);
        let date = r.fetched_at;
        if let Some(p) = &prev {
            // A redelivery: its records are durable already.
            if (p.date == date && p.digest == digest) || p.revisit_at == date {
                return Ok(Some(p.at.clone()));
            }
        }
        let same = prev.as_ref().filter(|p| p.digest == digest);
        let seed = format!("{uri}:{date}:{digest}");
        let response_id = record_id(&format!("response:{seed}"));
        let head = format::http_response_head(x);
        let mut fields = answer_fields(&uri, x);
        fields.push(("WARC-Payload-Digest", digest.clone()));
        let response = match same {
            Some(p) => {
                fields.push(("WARC-Profile", format::PROFILE_IDENTICAL.into()));
                fields.extend(p.refers_to());
                Record::http("revisit", response_id.clone(), fields, date, head)
            }
            None => {
                let mut block = head;
                block.extend_from_slice(&payload);
                Record::http("response", response_id.clone(), fields, date, block)
            }
        };
        let request = concurrent(
            "request",
            (&uri, &seed, &response_id, date),
            "application/http;msgtype=request",
            format::http_request(x),
        );
        let metadata = concurrent(
            "metadata",
            (&uri, &seed, &response_id, date),
            "application/json",
            serde_json::to_vec(&crawlq_record::json::to_json(r)).expect("json"),
        );
        let kinds = [response.kind, "request", "metadata"];
        let refs = self
            .writer
            .append(vec![
                response.to_gzip(),
                request.to_gzip(),
                metadata.to_gzip(),
            ])
            .await?;
        for kind in kinds {
            metrics::counter!(crate::metrics::WARC_RECORDS, "type" => kind).increment(1);
        }
        let capture = match same {
            Some(p) => Capture {
                revisit_at: date,
                ..p.clone()
            },
            None => Capture {
                id: response_id,
                uri,
                date,
                digest,
                at: refs[0].clone(),
                revisit_at: 0,
            },
        };
        self.remember(&key, &capture).await?;
        Ok(Some(capture.at))
    }

    /// Archives what a revisit saw when it brought no page: a 304 Not
    /// Modified as a `revisit` record (profile server-not-modified,
    /// referring to the URL's last capture when there is one) holding the
    /// 304's head; a 404, 410 or 451 as a `response` record holding the
    /// answer as received, the evidence of a removal. Each with its request
    /// record.
    pub async fn archive_observation(&self, obs: &CheckObservation) -> Result<(), StorageError> {
        let Some(x) = &obs.exchange else {
            return Ok(());
        };
        let uri = first_of(&obs.final_url, &obs.url);
        let key = capture_key(&uri);
        let prev = self.capture(&key).await?;
        let date = obs.checked_at;
        if prev.as_ref().is_some_and(|p| p.revisit_at == date) {
            return Ok(());
        }
        let seed = format!("{uri}:{date}:{}", obs.status);
        let mut fields = answer_fields(&uri, x);
        let mut block = format::http_response_head(x);
        let kind = if obs.status == 304 {
            fields.push(("WARC-Profile", format::PROFILE_NOT_MODIFIED.into()));
            if let Some(p) = &prev {
                fields.extend(p.refers_to());
            }
            "revisit"
        } else {
            fields.push(("WARC-Payload-Digest", format::sha1_digest(&x.body)));
            block.extend_from_slice(&x.body);
            "response"
        };
        let id = record_id(&format!("{kind}:{seed}"));
        let answer = Record::http(kind, id.clone(), fields, date, block);
        let request = concurrent(
            "request",
            (&uri, &seed, &id, date),
            "application/http;msgtype=request",
            format::http_request(x),
        );
        self.writer
            .append(vec![answer.to_gzip(), request.to_gzip()])
            .await?;
        for kind in [kind, "request"] {
            metrics::counter!(crate::metrics::WARC_RECORDS, "type" => kind).increment(1);
        }
        if let Some(p) = prev {
            self.remember(
                &key,
                &Capture {
                    revisit_at: date,
                    ..p
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn remember(&self, key: &str, c: &Capture) -> Result<(), StorageError> {
        let bytes = Bytes::from(serde_json::to_vec(c).expect("capture serialises"));
        self.captures
            .put(key, bytes)
            .await
            .map(|_| ())
            .map_err(|e| StorageError::Warc(format!("remembering the capture: {e}")))
    }

    async fn capture(&self, key: &str) -> Result<Option<Capture>, StorageError> {
        let v = self
            .captures
            .get(key)
            .await
            .map_err(|e| StorageError::Warc(format!("reading the last capture: {e}")))?;
        Ok(v.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    /// The body as the server sent it: the coded body when it had a
    /// content coding, else the page itself.
    async fn payload(&self, r: &SnapshotRecord) -> Result<Bytes, StorageError> {
        let x = r.exchange.as_ref().expect("checked by the caller");
        if x.coded {
            if x.coded_body_key.is_empty() {
                return Ok(Bytes::from(x.coded_body.clone()));
            }
            return crate::archive::claimed(&self.store, &x.coded_body_key).await;
        }
        let Some(z) = crate::archive::raw_zstd(&self.store, r).await? else {
            return Err(StorageError::Incomplete("raw page"));
        };
        zstd::bulk::decompress(&z, MAX_BLOCK as usize)
            .map(Bytes::from)
            .map_err(|e| StorageError::BadMessage(format!("raw page: {e}")))
    }
}

/// `a`, or `b` when `a` is empty.
fn first_of(a: &str, b: &str) -> String {
    if a.is_empty() { b } else { a }.to_string()
}

/// The fields every record of a server's answer starts with: the target
/// URI, the server's IP address, and the protocol when not HTTP/1.1.
fn answer_fields(uri: &str, x: &HttpExchange) -> Vec<(&'static str, String)> {
    let mut fields = vec![("WARC-Target-URI", uri.to_string())];
    if !x.ip_address.is_empty() {
        fields.push(("WARC-IP-Address", x.ip_address.clone()));
    }
    if let Some(p) = format::protocol(x) {
        fields.push(("WARC-Protocol", p));
    }
    fields
}

/// The captures bucket's key of a target URI.
fn capture_key(uri: &str) -> String {
    crawlq_record::sha256_hex(uri.as_bytes())[..32].to_string()
}

/// A record of `kind` concurrent to a response: `(uri, seed, response
/// id, date)` of the fetch.
fn concurrent(
    kind: &'static str,
    (uri, seed, response_id, date): (&str, &str, &str, i64),
    content_type: &str,
    block: Vec<u8>,
) -> Record {
    Record {
        kind,
        id: record_id(&format!("{kind}:{seed}")),
        fields: vec![
            ("WARC-Target-URI", uri.to_string()),
            ("WARC-Concurrent-To", response_id.to_string()),
        ],
        date,
        content_type: content_type.into(),
        block,
    }
}

/// Reads the record at `at` back, from its sealed file or, while the file
/// is still being written, from its segment.
pub async fn read(store: &Store, at: &WarcRef) -> Result<format::Parsed, StorageError> {
    let range = at.offset..at.offset + at.length;
    let file = Path::from(at.file.as_str());
    let bytes = match store.inner.get_range(&file, range.clone()).await {
        Ok(b) => b,
        Err(object_store::Error::NotFound { .. }) => match writer::segment_of(store, at).await? {
            Some(b) => b,
            // Sealed between the two reads.
            None => store
                .inner
                .get_range(&file, range)
                .await
                .map_err(|source| store_err("get", &at.file, source))?,
        },
        Err(source) => return Err(store_err("get", &at.file, source)),
    };
    format::parse_member(&bytes, MAX_BLOCK)
        .map(|(p, _)| p)
        .map_err(|e| StorageError::Damaged {
            key: at.file.clone(),
            why: e.to_string(),
        })
}

/// The page of the response at `at`, its content coding undone.
pub async fn page(store: &Store, at: &WarcRef, max: u64) -> Result<Vec<u8>, StorageError> {
    let rec = read(store, at).await?;
    let payload = rec.http_payload().unwrap_or_default();
    let codings = rec
        .http_header("content-encoding")
        .map(|c| crawlq_runtime::coding::codings(&c))
        .unwrap_or_default();
    crawlq_runtime::coding::decode(&codings, payload, max, true).map_err(|e| {
        StorageError::Damaged {
            key: at.file.clone(),
            why: format!("payload: {e:?}"),
        }
    })
}

/// Shared so the handler and the service hold one writer.
pub type Shared = Arc<Warc>;
