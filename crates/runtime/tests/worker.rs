//! The worker loop against a real nats-server: ack ordering, retries with
//! backoff, dead letters, graceful shutdown and a server crash.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use clap::Parser;
use crawlq_proto::v1::DeadLetter;
use crawlq_proto::Message as _;
use crawlq_runtime::config::{try_parse_from, CommonArgs};
use crawlq_runtime::{Classify, Delivery, Disposition, Handler, Outgoing, Runtime, Stage};
use crawlq_testkit::{eventually, service_args, unique_prefix, NatsServer};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

fn common(nats: &NatsServer, prefix: &str, extra: &[&str]) -> CommonArgs {
    let mut args = service_args(nats, prefix);
    args.extend([
        "--retry-base-delay=300ms".into(),
        "--max-deliveries=3".into(),
        "--ack-wait=3s".into(),
        "--shutdown-grace=10s".into(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    try_parse_from::<Cli, _, _>(args)
        .expect("valid test args")
        .common
}

#[derive(Debug, thiserror::Error)]
enum TestError {
    #[error("flaky failure")]
    Flaky,
    #[error("poison message")]
    Poison,
    #[error("malformed input")]
    Malformed,
    #[error("the bucket has no leader")]
    Outage,
}

impl Classify for TestError {
    fn disposition(&self) -> Disposition {
        match self {
            TestError::Flaky => Disposition::Retry(Some(Duration::from_secs(1))),
            TestError::Poison => Disposition::Retry(None),
            TestError::Malformed => Disposition::Permanent,
            TestError::Outage => Disposition::Retry(None),
        }
    }
    fn reason(&self) -> &'static str {
        match self {
            TestError::Flaky => "flaky",
            TestError::Poison => "poison",
            TestError::Malformed => "malformed",
            TestError::Outage => "outage",
        }
    }
    fn pipeline_fault(&self) -> bool {
        matches!(self, TestError::Outage)
    }
}

/// Behaviour by payload: `flaky*` fails its first delivery, `poison` always
/// fails retryably, `bad` fails permanently, `outage*` fails its first five
/// attempts for the pipeline's own reasons, `slow*` takes 1.5 s, `gate*`
/// waits for `gate`; everything else succeeds at once. Success publishes
/// the payload to `{prefix}.fetched` with the payload as message id.
#[derive(Clone)]
struct TestHandler {
    out: String,
    log: Arc<Mutex<Vec<(String, u32, Instant)>>>,
    gate: Arc<Notify>,
}

impl TestHandler {
    fn new(prefix: &str) -> TestHandler {
        TestHandler {
            out: format!("{prefix}.fetched"),
            log: Arc::default(),
            gate: Arc::new(Notify::new()),
        }
    }
    fn deliveries(&self, payload: &str) -> Vec<(u32, Instant)> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(p, _, _)| p == payload)
            .map(|(_, d, t)| (*d, *t))
            .collect()
    }
}

impl Handler for TestHandler {
    type Error = TestError;

    async fn handle(&self, d: &Delivery) -> Result<Vec<Outgoing>, TestError> {
        let payload = String::from_utf8_lossy(&d.payload).to_string();
        self.log
            .lock()
            .unwrap()
            .push((payload.clone(), d.delivered, Instant::now()));
        if payload.starts_with("flaky") && d.delivered == 1 {
            return Err(TestError::Flaky);
        }
        if payload == "poison" {
            return Err(TestError::Poison);
        }
        if payload == "bad" {
            return Err(TestError::Malformed);
        }
        if payload.starts_with("outage") && self.deliveries(&payload).len() <= 5 {
            return Err(TestError::Outage);
        }
        if payload.starts_with("slow") {
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        if payload.starts_with("gate") {
            self.gate.notified().await;
        }
        let mut out = Outgoing::protobuf(&self.out, &DeadLetter::default()).with_msg_id(&payload);
        out.payload = d.payload.clone();
        Ok(vec![out])
    }
}

struct Harness {
    js: jetstream::Context,
    prefix: String,
    stop: CancellationToken,
    worker: tokio::task::JoinHandle<()>,
}

async fn start_worker(nats: &NatsServer, prefix: &str, handler: TestHandler) -> Harness {
    start_worker_with(nats, prefix, handler, &[]).await
}

async fn start_worker_with(
    nats: &NatsServer,
    prefix: &str,
    handler: TestHandler,
    extra: &[&str],
) -> Harness {
    let stop = CancellationToken::new();
    let rt = Runtime::start(&common(nats, prefix, extra), "test-worker", stop.clone())
        .await
        .expect("runtime starts");
    let js = rt.js.clone();
    let worker = tokio::spawn(async move {
        rt.run_worker(Stage::Crawler, 8, handler)
            .await
            .expect("worker runs");
    });
    Harness {
        js,
        prefix: prefix.to_string(),
        stop,
        worker,
    }
}

impl Harness {
    async fn publish(&self, payload: &str) {
        self.js
            .publish(format!("{}.urls", self.prefix), payload.to_string().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    async fn count(&self, stream: &str) -> u64 {
        let name = format!("{}_{stream}", self.prefix.to_uppercase());
        match self.js.get_stream(&name).await {
            Ok(mut s) => s.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        }
    }
    async fn outputs(&self) -> BTreeMap<String, u64> {
        let name = format!("{}_FETCHED", self.prefix.to_uppercase());
        let stream = self.js.get_stream(&name).await.unwrap();
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut seen = BTreeMap::new();
        for seq in 1..=last {
            if let Ok(m) = stream.get_raw_message(seq).await {
                *seen
                    .entry(String::from_utf8_lossy(&m.payload).to_string())
                    .or_insert(0) += 1;
            }
        }
        seen
    }
    async fn dead_letters(&self) -> Vec<DeadLetter> {
        let name = format!("{}_DLQ", self.prefix.to_uppercase());
        let stream = self.js.get_stream(&name).await.unwrap();
        let last = stream.get_info().await.unwrap().state.last_sequence;
        let mut out = Vec::new();
        for seq in 1..=last {
            if let Ok(m) = stream.get_raw_message(seq).await {
                out.push(DeadLetter::decode(m.payload).unwrap());
            }
        }
        out
    }
    async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(20), self.worker)
            .await
            .expect("worker stops within the grace period")
            .unwrap();
    }
}

#[tokio::test]
async fn acks_only_after_results_are_published() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let handler = TestHandler::new(&prefix);
    let h = start_worker(&nats, &prefix, handler.clone()).await;

    h.publish("gate-1").await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            !handler.deliveries("gate-1").is_empty()
        })
        .await
    );
    // While the handler runs, the input is neither acked nor published on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.count("URLS").await,
        1,
        "input must stay until the result is safe"
    );
    assert_eq!(h.count("FETCHED").await, 0);

    handler.gate.notify_one();
    assert!(
        eventually(Duration::from_secs(5), || async {
            h.count("URLS").await == 0
        })
        .await
    );
    assert_eq!(h.outputs().await.get("gate-1"), Some(&1));
    h.shutdown().await;
}

#[tokio::test]
async fn unpublishable_result_is_not_acked() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let mut handler = TestHandler::new(&prefix);
    // No stream captures this subject, so every publish fails.
    handler.out = format!("{prefix}.nowhere");
    let h = start_worker_with(&nats, &prefix, handler.clone(), &["--outage-patience=2s"]).await;

    h.publish("orphan").await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            handler.deliveries("orphan").len() >= 2
        })
        .await,
        "a result that cannot be published makes the input come back"
    );
    let d = handler.deliveries("orphan");
    assert!(
        d[1].1 - d[0].1 >= Duration::from_secs(2),
        "publishing is retried in place for the patience before the input is handed back: {d:?}"
    );
    assert!(h.count("URLS").await <= 1);
    h.shutdown().await;
}

/// A handler failing for the pipeline's own reasons (a bucket without a
/// leader) is run again in place: five failures, more than the three
/// deliveries allowed, cost none of them.
#[tokio::test]
async fn a_pipeline_fault_in_the_handler_is_retried_in_place() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let handler = TestHandler::new(&prefix);
    let h = start_worker(&nats, &prefix, handler.clone()).await;

    h.publish("outage-1").await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            h.count("URLS").await == 0
        })
        .await,
        "the input is acked once the handler succeeds"
    );
    let d = handler.deliveries("outage-1");
    assert_eq!(d.len(), 6, "{d:?}");
    assert!(
        d.iter().all(|(n, _)| *n == 1),
        "all on the first delivery: {d:?}"
    );
    assert_eq!(h.outputs().await.get("outage-1"), Some(&1));
    assert!(h.dead_letters().await.is_empty());
    h.shutdown().await;
}

/// A stream that cannot take messages for a few seconds (a leader
/// election, a node restarting) is the pipeline's fault, not the
/// message's: publishing is retried in place, so the input is handled
/// once and spends none of its deliveries.
#[tokio::test]
async fn a_result_stream_away_for_seconds_costs_no_delivery() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let mut handler = TestHandler::new(&prefix);
    handler.out = format!("{prefix}.later");
    let h = start_worker(&nats, &prefix, handler.clone()).await;

    h.publish("patient").await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            !handler.deliveries("patient").is_empty()
        })
        .await
    );
    // Longer than the ack wait (3 s) and the whole retry budget (3
    // deliveries, 300 ms base delay).
    tokio::time::sleep(Duration::from_secs(4)).await;
    h.js.create_stream(jetstream::stream::Config {
        name: format!("{}_LATER", prefix.to_uppercase()),
        subjects: vec![format!("{prefix}.later")],
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(
        eventually(Duration::from_secs(15), || async {
            h.count("URLS").await == 0
        })
        .await,
        "the input is acked once its result is published"
    );
    assert_eq!(h.count("LATER").await, 1);
    assert_eq!(
        handler.deliveries("patient").len(),
        1,
        "handled once: {:?}",
        handler.deliveries("patient")
    );
    assert!(h.dead_letters().await.is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn retryable_error_is_redelivered_after_its_delay() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let handler = TestHandler::new(&prefix);
    let h = start_worker(&nats, &prefix, handler.clone()).await;

    h.publish("flaky-1").await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            handler.deliveries("flaky-1").len() == 2
        })
        .await
    );
    let d = handler.deliveries("flaky-1");
    assert_eq!((d[0].0, d[1].0), (1, 2));
    let gap = d[1].1 - d[0].1;
    assert!(
        gap >= Duration::from_millis(950),
        "redelivered after {gap:?}, asked for 1 s"
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            h.outputs().await.get("flaky-1") == Some(&1)
        })
        .await
    );
    assert!(h.dead_letters().await.is_empty());
    h.shutdown().await;
}

#[tokio::test]
async fn poison_is_dead_lettered_after_last_delivery_while_others_flow() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let handler = TestHandler::new(&prefix);
    let h = start_worker(&nats, &prefix, handler.clone()).await;

    h.publish("poison").await;
    h.publish("bad").await;
    for i in 0..20 {
        h.publish(&format!("ok-{i}")).await;
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            h.dead_letters().await.len() == 2
        })
        .await
    );
    let outputs = h.outputs().await;
    assert_eq!(
        outputs.len(),
        20,
        "every good message got through: {outputs:?}"
    );
    assert!(outputs.values().all(|n| *n == 1));

    let letters = h.dead_letters().await;
    let poison = letters
        .iter()
        .find(|l| l.payload == b"poison")
        .expect("poison dead-lettered");
    assert_eq!(poison.reason, "poison");
    assert_eq!(poison.stage, "crawler");
    assert_eq!(
        poison.delivery_count, 3,
        "retried until the last allowed delivery"
    );
    assert_eq!(poison.original_subject, format!("{prefix}.urls"));
    assert!(
        poison.error.contains("gave up after 3 deliveries"),
        "{}",
        poison.error
    );
    let bad = letters
        .iter()
        .find(|l| l.payload == b"bad")
        .expect("bad dead-lettered");
    assert_eq!(
        (bad.reason.as_str(), bad.delivery_count),
        ("malformed", 1),
        "permanent errors are not retried"
    );
    assert_eq!(handler.deliveries("poison").len(), 3);

    // Nothing is left behind in the work queue.
    assert!(
        eventually(Duration::from_secs(5), || async {
            h.count("URLS").await == 0
        })
        .await
    );
    h.shutdown().await;
}

#[tokio::test]
async fn in_flight_work_finishes_on_shutdown() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let handler = TestHandler::new(&prefix);
    let h = start_worker(&nats, &prefix, handler.clone()).await;

    h.publish("slow-1").await;
    h.publish("slow-2").await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            !handler.deliveries("slow-1").is_empty() && !handler.deliveries("slow-2").is_empty()
        })
        .await
    );
    h.shutdown().await;

    // Both finished, were published and acked before the worker returned.
    // The worker drained its connection, so look with a fresh one.
    let probe = Harness {
        js: jetstream::new(async_nats::connect(nats.url()).await.unwrap()),
        prefix: prefix.clone(),
        stop: CancellationToken::new(),
        worker: tokio::spawn(async {}),
    };
    assert_eq!(probe.count("URLS").await, 0);
    let outputs = probe.outputs().await;
    assert_eq!(
        (outputs.get("slow-1"), outputs.get("slow-2")),
        (Some(&1), Some(&1))
    );
    assert_eq!(handler.deliveries("slow-1").len(), 1, "not redelivered");
}

#[tokio::test]
async fn reconnects_after_server_restart_and_loses_nothing() {
    let mut nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let handler = TestHandler::new(&prefix);
    let h = start_worker(&nats, &prefix, handler.clone()).await;

    for i in 0..50 {
        h.publish(&format!("before-{i}")).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            h.outputs().await.len() == 50
        })
        .await
    );

    nats.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.restart().await;

    // Publishing needs the client to have reconnected.
    let reconnected = eventually(Duration::from_secs(20), || async {
        match h
            .js
            .publish(format!("{prefix}.urls"), "after-0".into())
            .await
        {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        }
    })
    .await;
    assert!(reconnected, "client reconnected to the restarted server");
    for i in 1..50 {
        h.publish(&format!("after-{i}")).await;
    }
    assert!(
        eventually(Duration::from_secs(30), || async {
            h.outputs().await.len() == 100
        })
        .await,
        "every message before and after the crash was processed: {}",
        h.outputs().await.len()
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            h.count("URLS").await == 0
        })
        .await
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_provisioning_at_once_all_succeed() {
    // Three services and a `crawlq submit` starting together each find
    // the streams missing and race to create them (the fault suite lost
    // this race once: "subjects overlap with an existing stream").
    let nats = NatsServer::start().await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(jetstream::new(
            async_nats::connect(nats.url()).await.unwrap(),
        ));
    }
    for _ in 0..25 {
        let topo = crawlq_runtime::Topology::new(unique_prefix());
        let racers: Vec<_> = clients
            .iter()
            .map(|js| {
                let (js, topo) = (js.clone(), topo.clone());
                // Small limits: a stream's max_bytes is reserved on the
                // server, and 25 prefixes share this one.
                let small = crawlq_runtime::nats::StreamSettings {
                    replicas: 1,
                    max_bytes: 1 << 20,
                };
                tokio::spawn(async move {
                    crawlq_runtime::nats::provision_streams(&js, &topo, &small).await
                })
            })
            .collect();
        for r in racers {
            r.await.unwrap().expect("every racer provisions");
        }
    }
}

#[tokio::test]
async fn provisioning_twice_changes_nothing() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client);
    let topo = crawlq_runtime::Topology::new(prefix.clone());
    use crawlq_runtime::nats::{ensure_consumer, provision_streams, ConsumerSettings, Provisioned};
    let first = provision_streams(
        &js,
        &topo,
        &crawlq_runtime::nats::StreamSettings::replicas(1),
    )
    .await
    .unwrap();
    assert!(
        first.iter().all(|(_, p)| *p == Provisioned::Created),
        "{first:?}"
    );
    let second = provision_streams(
        &js,
        &topo,
        &crawlq_runtime::nats::StreamSettings::replicas(1),
    )
    .await
    .unwrap();
    assert!(
        second.iter().all(|(_, p)| *p == Provisioned::Unchanged),
        "{second:?}"
    );

    let settings = ConsumerSettings {
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 64,
    };
    let (_, c1) = ensure_consumer(&js, &topo, Stage::Storage, &settings)
        .await
        .unwrap();
    let (_, c2) = ensure_consumer(&js, &topo, Stage::Storage, &settings)
        .await
        .unwrap();
    assert_eq!((c1, c2), (Provisioned::Created, Provisioned::Unchanged));
    let changed = ConsumerSettings {
        ack_wait: Duration::from_secs(45),
        max_ack_pending: 64,
    };
    let (_, c3) = ensure_consumer(&js, &topo, Stage::Storage, &changed)
        .await
        .unwrap();
    assert_eq!(c3, Provisioned::Updated);
}

#[tokio::test]
async fn a_full_work_stream_refuses_new_messages_and_limits_are_reconciled() {
    use crawlq_runtime::nats::{is_stream_full, provision_streams, Provisioned, StreamSettings};
    let nats = NatsServer::start().await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let topo = crawlq_runtime::Topology::new(unique_prefix());
    let small = StreamSettings {
        replicas: 1,
        max_bytes: 64 * 1024,
    };
    provision_streams(&js, &topo, &small).await.unwrap();
    let body = bytes::Bytes::from(vec![b'x'; 1024]);
    let mut stored = 0u64;
    let refusal = loop {
        let ack = js.publish(topo.urls(), body.clone()).await.unwrap().await;
        match ack {
            Ok(_) => stored += 1,
            Err(e) => break e.to_string(),
        }
        assert!(stored < 1000, "a 64 KiB stream took {stored} KiB");
    };
    assert!(is_stream_full(&refusal), "{refusal}");
    eprintln!("a 64 KiB intake took {stored} messages of 1 KiB, then: {refusal}");
    // Nothing already queued was dropped to make room.
    let mut urls = js.get_stream(topo.urls_stream()).await.unwrap();
    let info = urls.info().await.unwrap().clone();
    assert_eq!(info.state.messages, stored);
    assert!(stored >= 50, "{stored}");
    // A changed limit is applied to the existing streams at start.
    let bigger = StreamSettings {
        replicas: 1,
        max_bytes: 128 * 1024,
    };
    let again = provision_streams(&js, &topo, &bigger).await.unwrap();
    // Every limited stream; the schedules stream has no limit.
    let schedules = topo.schedules_stream();
    assert!(
        again
            .iter()
            .all(|(name, p)| (*p == Provisioned::Updated) != (*name == schedules)),
        "{again:?}"
    );
    let info = urls.info().await.unwrap().clone();
    assert_eq!(info.config.max_bytes, 128 * 1024);
    assert_eq!(info.config.discard, jetstream::stream::DiscardPolicy::New);
    // Three replicas on one server cannot be had: refused, saying why.
    let err = provision_streams(&js, &topo, &StreamSettings::replicas(3))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("CRAWLQ_STREAM_REPLICAS"), "{err}");
}

#[tokio::test]
async fn health_endpoints_report_readiness_and_metrics() {
    let nats = NatsServer::start().await;
    let prefix = unique_prefix();
    let stop = CancellationToken::new();
    let rt = Runtime::start(&common(&nats, &prefix, &[]), "test-http", stop.clone())
        .await
        .unwrap();
    let addr = rt.http_addr;
    let worker = tokio::spawn(rt.run_worker(Stage::Extractor, 2, TestHandler::new(&prefix)));
    let get = |path: &'static str| async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        body
    };
    assert!(get("/healthz").await.starts_with("HTTP/1.0 200"));
    assert!(
        eventually(Duration::from_secs(5), || async {
            get("/readyz").await.starts_with("HTTP/1.0 200")
        })
        .await
    );
    assert!(get("/metrics").await.contains("crawlq_nats_connected"));
    stop.cancel();
    worker.await.unwrap().unwrap();
}
