//! The fault suite (`make test-faults`): the real pipeline on a 2,000-page
//! local news site while processes crash, stop and restart, nats-server
//! dies and the S3 server goes away. After each scenario a ledger accounts
//! for every submitted URL: stored, not modified, or dead-lettered with a
//! reason. `lost` (no end state) and `duplicates` (extra versions in the
//! store) must be 0, and no archived record may be corrupt.
//!
//! These tests are `#[ignore]`d so `make test` stays quick; `make
//! test-faults` runs them one at a time and writes their ledgers to
//! `$CRAWLQ_FAULTS_REPORT`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use crawlq_e2e::{dead_letters, redeliveries, report, stream_len, Ledger, Stack, SERVICES};
use crawlq_testkit::news_site::NewsSite;
use crawlq_testkit::{unique_prefix, NatsCluster, NatsServer, S3Server};
use rand::RngExt as _;

fn pages() -> u64 {
    std::env::var("CRAWLQ_FAULT_PAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Time every scenario gets to settle after its fault.
const SETTLE: Duration = Duration::from_secs(600);

/// Where the scenario's NATS runs.
enum Nats {
    One(NatsServer),
    /// Three nodes; the services use R3 streams and buckets.
    Cluster(NatsCluster),
}

impl Nats {
    fn url(&self) -> String {
        match self {
            Nats::One(n) => n.url(),
            Nats::Cluster(c) => c.url(),
        }
    }

    fn one(&mut self) -> &mut NatsServer {
        match self {
            Nats::One(n) => n,
            Nats::Cluster(_) => panic!("a single-server scenario"),
        }
    }

    fn cluster(&mut self) -> &mut NatsCluster {
        match self {
            Nats::Cluster(c) => c,
            Nats::One(_) => panic!("a cluster scenario"),
        }
    }
}

/// One scenario's world: site, nats-server, services, submitted URLs.
struct World {
    site: NewsSite,
    nats: Nats,
    s3: Option<S3Server>,
    prefix: String,
    stack: Stack,
    js: jetstream::Context,
    urls: Vec<String>,
    archive: PathBuf,
    _local: Option<tempfile::TempDir>,
    started: Instant,
}

impl World {
    async fn start(on_s3: bool, extra_env: &[(&str, &str)]) -> World {
        World::start_on(Nats::One(NatsServer::start().await), on_s3, extra_env).await
    }

    /// A world on a 3-node JetStream cluster, R3 streams and buckets.
    async fn on_cluster() -> World {
        let cluster = Nats::Cluster(NatsCluster::start().await);
        World::start_on(cluster, false, &[("CRAWLQ_STREAM_REPLICAS", "3")]).await
    }

    async fn start_on(nats: Nats, on_s3: bool, extra_env: &[(&str, &str)]) -> World {
        let site = NewsSite::serve(8).await;
        let prefix = unique_prefix();
        let mut env: Vec<(String, String)> = [
            // Redeliver quickly after a crash; in-progress acks keep slow
            // work alive.
            ("CRAWLQ_ACK_WAIT", "5s"),
            ("CRAWLQ_HOST_CONCURRENCY", "4"),
            ("CRAWLQ_SHUTDOWN_GRACE", "10s"),
        ]
        .iter()
        .chain(extra_env)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let (s3, local, store_url, archive) = if on_s3 {
            let s3 = S3Server::start("archive").await;
            env.extend(s3.env());
            let archive = s3.root().join("archive/faults");
            (Some(s3), None, "s3://archive/faults".to_string(), archive)
        } else {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            let url = path.to_str().unwrap().to_string();
            (None, Some(dir), url, path)
        };
        let stack = Stack::start_at(&nats.url(), &prefix, &store_url, &env);
        let seeds: Vec<async_nats::ServerAddr> =
            nats.url().split(',').map(|u| u.parse().unwrap()).collect();
        let js = jetstream::new(async_nats::connect(seeds).await.unwrap());
        let urls = site.urls(pages());
        World {
            site,
            nats,
            s3,
            prefix,
            stack,
            js,
            urls,
            archive,
            _local: local,
            started: Instant::now(),
        }
    }

    /// Submits every URL (and `extra` lines) with `crawlq submit -f`.
    async fn submit(&mut self, extra: &[String]) {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut lines = self.urls.clone();
        lines.extend(extra.iter().cloned());
        std::fs::write(file.path(), lines.join("\n")).unwrap();
        let out = self
            .stack
            .run(&["submit", "-f", file.path().to_str().unwrap()])
            .await;
        assert!(out.contains(&format!("accepted {}", lines.len())), "{out}");
        self.started = Instant::now();
    }

    /// Waits until `fraction` of the URLs are stored.
    async fn wait_progress(&self, fraction: f64) {
        let want = (self.urls.len() as f64 * fraction) as u64;
        let stream = format!("{}_STORED", self.prefix.to_uppercase());
        let deadline = Instant::now() + Duration::from_secs(120);
        while stream_len(&self.js, &stream).await < want {
            assert!(
                Instant::now() < deadline,
                "no progress: {}",
                self.stack.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn settle(&self) -> Ledger {
        Ledger::settle(&self.js, &self.prefix, &self.urls, &self.archive, SETTLE).await
    }

    fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Reports the scenario's ledger, then holds it to the promise: nothing
    /// lost, duplicated, corrupt, or both stored and dead-lettered, and
    /// every page of the site stored.
    fn conclude(&self, name: &str, l: &Ledger, extra: serde_json::Value) {
        report(name, l, extra);
        assert_eq!(
            l.lost,
            0,
            "{name}: lost URLs: {l:?}\n{}",
            self.stack.log_tail()
        );
        assert_eq!(l.duplicates, 0, "{name}: duplicate versions: {l:?}");
        assert_eq!(l.corrupt, 0, "{name}: corrupt records: {l:?}");
        assert_eq!(l.conflicting, 0, "{name}: stored and dead-lettered: {l:?}");
        assert_eq!(
            l.stored,
            self.urls.len(),
            "{name}: every page stored: {l:?}\n{}",
            self.stack.log_lines("dead-lettered", 10)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: make test-faults"]
async fn kill_9_each_service_five_times() {
    let mut w = World::start(false, &[]).await;
    w.submit(&[]).await;
    w.wait_progress(0.05).await;
    let mut rng = rand::rng();
    let mut kills = 0;
    for round in 0..5 {
        for service in SERVICES {
            tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
            let idx = w.stack.current(service);
            w.stack.kill9(idx);
            kills += 1;
            let new = w.stack.spawn(service);
            assert!(
                w.stack.wait_ready(new, Duration::from_secs(30)).await,
                "round {round}: {service} did not come back"
            );
        }
    }
    let killed_at = w.elapsed();
    let l = w.settle().await;
    w.conclude(
        "kill -9 crawler, extractor, storage, 5 times each",
        &l,
        serde_json::json!({ "kills": kills, "faults_done_at_s": killed_at, "settled_s": w.elapsed() }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: make test-faults"]
async fn kill_9_nats_server_then_restart_on_the_same_store() {
    let mut w = World::start(false, &[]).await;
    w.submit(&[]).await;
    w.wait_progress(0.3).await;
    w.nats.one().kill();
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    w.nats.one().restart().await;
    let outage = down.elapsed().as_secs_f64();
    // The test's own connection reconnects like the services do.
    let l = w.settle().await;
    w.conclude(
        "kill -9 nats-server, restart on the same store dir",
        &l,
        serde_json::json!({ "outage_s": outage, "settled_s": w.elapsed() }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: make test-faults"]
async fn s3_server_down_for_30_seconds() {
    let mut w = World::start(true, &[]).await;
    w.submit(&[]).await;
    w.wait_progress(0.2).await;
    let s3 = w.s3.as_mut().unwrap();
    s3.stop();
    tokio::time::sleep(Duration::from_secs(30)).await;
    s3.restart().await;
    let l = w.settle().await;
    let dlq = dead_letters(&w.js, &w.prefix).await.len();
    w.conclude(
        "S3 server (s3s-fs) stopped for 30 s",
        &l,
        serde_json::json!({ "outage_s": 30, "dead_letters": dlq, "settled_s": w.elapsed() }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: make test-faults"]
async fn sigstop_a_storage_replica_beyond_the_ack_wait() {
    let mut w = World::start(false, &[]).await;
    let second = w.stack.spawn("storage");
    assert!(w.stack.wait_ready(second, Duration::from_secs(30)).await);
    w.submit(&[]).await;
    w.wait_progress(0.2).await;
    let victim = w.stack.current("storage");
    w.stack.signal(victim, "STOP");
    // Three times the 5 s ack wait: its messages go to the other replica,
    // then it wakes up and finishes them too.
    tokio::time::sleep(Duration::from_secs(15)).await;
    w.stack.signal(victim, "CONT");
    let l = w.settle().await;
    w.conclude(
        "SIGSTOP one of two storage replicas for 15 s (ack wait 5 s)",
        &l,
        serde_json::json!({ "stopped_s": 15, "settled_s": w.elapsed() }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: make test-faults"]
async fn poison_messages_are_dead_lettered_while_the_rest_flows() {
    let mut w = World::start(false, &[]).await;
    let poison_url = w.site.poison_url();
    w.submit(std::slice::from_ref(&poison_url)).await;
    // Garbage protobuf and an oversized text message on the intake.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "application/protobuf");
    let subject = format!("{}.urls", w.prefix);
    w.js.publish_with_headers(
        subject.clone(),
        headers,
        vec![0xff, 0x13, 0x00, 0x9c].into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let huge = format!("http://127.0.0.1/{}", "a".repeat(900_000));
    w.js.publish(subject, huge.into())
        .await
        .unwrap()
        .await
        .unwrap();

    let mut all = w.urls.clone();
    all.push(poison_url.clone());
    let l = Ledger::settle(&w.js, &w.prefix, &all, &w.archive, SETTLE).await;
    let letters = dead_letters(&w.js, &w.prefix).await;
    let reasons: Vec<(String, String)> = letters
        .iter()
        .map(|d| (d.stage.clone(), d.reason.clone()))
        .collect();
    w.conclude(
        "poison: garbage protobuf, a 900 KB line, a page the extractor refuses",
        &l,
        serde_json::json!({ "dead_letters": reasons, "settled_s": w.elapsed() }),
    );
    assert_eq!(l.dead.get("pathological_html"), Some(&1), "{l:?}");
    assert_eq!(letters.len(), 3, "{reasons:?}");
    assert!(
        letters
            .iter()
            .all(|d| !d.reason.is_empty() && !d.error.is_empty()),
        "{letters:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: make test-faults"]
async fn graceful_rolling_restart_causes_no_redeliveries() {
    let mut w = World::start(false, &[]).await;
    w.submit(&[]).await;
    w.wait_progress(0.1).await;
    let mut seen = 0u64;
    for service in SERVICES {
        // Like a Deployment with maxSurge 1, maxUnavailable 0: the new pod
        // is ready before the old one gets SIGTERM.
        let old = w.stack.current(service);
        let new = w.stack.spawn(service);
        assert!(w.stack.wait_ready(new, Duration::from_secs(30)).await);
        w.stack.signal(old, "TERM");
        let mut last = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(text) = w.stack.scrape(old).await {
                last = redeliveries(&text);
            }
            if w.stack.wait_exit(old, Duration::from_millis(100)).await {
                break;
            }
            assert!(Instant::now() < deadline, "{service} did not drain in 30 s");
        }
        seen += last;
    }
    let rolled_at = w.elapsed();
    let l = w.settle().await;
    seen += w
        .stack
        .metric_total("crawlq_worker_redeliveries_total")
        .await as u64;
    w.conclude(
        "graceful rolling restart (SIGTERM) of each service under load",
        &l,
        serde_json::json!({ "redeliveries": seen, "rolled_at_s": rolled_at, "settled_s": w.elapsed() }),
    );
    assert_eq!(seen, 0, "a graceful restart redelivers nothing");
}

/// The node that leads `stream` now.
async fn leader_of(w: &World, stream: &str) -> usize {
    let mut s = w.js.get_stream(stream).await.unwrap();
    let info = s.info().await.unwrap();
    let name = info
        .cluster
        .as_ref()
        .and_then(|c| c.leader.clone())
        .expect("an R3 stream has a leader");
    NatsCluster::index_of(&name).expect("node names are n1..n3")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: make test-faults"]
async fn cluster_kill_9_the_stream_leader_then_restart_it() {
    let mut w = World::on_cluster().await;
    w.submit(&[]).await;
    w.wait_progress(0.2).await;
    let stream = format!("{}_FETCHED", w.prefix.to_uppercase());
    let leader = leader_of(&w, &stream).await;
    w.nats.cluster().kill(leader);
    let down = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    w.nats.cluster().restart(leader).await;
    let outage = down.elapsed().as_secs_f64();
    let l = w.settle().await;
    let retries = w
        .stack
        .metric_total("crawlq_worker_retries_in_place_total")
        .await;
    let redelivered = w
        .stack
        .metric_total("crawlq_worker_redeliveries_total")
        .await;
    w.conclude(
        "3-node cluster: kill -9 the FETCHED stream leader, restart it",
        &l,
        serde_json::json!({ "killed": format!("n{}", leader + 1), "down_s": outage, "settled_s": w.elapsed(),
            "retries_in_place": retries, "redeliveries": redelivered }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: make test-faults"]
async fn cluster_sigstop_one_node_for_30_seconds() {
    let mut w = World::on_cluster().await;
    w.submit(&[]).await;
    w.wait_progress(0.2).await;
    let stream = format!("{}_URLS", w.prefix.to_uppercase());
    let node = leader_of(&w, &stream).await;
    w.nats.cluster().signal(node, "STOP");
    tokio::time::sleep(Duration::from_secs(30)).await;
    w.nats.cluster().signal(node, "CONT");
    let l = w.settle().await;
    w.conclude(
        "3-node cluster: SIGSTOP the URLS stream leader for 30 s",
        &l,
        serde_json::json!({ "stopped": format!("n{}", node + 1), "stopped_s": 30, "settled_s": w.elapsed() }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault suite: make test-faults"]
async fn cluster_rolling_restart_of_all_three_nodes() {
    let mut w = World::on_cluster().await;
    w.submit(&[]).await;
    w.wait_progress(0.1).await;
    for node in 0..3 {
        // As a StatefulSet rolls: one node at a time, SIGTERM, back up,
        // and a moment for its streams to catch up before the next.
        w.nats.cluster().stop(node);
        w.nats.cluster().restart(node).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let rolled_at = w.elapsed();
    let l = w.settle().await;
    w.conclude(
        "3-node cluster: rolling restart (SIGTERM) of every node under load",
        &l,
        serde_json::json!({ "rolled_at_s": rolled_at, "settled_s": w.elapsed() }),
    );
}
