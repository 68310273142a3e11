//! The pipeline benchmark and the ceilings of its parts, run by `make
//! bench` (tests/bench/pipeline.sh) with release binaries: this harness
//! only starts processes, submits, waits and reads NATS.
//!
//! For each size in `$BENCH_PAGES` (default 1000,10000; `N-off` or
//! `N-nofsync` runs with `CRAWLQ_STORE_FSYNC=off`, `N-object` with
//! per-object fsync, `N-nowarc` with `CRAWLQ_WARC=false`, plain `N` with
//! the default group commit and WARC on): nats-server, the
//! generated news site (`crawlq-news-site`, 8 loopback hosts, 30–80 KB
//! pages) and the three services on a local folder; all URLs submitted at
//! once with `crawlq submit -f`; done when every URL is stored. Then, in
//! the same run, the raw capacity of the parts: the HTTP server alone
//! (fetching every page, 64 at a time), nats-server alone (publishing and
//! consuming-with-acks 50 KB messages). Results are JSON lines in
//! `$BENCH_OUT`.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream};
use crawlq_e2e::{append_json_line, metric_sum, report, stream_len, Ledger, Stack};
use crawlq_testkit::{unique_prefix, NatsServer};
use futures::StreamExt;

fn release_bin(name: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release");
    root.join(name).to_string_lossy().into_owned()
}

/// The news site as its own (release) process; kills it on drop.
struct Site {
    child: std::process::Child,
    urls_file: tempfile::NamedTempFile,
    urls: Vec<String>,
}

impl Site {
    fn start(pages: u64) -> Site {
        let urls_file = tempfile::NamedTempFile::new().unwrap();
        let mut child = Command::new(release_bin("crawlq-news-site"))
            .args(["8", &pages.to_string(), urls_file.path().to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("target/release/crawlq-news-site (make build)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.trim().parse::<u16>().is_ok(), "site port: {line}");
        let urls = std::fs::read_to_string(urls_file.path())
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        Site {
            child,
            urls_file,
            urls,
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) a live process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the line, in clock ticks.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    // SAFETY: sysconf has no preconditions.
    // SAFETY: sysconf only reads a constant of the running system.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    f.iter().sum::<f64>() / ticks
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn emit(kind: &str, value: serde_json::Value) {
    eprintln!("{kind}: {value}");
    append_json_line(
        "BENCH_OUT",
        serde_json::json!({ "kind": kind, "result": value }),
    );
}

/// Runs the pipeline on `pages` pages; returns the archive folder, for the
/// caller to delete when no more runs follow (see `pipeline_and_ceilings`).
async fn pipeline(pages: u64, fsync: &str, warc: bool) -> tempfile::TempDir {
    let site = Site::start(pages);
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let archive = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = [
        ("CRAWLQ_HOST_CONCURRENCY", "4"),
        ("CRAWLQ_LOG_FORMAT", "json"),
        ("RUST_LOG", "warn"),
        ("CRAWLQ_STORE_FSYNC", fsync),
        ("CRAWLQ_WARC", if warc { "true" } else { "false" }),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let stack = Stack::start(&nats, &prefix, archive.path().to_str().unwrap(), &env);
    for i in 0..stack.procs.len() {
        assert!(stack.wait_ready(i, Duration::from_secs(30)).await);
    }
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let started = Instant::now();
    let t0 = time_now_ns();
    stack
        .run(&["submit", "-f", site.urls_file.path().to_str().unwrap()])
        .await;
    let stored_stream = format!("{}_STORED", prefix.to_uppercase());
    while stream_len(&js, &stored_stream).await < pages {
        assert!(
            started.elapsed() < Duration::from_secs(3600),
            "{}",
            stack.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let rss: Vec<(String, f64)> = stack
        .procs
        .iter()
        .map(|p| (p.service.to_string(), crawlq_e2e::peak_rss_mib(p.pid())))
        .collect();
    let mut cpu: Vec<(String, f64)> = stack
        .procs
        .iter()
        .map(|p| (p.service.to_string(), cpu_seconds(p.pid())))
        .collect();
    cpu.push(("nats-server".into(), nats.pid().map_or(0.0, cpu_seconds)));
    // Group commits: how many, how long, how many writers each served.
    let storage = stack.current("storage");
    let scraped = stack.scrape(storage).await.unwrap_or_default();
    let sample = |name: &str| metric_sum(&scraped, name);
    let syncs = sample("crawlq_store_sync_duration_seconds_count");
    let sync = serde_json::json!({
        "count": syncs,
        "mean_s": sample("crawlq_store_sync_duration_seconds_sum") / syncs.max(1.0),
        "mean_writers": sample("crawlq_store_sync_waiters_sum") / syncs.max(1.0),
    });
    cpu.push(("site".into(), cpu_seconds(site.child.id())));
    // Submit-to-stored latency from the stored events' stream timestamps.
    let s = js.get_stream(&stored_stream).await.unwrap();
    let mut lat = Vec::with_capacity(pages as usize);
    for seq in 1..=pages {
        if let Ok(m) = s.get_raw_message(seq).await {
            lat.push((m.time.unix_timestamp_nanos() - t0) as f64 / 1e9);
        }
    }
    lat.sort_by(f64::total_cmp);
    let ledger = Ledger::take(&js, &prefix, &site.urls, archive.path()).await;
    report(
        &format!("pipeline {pages} fsync={fsync} warc={warc}"),
        &ledger,
        serde_json::json!({}),
    );
    emit(
        "pipeline",
        serde_json::json!({
            "pages": pages,
            "fsync": fsync,
            "warc": warc,
            "wall_s": wall,
            "pages_per_s": pages as f64 / wall,
            "latency_p50_s": percentile(&lat, 0.5),
            "latency_p99_s": percentile(&lat, 0.99),
            "peak_rss_mib": rss,
            "cpu_s": cpu,
            "group_commit": sync,
            "lost": ledger.lost,
            "duplicates": ledger.duplicates,
            "stored": ledger.stored,
        }),
    );
    archive
}

fn time_now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

/// The HTTP server alone: every page fetched, 64 at a time.
async fn http_ceiling(pages: u64) {
    let site = Site::start(pages);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let bytes: usize = futures::stream::iter(site.urls.clone())
        .map(|u| {
            let c = client.clone();
            async move { c.get(u).send().await.unwrap().bytes().await.unwrap().len() }
        })
        .buffer_unordered(64)
        .fold(0, |a, b| async move { a + b })
        .await;
    let secs = started.elapsed().as_secs_f64();
    emit(
        "http_ceiling",
        serde_json::json!({ "pages": pages, "pages_per_s": pages as f64 / secs, "mib": bytes as f64 / 1048576.0 }),
    );
}

/// nats-server alone: 50 KB messages published to a file stream, then
/// consumed with an ack each.
async fn nats_ceiling(messages: u64) {
    let nats = NatsServer::start().await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    js.create_stream(stream::Config {
        name: "CEIL".into(),
        subjects: vec!["ceil".into()],
        retention: stream::RetentionPolicy::WorkQueue,
        ..Default::default()
    })
    .await
    .unwrap();
    let body = bytes::Bytes::from(vec![b'x'; 50_000]);
    let started = Instant::now();
    let mut acks = Vec::new();
    for _ in 0..messages {
        acks.push(js.publish("ceil", body.clone()).await.unwrap());
        if acks.len() >= 256 {
            for a in acks.drain(..) {
                a.await.unwrap();
            }
        }
    }
    for a in acks {
        a.await.unwrap();
    }
    let publish_s = started.elapsed().as_secs_f64();
    let c = js
        .get_stream("CEIL")
        .await
        .unwrap()
        .create_consumer(consumer::pull::Config {
            durable_name: Some("c".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: 1024,
            ..Default::default()
        })
        .await
        .unwrap();
    let started = Instant::now();
    let mut msgs = c.messages().await.unwrap().take(messages as usize);
    while let Some(m) = msgs.next().await {
        m.unwrap().ack().await.unwrap();
    }
    let consume_s = started.elapsed().as_secs_f64();
    emit(
        "nats_ceiling",
        serde_json::json!({
            "messages": messages,
            "publish_per_s": messages as f64 / publish_s,
            "consume_ack_per_s": messages as f64 / consume_s,
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: make bench"]
async fn pipeline_and_ceilings() {
    // `10000` runs with the default durability (group commit); `-object`
    // with an fsync of every object; `-off` (or `-nofsync`) without any,
    // like a crawler that writes files and never syncs them.
    let runs = std::env::var("BENCH_PAGES").unwrap_or_else(|_| "1000,10000".into());
    // Archives are deleted only after the last run: on ext4 without a
    // journal (this machine's disk), creating a file skips every inode freed
    // in the last 60 s (6 min while their inode table blocks are unwritten),
    // and after deleting a 10,000-page archive that about doubled the next
    // run's archiving CPU. pipeline.sh waits before its first run too.
    let mut archives = Vec::new();
    for run in runs.split(',') {
        let (n, fsync, warc) = match run.trim().split_once('-') {
            Some((n, "off" | "nofsync")) => (n, "off", true),
            Some((n, "object")) => (n, "object", true),
            Some((n, "nowarc")) => (n, "batch", false),
            Some((_, other)) => panic!("BENCH_PAGES: unknown mode `{other}`"),
            None => (run.trim(), "batch", true),
        };
        archives.push(pipeline(n.parse().unwrap(), fsync, warc).await);
    }
    http_ceiling(10_000).await;
    nats_ceiling(10_000).await;
}
