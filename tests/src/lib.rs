//! End-to-end tests live in `tests/tests/`: they run the real `crawlq`
//! binary (built by `make test` before the tests run) as separate
//! processes against a real nats-server, local sites, and a local folder or
//! a real S3 server. This library holds what they share: [`Stack`], the
//! three services as processes one can kill, stop and restart, and
//! [`Ledger`], the account of where every submitted URL ended.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use crawlq_proto::v1::{DeadLetter, StoreOutcome, StoredSnapshot};
use crawlq_proto::Message as _;
use crawlq_testkit::{free_port, read_stream, unique_prefix, NatsServer};

/// The `crawlq` binary of this build (debug unless `CRAWLQ_BIN` names one).
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("CRAWLQ_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/crawlq");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p crawlq` first (`make test` does)",
        bin.display()
    );
    bin
}

/// One service process.
pub struct Process {
    /// `crawler`, `extractor` or `storage`.
    pub service: &'static str,
    /// `/metrics` port.
    pub metrics_port: u16,
    child: Option<Child>,
}

impl Process {
    /// The OS process id (0 once it has exited).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }
}

/// The three services as separate processes (more replicas on demand),
/// killed on drop.
pub struct Stack {
    /// Environment every process (and user command) gets.
    pub env: Vec<(String, String)>,
    /// Every process started, in order; stopped ones stay listed.
    pub procs: Vec<Process>,
    logs: tempfile::TempDir,
}

/// The services, in pipeline order.
pub const SERVICES: [&str; 3] = ["crawler", "extractor", "storage"];

impl Stack {
    /// Starts one process of each service.
    pub fn start(
        nats: &NatsServer,
        prefix: &str,
        store_url: &str,
        extra_env: &[(String, String)],
    ) -> Stack {
        Stack::start_at(&nats.url(), prefix, store_url, extra_env)
    }

    /// [`Stack::start`] against the server(s) at `nats_url` (a seed list
    /// for a cluster).
    pub fn start_at(
        nats_url: &str,
        prefix: &str,
        store_url: &str,
        extra_env: &[(String, String)],
    ) -> Stack {
        let mut env: Vec<(String, String)> = vec![
            ("CRAWLQ_NATS_URL".into(), nats_url.into()),
            ("CRAWLQ_SUBJECT_PREFIX".into(), prefix.into()),
            ("CRAWLQ_STORE_URL".into(), store_url.into()),
            ("CRAWLQ_ALLOW_PRIVATE_NETWORKS".into(), "true".into()),
            ("CRAWLQ_HOST_DELAY".into(), "0s".into()),
            ("CRAWLQ_RETRY_BASE_DELAY".into(), "500ms".into()),
            ("CRAWLQ_INDEX_FLUSH_INTERVAL".into(), "200ms".into()),
        ];
        env.extend(extra_env.iter().cloned());
        let mut stack = Stack {
            env,
            procs: Vec::new(),
            logs: tempfile::tempdir().unwrap(),
        };
        for s in SERVICES {
            stack.spawn(s);
        }
        stack
    }

    /// A stack with no process yet (for user commands alone).
    pub fn empty() -> Stack {
        Stack {
            env: Vec::new(),
            procs: Vec::new(),
            logs: tempfile::tempdir().unwrap(),
        }
    }

    /// Starts another process of `service`; returns its index in `procs`.
    /// The metrics port is picked free, but another test may take it
    /// before the service binds it: a process that exits at once is
    /// started again on another port.
    pub fn spawn(&mut self, service: &'static str) -> usize {
        let idx = self.procs.len();
        for attempt in 0.. {
            let port = free_port();
            let log = std::fs::File::options()
                .create(true)
                .append(true)
                .open(self.log_path(service))
                .unwrap();
            let mut child = Command::new(binary())
                .arg(service)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .env("CRAWLQ_METRICS_ADDR", format!("127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start crawlq service");
            // The listener is bound first thing at start.
            std::thread::sleep(Duration::from_millis(300));
            if attempt < 5 && matches!(child.try_wait(), Ok(Some(_))) {
                continue;
            }
            self.procs.push(Process {
                service,
                metrics_port: port,
                child: Some(child),
            });
            break;
        }
        idx
    }

    /// The running process of `service` started last.
    pub fn current(&self, service: &str) -> usize {
        self.procs
            .iter()
            .rposition(|p| p.service == service && p.child.is_some())
            .unwrap_or_else(|| panic!("no running {service}"))
    }

    /// `kill -9`, like a crash or an OOM kill.
    pub fn kill9(&mut self, idx: usize) {
        if let Some(mut c) = self.procs[idx].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal (`TERM`, `STOP`, `CONT`...) with kill(1).
    pub fn signal(&self, idx: usize, sig: &str) {
        let pid = self.procs[idx].pid();
        assert!(pid != 0, "process {idx} has exited");
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} {pid}");
    }

    /// Waits for process `idx` to exit (after SIGTERM); false on timeout.
    pub async fn wait_exit(&mut self, idx: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let Some(c) = self.procs[idx].child.as_mut() else {
                return true;
            };
            if c.try_wait().unwrap().is_some() {
                self.procs[idx].child = None;
                return true;
            }
            if tokio::time::Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asserts that every process started so far answers `/readyz`.
    pub async fn all_ready(&self, timeout: Duration) {
        for i in 0..self.procs.len() {
            assert!(self.wait_ready(i, timeout).await, "{}", self.log_tail());
        }
    }

    /// Waits until process `idx` answers 200 on `/readyz`.
    pub async fn wait_ready(&self, idx: usize, timeout: Duration) -> bool {
        let url = format!("http://127.0.0.1:{}/readyz", self.procs[idx].metrics_port);
        crawlq_testkit::eventually(timeout, || async {
            reqwest::get(&url)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await
    }

    /// `/metrics` of process `idx`, if it answers.
    pub async fn scrape(&self, idx: usize) -> Option<String> {
        let url = format!("http://127.0.0.1:{}/metrics", self.procs[idx].metrics_port);
        reqwest::get(url).await.ok()?.text().await.ok()
    }

    /// The sum of metric `name` over every process still running.
    pub async fn metric_total(&self, name: &str) -> f64 {
        let mut total = 0.0;
        for idx in 0..self.procs.len() {
            if self.procs[idx].pid() != 0 {
                total += self.scrape(idx).await.map_or(0.0, |t| metric_sum(&t, name));
            }
        }
        total
    }

    /// Runs a user command and returns its standard output.
    pub async fn run(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(binary())
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .await
            .expect("run crawlq");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "crawlq {args:?} failed: {}\n{stdout}\nlogs: {}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        stdout
    }

    /// Where the processes of `service` write their log.
    fn log_path(&self, service: &str) -> PathBuf {
        self.logs.path().join(format!("{service}.log"))
    }

    /// Everything the processes of `service` logged so far.
    fn log_text(&self, service: &str) -> String {
        std::fs::read_to_string(self.log_path(service)).unwrap_or_default()
    }

    /// Up to `max` lines of the services' logs that contain `needle`, each
    /// after its service's name: which stage dead-lettered what, and why.
    pub fn log_lines(&self, needle: &str, max: usize) -> String {
        SERVICES
            .iter()
            .flat_map(|s| {
                self.log_text(s)
                    .lines()
                    .filter(|l| l.contains(needle))
                    .map(|l| format!("{s}: {l}"))
                    .collect::<Vec<_>>()
            })
            .take(max)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The last lines of each service's log.
    pub fn log_tail(&self) -> String {
        SERVICES
            .iter()
            .map(|s| {
                let text = self.log_text(s);
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- {s}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            // A stopped process must be continued before it can die.
            if self.procs[i].child.is_some() {
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(self.procs[i].pid().to_string())
                    .status();
            }
            self.kill9(i);
        }
        // `CRAWLQ_KEEP_LOGS=dir` keeps the services' logs of every stack,
        // for looking into a scenario after it ran.
        if let Some(dir) = std::env::var_os("CRAWLQ_KEEP_LOGS") {
            let dir = PathBuf::from(dir).join(unique_prefix());
            if std::fs::create_dir_all(&dir).is_ok() {
                for s in SERVICES {
                    let _ = std::fs::copy(self.log_path(s), dir.join(format!("{s}.log")));
                }
                eprintln!("service logs kept in {}", dir.display());
            }
        }
    }
}

/// Every message of the dead-letter stream.
pub async fn dead_letters(js: &jetstream::Context, prefix: &str) -> Vec<DeadLetter> {
    read_stream(js, &format!("{}_DLQ", prefix.to_uppercase()))
        .await
        .iter()
        .map(|m| DeadLetter::decode(m.payload.as_slice()).unwrap())
        .collect()
}

/// Every message of the stored-events stream.
pub async fn stored_events(js: &jetstream::Context, prefix: &str) -> Vec<StoredSnapshot> {
    read_stream(js, &format!("{}_STORED", prefix.to_uppercase()))
        .await
        .iter()
        .map(|m| StoredSnapshot::decode(m.payload.as_slice()).unwrap())
        .collect()
}

/// Messages in a stream, from its info (cheap enough to poll).
pub async fn stream_len(js: &jetstream::Context, stream: &str) -> u64 {
    match js.get_stream(stream).await {
        Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
        Err(_) => 0,
    }
}

/// Every file under `root`, as paths relative to it.
pub fn files_under(root: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Where every submitted URL ended. `lost` and `duplicates` must be 0.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Ledger {
    /// URLs submitted.
    pub submitted: usize,
    /// URLs stored as a new article, a changed version or unchanged.
    pub stored: usize,
    /// URLs the server confirmed not modified (304).
    pub not_modified: usize,
    /// URLs dead-lettered, by reason.
    pub dead: BTreeMap<String, usize>,
    /// URLs with no end state.
    pub lost: usize,
    /// URLs both stored and dead-lettered (must be 0).
    pub conflicting: usize,
    /// Extra version objects: versions beyond one per article (the pages
    /// never change, so any extra is a duplicate).
    pub duplicates: usize,
    /// Version keys of the first few duplicated articles, for diagnosis.
    pub duplicate_examples: Vec<String>,
    /// Staging files a killed writer left in a local folder (`key#N`):
    /// object_store never lists them, so readers do not see them.
    pub staging_leftovers: usize,
    /// Articles whose latest record does not parse back (must be 0).
    pub corrupt: usize,
    /// Stored events beyond one per URL (pages fetched again after a
    /// crash, `unchanged`): harmless, reported for interest.
    pub extra_events: usize,
}

impl Ledger {
    /// Accounts for `urls` from the stored and dead-letter streams and the
    /// archive folder `archive` (a local store, or an S3 server's bucket
    /// folder).
    pub async fn take(
        js: &jetstream::Context,
        prefix: &str,
        urls: &[String],
        archive: &Path,
    ) -> Ledger {
        let submitted: BTreeSet<&str> = urls.iter().map(String::as_str).collect();
        let mut stored = BTreeSet::new();
        let mut not_modified = BTreeSet::new();
        let mut events = 0usize;
        for e in stored_events(js, prefix).await {
            if !submitted.contains(e.url.as_str()) {
                continue;
            }
            events += 1;
            if e.outcome == StoreOutcome::NotModified as i32 {
                not_modified.insert(e.url);
            } else {
                stored.insert(e.url);
            }
        }
        let mut dead: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for d in dead_letters(js, prefix).await {
            if submitted.contains(d.url.as_str()) {
                dead.entry(d.reason).or_default().insert(d.url);
            }
        }
        let dead_urls: BTreeSet<&String> = dead.values().flatten().collect();
        let ended: BTreeSet<&String> = stored
            .iter()
            .chain(&not_modified)
            .chain(dead_urls.iter().copied())
            .collect();
        // object_store writes a local file as `key#N`, then renames it; a
        // writer killed in between leaves the staging file, which no
        // listing or read returns.
        let (staging, files): (BTreeSet<String>, BTreeSet<String>) =
            files_under(archive).into_iter().partition(|f| {
                f.rsplit_once('#')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            });
        let mut versions: BTreeMap<String, Vec<&String>> = BTreeMap::new();
        for f in files.iter().filter(|f| f.starts_with("versions/")) {
            let article = f.rsplit_once('/').unwrap().0.to_string();
            versions.entry(article).or_default().push(f);
        }
        let duplicate_examples = versions
            .values()
            .filter(|v| v.len() > 1)
            .take(3)
            .flatten()
            .map(|f| f.to_string())
            .collect();
        let corrupt = files
            .iter()
            .filter(|f| f.starts_with("articles/") && f.ends_with(".md"))
            .filter(|f| {
                let text = std::fs::read_to_string(archive.join(f)).unwrap_or_default();
                let body = text.splitn(5, '\n').nth(4).unwrap_or("");
                crawlq_record::parse_header(&text).is_none() || !body.starts_with('<')
            })
            .count();
        Ledger {
            submitted: submitted.len(),
            stored: stored.len(),
            not_modified: not_modified.len(),
            lost: submitted.len() - ended.len(),
            conflicting: stored.iter().filter(|u| dead_urls.contains(u)).count(),
            dead: dead.into_iter().map(|(r, u)| (r, u.len())).collect(),
            duplicates: versions.values().map(|v| v.len() - 1).sum(),
            duplicate_examples,
            staging_leftovers: staging.len(),
            corrupt,
            extra_events: events - stored.len() - not_modified.len(),
        }
    }

    /// Waits until every URL has ended (or `timeout`), then accounts.
    pub async fn settle(
        js: &jetstream::Context,
        prefix: &str,
        urls: &[String],
        archive: &Path,
        timeout: Duration,
    ) -> Ledger {
        let deadline = tokio::time::Instant::now() + timeout;
        let upper = prefix.to_uppercase();
        loop {
            let ends = stream_len(js, &format!("{upper}_STORED")).await
                + stream_len(js, &format!("{upper}_DLQ")).await;
            if ends as usize >= urls.len() {
                let l = Ledger::take(js, prefix, urls, archive).await;
                if l.lost == 0 || tokio::time::Instant::now() > deadline {
                    return l;
                }
            } else if tokio::time::Instant::now() > deadline {
                return Ledger::take(js, prefix, urls, archive).await;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Appends a scenario's row to `$CRAWLQ_FAULTS_REPORT` (JSON lines), if set.
pub fn report(scenario: &str, ledger: &Ledger, extra: serde_json::Value) {
    eprintln!("{scenario}: {ledger:?} {extra}");
    append_json_line(
        "CRAWLQ_FAULTS_REPORT",
        serde_json::json!({ "scenario": scenario, "ledger": ledger, "extra": extra }),
    );
}

/// Appends `line` to the file the environment variable `var` names, if set.
pub fn append_json_line(var: &str, line: serde_json::Value) {
    if let Some(path) = std::env::var_os(var) {
        use std::io::Write;
        let mut f = std::fs::File::options()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
}

/// Sum of `crawlq_worker_redeliveries_total` over a scrape.
pub fn redeliveries(scrape: &str) -> u64 {
    metric_sum(scrape, "crawlq_worker_redeliveries_total") as u64
}

/// The sum of every series of metric `name` in a Prometheus text scrape.
pub fn metric_sum(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Peak resident memory of a live process (VmHWM), MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}
