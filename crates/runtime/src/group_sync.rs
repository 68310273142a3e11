//! Group commit for local folders: many writers, one `syncfs(2)`.
//!
//! Syncing each object on its own costs two disk flushes (the file, then
//! its directory entry), and archiving a page writes four objects: on a
//! disk that flushes ~1,700 times a second that caps the archive near 200
//! pages/s. Instead, objects are written without syncing, and a writer
//! that needs them durable asks for a sync: it waits for a `syncfs` of the
//! folder's filesystem that *started after its request*, so everything it
//! wrote before asking is on disk when the wait ends. One flush serves
//! every writer that asked while the previous one ran.
//!
//! `syncfs` flushes the whole filesystem, other programs' writes included:
//! on a volume shared with heavy writers, per-object fsync may be cheaper
//! (`CRAWLQ_STORE_FSYNC=object`). Since Linux 5.8 it reports writeback
//! errors from anywhere on the filesystem since the folder was opened.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::metrics::{STORE_SYNC_SECONDS, STORE_SYNC_WAITERS};

type Reply = oneshot::Sender<Result<(), String>>;

/// A handle to the folder's sync thread; the thread ends with the last
/// handle.
#[derive(Debug, Clone)]
pub struct GroupSync {
    requests: mpsc::Sender<Reply>,
}

impl GroupSync {
    /// Starts the sync thread for the filesystem holding `dir`.
    pub fn start(dir: &Path) -> io::Result<GroupSync> {
        let folder = File::open(dir)?;
        GroupSync::with_flush(move || syncfs(&folder))
    }

    /// Starts a sync thread that runs `flush` for each batch of requests.
    fn with_flush(
        mut flush: impl FnMut() -> io::Result<()> + Send + 'static,
    ) -> io::Result<GroupSync> {
        let (requests, rx) = mpsc::channel::<Reply>();
        std::thread::Builder::new()
            .name("store-sync".into())
            .spawn(move || serve(&rx, &mut flush))?;
        Ok(GroupSync { requests })
    }

    /// Returns once everything written before this call is on disk.
    pub async fn sync(&self) -> io::Result<()> {
        let (reply, done) = oneshot::channel();
        self.requests
            .send(reply)
            .map_err(|_| io::Error::other("the store's sync thread has stopped"))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(io::Error::other(format!("syncfs failed: {e}"))),
            Err(_) => Err(io::Error::other("the store's sync thread has stopped")),
        }
    }
}

/// Takes every request waiting, syncs once, answers them all; repeats.
/// A request that arrives during a sync waits for the next one.
fn serve(rx: &mpsc::Receiver<Reply>, flush: &mut dyn FnMut() -> io::Result<()>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let started = Instant::now();
        let result = flush().map_err(|e| e.to_string());
        metrics::histogram!(STORE_SYNC_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::histogram!(STORE_SYNC_WAITERS).record(batch.len() as f64);
        if let Err(e) = &result {
            tracing::error!(error = %e, "syncfs of the archive folder failed");
        }
        for reply in batch {
            // A writer that gave up waiting has nothing to be told.
            let _ = reply.send(result.clone());
        }
    }
}

#[cfg(target_os = "linux")]
fn syncfs(folder: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `folder` keeps open
    // for the duration of the call.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::syncfs(folder.as_raw_fd()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn syncfs(_folder: &File) -> io::Result<()> {
    // Never reached: store::open_with syncs each object where there is no
    // syncfs, and starts no group.
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "syncfs is Linux-only",
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn syncfs_of_a_real_folder_answers_every_writer() {
        let dir = tempfile::tempdir().unwrap();
        let sync = GroupSync::start(dir.path()).unwrap();
        let writers = (0..16).map(|i| {
            let (sync, path) = (sync.clone(), dir.path().join(format!("{i}")));
            async move {
                tokio::fs::write(&path, b"x").await.unwrap();
                sync.sync().await
            }
        });
        for r in futures::future::join_all(writers).await {
            r.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_share_flushes_that_started_after_they_asked() {
        // Each flush records when it started; each writer checks that the
        // flush that answered it began after its request.
        let flushes = Arc::new(Mutex::new(Vec::<Instant>::new()));
        let log = flushes.clone();
        let sync = GroupSync::with_flush(move || {
            log.lock().unwrap().push(Instant::now());
            std::thread::sleep(Duration::from_millis(20));
            Ok(())
        })
        .unwrap();
        let writers = (0..200).map(|i| {
            let (sync, flushes) = (sync.clone(), flushes.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(i % 50)).await;
                let asked = Instant::now();
                sync.sync().await.unwrap();
                let answered = Instant::now();
                let starts = flushes.lock().unwrap();
                assert!(
                    starts.iter().any(|&s| s >= asked && s <= answered),
                    "no flush began between request and answer"
                );
            }
        });
        futures::future::join_all(writers).await;
        let n = flushes.lock().unwrap().len();
        assert!(
            (2..50).contains(&n),
            "200 writers over 50 ms took {n} flushes"
        );
    }

    #[tokio::test]
    async fn a_failed_flush_fails_every_writer_in_its_batch() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let sync = GroupSync::with_flush(move || {
            c.fetch_add(1, Ordering::SeqCst);
            Err(io::Error::other("EIO"))
        })
        .unwrap();
        let results = futures::future::join_all((0..8).map(|_| sync.sync())).await;
        assert!(results
            .iter()
            .all(|r| r.as_ref().unwrap_err().to_string().contains("EIO")));
        assert!(calls.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test]
    async fn a_stopped_thread_is_an_error_not_a_hang() {
        let (requests, rx) = mpsc::channel::<Reply>();
        drop(rx);
        let sync = GroupSync { requests };
        let err = sync.sync().await.unwrap_err();
        assert!(err.to_string().contains("stopped"), "{err}");
    }
}
