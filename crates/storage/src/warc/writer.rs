//! One WARC writer per storage replica.
//!
//! Appends from concurrent messages queue to one task, which writes every
//! append queued so far as one segment (a group commit: one object put and
//! one sync for the batch) and only then answers them, so a message is
//! acknowledged after its records are durable. A file is sealed when it
//! reaches its size or age, on shutdown, or, when its writer died, by any
//! replica once the writer's lease (a NATS KV key that expires unless
//! renewed) has lapsed.
//!
//! A writer holds the lease `{name}` while it lives: two replicas never
//! share a name, so they never write to one file.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use crawlq_record::article::WarcRef;
use crawlq_runtime::store::Store;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::format::{self, Record};
use super::{cdxj, MAX_BLOCK};
use crate::archive::store_err;
use crate::error::StorageError;
use crate::metrics as m;

/// Prefix of files being written.
pub const OPEN_PREFIX: &str = "warc/open";
/// How long a writer's lease lives without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// A writer that could not renew for this long stops writing.
const LEASE_SAFE: Duration = Duration::from_secs(20);
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// Largest group written as one segment.
const MAX_SEGMENT: usize = 16 << 20;

/// WARC writer settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A file is sealed once it reaches this size.
    pub max_bytes: u64,
    /// … or this age.
    pub max_age: Duration,
    /// The writer's name (in file names): the pod name by default.
    pub name: String,
    /// What `warcinfo` says of the crawl.
    pub software: String,
}

/// A handle on the writer task.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Append>,
}

struct Append {
    members: Vec<Vec<u8>>,
    reply: oneshot::Sender<Result<Vec<WarcRef>, String>>,
}

impl Writer {
    /// Appends `members` (gzip members, whole records) contiguously to the
    /// current file; returns where each is, once they are durable.
    pub async fn append(&self, members: Vec<Vec<u8>>) -> Result<Vec<WarcRef>, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Append { members, reply })
            .await
            .map_err(|_| StorageError::Warc("the WARC writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StorageError::Warc("the WARC writer has stopped".into()))?
            .map_err(StorageError::Warc)
    }

    /// Takes a lease, seals what dead writers left open, and runs the
    /// writer until every handle is dropped; then seals its file.
    pub async fn start(
        store: Store,
        mut settings: Settings,
        leases: kv::Store,
    ) -> anyhow::Result<(Writer, tokio::task::JoinHandle<()>)> {
        settings.name = take_lease(&leases, &settings.name).await?;
        tracing::info!(writer = %settings.name, "WARC writer");
        let (tx, rx) = mpsc::channel(1024);
        let task = Task {
            store,
            settings,
            leases,
            open: None,
            serial: 0,
            renewed: Instant::now(),
            sealing: Arc::new(Mutex::new(HashSet::new())),
            seals: JoinSet::new(),
        };
        Ok((Writer { tx }, tokio::spawn(task.run(rx))))
    }
}

/// A name for this writer: `base`, or `base-2`, `base-3`… when a live
/// replica holds it.
async fn take_lease(leases: &kv::Store, base: &str) -> anyhow::Result<String> {
    let base = sanitize(base);
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        match leases
            .create(&name, Bytes::from(std::process::id().to_string()))
            .await
        {
            Ok(_) => return Ok(name),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
            Err(e) => anyhow::bail!("taking the WARC writer lease `{name}`: {e}"),
        }
    }
    anyhow::bail!("no free WARC writer name under `{base}`")
}

fn sanitize(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-');
    if s.is_empty() {
        "storage".into()
    } else {
        s.chars().take(63).collect()
    }
}

/// `crawlq-{YYYYMMDDhhmmss}-{writer}-{serial}.warc.gz`
fn file_name(created_ms: i64, writer: &str, serial: u32) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(created_ms).unwrap_or_default();
    format!(
        "crawlq-{}-{writer}-{serial:05}.warc.gz",
        t.format("%Y%m%d%H%M%S")
    )
}

/// The writer and creation time in a file name.
fn parse_name(name: &str) -> Option<(String, DateTime<Utc>)> {
    let rest = name.strip_prefix("crawlq-")?.strip_suffix(".warc.gz")?;
    let (ts, rest) = rest.split_at_checked(14)?;
    let (writer, serial) = rest.strip_prefix('-')?.rsplit_once('-')?;
    if serial.len() != 5 || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = chrono::NaiveDateTime::parse_from_str(ts, "%Y%m%d%H%M%S").ok()?;
    Some((writer.to_string(), t.and_utc()))
}

/// `warc/{YYYY}/{MM}/{DD}/{name}`: where a sealed file is.
pub fn sealed_key(name: &str) -> String {
    let day = parse_name(name).map_or_else(
        || "0000/00/00".to_string(),
        |(_, t)| t.format("%Y/%m/%d").to_string(),
    );
    format!("warc/{day}/{name}")
}

fn open_dir(name: &str) -> String {
    format!("{OPEN_PREFIX}/{name}")
}

fn segment_key(name: &str, offset: u64) -> String {
    format!("{}/{offset:016}", open_dir(name))
}

struct Open {
    name: String,
    key: String,
    created: Instant,
    offset: u64,
}

struct Task {
    store: Store,
    settings: Settings,
    leases: kv::Store,
    open: Option<Open>,
    serial: u32,
    renewed: Instant,
    sealing: Arc<Mutex<HashSet<String>>>,
    seals: JoinSet<()>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Append>) {
        self.sweep().await;
        let mut renew = tokio::time::interval(RENEW_EVERY);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        let mut age = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                next = rx.recv() => {
                    let Some(first) = next else { break };
                    let mut batch = vec![first];
                    let mut bytes: usize = batch[0].members.iter().map(Vec::len).sum();
                    while bytes < MAX_SEGMENT {
                        let Ok(more) = rx.try_recv() else { break };
                        bytes += more.members.iter().map(Vec::len).sum::<usize>();
                        batch.push(more);
                    }
                    self.write(batch, bytes as u64).await;
                }
                _ = renew.tick() => self.renew().await,
                _ = sweep.tick() => self.sweep().await,
                _ = age.tick() => {
                    if self.open.as_ref().is_some_and(|o| o.created.elapsed() >= self.settings.max_age) {
                        self.seal_current();
                    }
                }
            }
        }
        self.seal_current();
        while self.seals.join_next().await.is_some() {}
        if let Err(e) = self.leases.delete(&self.settings.name).await {
            tracing::warn!(error = %e, "could not release the WARC writer lease; it lapses by itself");
        }
    }

    async fn renew(&mut self) {
        let pid = Bytes::from(std::process::id().to_string());
        match self.leases.put(&self.settings.name, pid).await {
            Ok(_) => self.renewed = Instant::now(),
            Err(e) => tracing::warn!(error = %e, "could not renew the WARC writer lease"),
        }
    }

    async fn write(&mut self, batch: Vec<Append>, bytes: u64) {
        if self.renewed.elapsed() > LEASE_SAFE {
            // Another replica may seal our file soon: write nothing more.
            self.renew().await;
            if self.renewed.elapsed() > LEASE_SAFE {
                self.seal_current();
                let why = "the WARC writer lease could not be renewed (NATS unreachable?)";
                for a in batch {
                    let _ = a.reply.send(Err(why.into()));
                }
                return;
            }
        }
        if self.open.as_ref().is_some_and(|o| {
            o.offset + bytes > self.settings.max_bytes
                || o.created.elapsed() >= self.settings.max_age
        }) {
            self.seal_current();
        }
        let open = self.open.get_or_insert_with(|| {
            self.serial += 1;
            let name = file_name(crawlq_runtime::now_ms(), &self.settings.name, self.serial);
            Open {
                key: sealed_key(&name),
                name,
                created: Instant::now(),
                offset: 0,
            }
        });
        let mut segment = Vec::with_capacity(bytes as usize + 1024);
        if open.offset == 0 {
            segment.extend(warcinfo(&open.name, &self.settings).to_gzip());
        }
        let mut answers = Vec::with_capacity(batch.len());
        for a in batch {
            let refs: Vec<WarcRef> = a
                .members
                .iter()
                .map(|m| {
                    let at = WarcRef {
                        file: open.key.clone(),
                        offset: open.offset + segment.len() as u64,
                        length: m.len() as u64,
                    };
                    segment.extend_from_slice(m);
                    at
                })
                .collect();
            answers.push((a.reply, refs));
        }
        let key = Path::from(segment_key(&open.name, open.offset));
        let len = segment.len() as u64;
        let put = async {
            self.store
                .inner
                .put(&key, Bytes::from(segment).into())
                .await?;
            self.store.sync().await
        };
        match put.await {
            Ok(()) => {
                open.offset += len;
                metrics::counter!(m::WARC_BYTES).increment(len);
                for (reply, refs) in answers {
                    let _ = reply.send(Ok(refs));
                }
            }
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "WARC segment not written; its messages are retried");
                if open.offset == 0 {
                    self.open = None;
                }
                let why = format!("writing WARC segment `{key}`: {e}");
                for (reply, _) in answers {
                    let _ = reply.send(Err(why.clone()));
                }
            }
        }
    }

    /// Seals the current file in the background; the next append opens a
    /// new one.
    fn seal_current(&mut self) {
        if let Some(open) = self.open.take() {
            self.spawn_seal(open.name);
        }
    }

    fn spawn_seal(&mut self, name: String) {
        if !self
            .sealing
            .lock()
            .expect("sealing set")
            .insert(name.clone())
        {
            return;
        }
        let (store, sealing) = (self.store.clone(), self.sealing.clone());
        self.seals.spawn(async move {
            match seal(&store, &name).await {
                Ok(()) => tracing::info!(file = %sealed_key(&name), "WARC file sealed"),
                Err(e) => {
                    tracing::error!(file = %name, error = %e, "WARC file not sealed; will retry")
                }
            }
            sealing.lock().expect("sealing set").remove(&name);
        });
    }

    /// Seals the files that dead writers (and this writer's earlier life)
    /// left open.
    async fn sweep(&mut self) {
        while self.seals.try_join_next().is_some() {}
        let listing = match self
            .store
            .inner
            .list_with_delimiter(Some(&Path::from(OPEN_PREFIX)))
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not list open WARC files");
                return;
            }
        };
        for dir in listing.common_prefixes {
            let Some(name) = dir.filename().map(str::to_string) else {
                continue;
            };
            if self.open.as_ref().is_some_and(|o| o.name == name) {
                continue;
            }
            let Some((writer, _)) = parse_name(&name) else {
                continue;
            };
            let orphan =
                writer == self.settings.name || matches!(self.leases.get(&writer).await, Ok(None));
            if orphan {
                self.spawn_seal(name);
            }
        }
    }
}

/// The `warcinfo` record that opens a file.
fn warcinfo(name: &str, s: &Settings) -> Record {
    let block = format!(
        "software: {}\r\nformat: WARC File Format 1.1\r\nconformsTo: http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/\r\nhostname: {}\r\n",
        s.software, s.name
    );
    Record {
        kind: "warcinfo",
        id: format::record_id(&format!("warcinfo:{name}")),
        fields: vec![("WARC-Filename", name.to_string())],
        date: crawlq_runtime::now_ms(),
        content_type: "application/warc-fields".into(),
        block: block.into_bytes(),
    }
}

/// The segments of an open file, by offset.
async fn segments(store: &Store, name: &str) -> Result<Vec<(u64, Path)>, object_store::Error> {
    let prefix = Path::from(open_dir(name));
    let mut out = Vec::new();
    let mut list = store.inner.list(Some(&prefix));
    while let Some(meta) = list.next().await {
        let meta = meta?;
        if let Some(off) = meta.location.filename().and_then(|f| f.parse::<u64>().ok()) {
            out.push((off, meta.location));
        }
    }
    out.sort();
    Ok(out)
}

/// Publishes an open file: its segments concatenated into the sealed
/// file by one multipart upload (visible only once complete), its CDXJ
/// beside it, then the segments deleted. Safe to repeat after a crash at
/// any point, and by two replicas at once (both write the same bytes).
pub async fn seal(store: &Store, name: &str) -> Result<(), StorageError> {
    let err = |op: &'static str, key: &str| {
        let key = key.to_string();
        move |source| store_err(op, &key, source)
    };
    let segs = segments(store, name).await.map_err(err("list", name))?;
    if segs.is_empty() {
        return Ok(());
    }
    let sealed = Path::from(sealed_key(name));
    let exists = match store.inner.head(&sealed).await {
        Ok(_) => true,
        Err(object_store::Error::NotFound { .. }) => false,
        Err(e) => return Err(err("head", sealed.as_ref())(e)),
    };
    let mut upload = if exists {
        None
    } else {
        let up = store
            .inner
            .put_multipart(&sealed)
            .await
            .map_err(err("put", sealed.as_ref()))?;
        Some(WriteMultipart::new_with_chunk_size(up, 8 << 20))
    };
    let mut lines = Vec::new();
    let mut expect = 0u64;
    for (offset, key) in &segs {
        if *offset != expect {
            if let Some(u) = upload {
                let _ = u.abort().await;
            }
            return Err(StorageError::Damaged {
                key: key.to_string(),
                why: format!("segment at {offset}, expected one at {expect}"),
            });
        }
        let bytes = match store.inner.get(key).await {
            Ok(r) => r.bytes().await.map_err(err("get", key.as_ref()))?,
            Err(e) => {
                if let Some(u) = upload {
                    let _ = u.abort().await;
                }
                return Err(err("get", key.as_ref())(e));
            }
        };
        let mut pos = 0usize;
        while pos < bytes.len() {
            let (rec, used) = format::parse_member(&bytes[pos..], MAX_BLOCK).map_err(|e| {
                StorageError::Damaged {
                    key: key.to_string(),
                    why: e.to_string(),
                }
            })?;
            if let Some(l) = cdxj::line(&rec, name, offset + pos as u64, used as u64) {
                lines.push(l);
            }
            pos += used;
        }
        if let Some(u) = upload.as_mut() {
            u.wait_for_capacity(2)
                .await
                .map_err(err("put", sealed.as_ref()))?;
            u.write(&bytes);
        }
        expect += bytes.len() as u64;
    }
    if let Some(u) = upload {
        u.finish().await.map_err(err("put", sealed.as_ref()))?;
    }
    lines.sort();
    let mut index = lines.join("\n");
    index.push('\n');
    let cdx = format!("{}.cdxj", sealed_key(name));
    store
        .inner
        .put(&Path::from(cdx.as_str()), Bytes::from(index).into())
        .await
        .map_err(err("put", &cdx))?;
    store.sync().await.map_err(err("sync", &cdx))?;
    metrics::counter!(m::WARC_FILES).increment(1);
    for (_, key) in segs {
        store
            .inner
            .delete(&key)
            .await
            .map_err(err("delete", key.as_ref()))?;
    }
    Ok(())
}

/// The bytes of the record at `at` while its file is still open: `None`
/// when the file has been sealed meanwhile.
pub async fn segment_of(store: &Store, at: &WarcRef) -> Result<Option<Bytes>, StorageError> {
    let name = at.file.rsplit('/').next().unwrap_or_default();
    let segs = segments(store, name)
        .await
        .map_err(|source| store_err("list", &open_dir(name), source))?;
    let Some((start, key)) = segs.into_iter().rfind(|(off, _)| *off <= at.offset) else {
        return Ok(None);
    };
    let range = at.offset - start..at.offset - start + at.length;
    match store.inner.get_range(&key, range).await {
        Ok(b) => Ok(Some(b)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(source) => Err(store_err("get", key.as_ref(), source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_writer_and_day() {
        let name = file_name(1_764_600_000_000, "storage-7f9c", 3);
        assert_eq!(name, "crawlq-20251201144000-storage-7f9c-00003.warc.gz");
        let (writer, t) = parse_name(&name).unwrap();
        assert_eq!(writer, "storage-7f9c");
        assert_eq!(t.timestamp_millis(), 1_764_600_000_000);
        assert_eq!(
            sealed_key(&name),
            "warc/2025/12/01/crawlq-20251201144000-storage-7f9c-00003.warc.gz"
        );
        assert_eq!(parse_name("crawlq-x.warc.gz"), None);
        assert_eq!(sanitize("Storage_0.pod"), "storage-0-pod");
        assert_eq!(sanitize("--"), "storage");
    }
}
