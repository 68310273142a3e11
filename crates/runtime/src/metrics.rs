//! The Prometheus recorder and the metrics the runtime itself emits.
//!
//! Every metric the runtime emits is declared here with its description.
//! Services declare their own in their crate's `metrics.rs`. Labels are
//! bounded: stage names, outcome names and reason codes, never URLs or hosts.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// 1 while the NATS connection is up.
pub const NATS_CONNECTED: &str = "crawlq_nats_connected";
/// 1, labelled with the version that runs.
pub const BUILD_INFO: &str = "crawlq_build_info";
/// NATS disconnections seen.
pub const NATS_DISCONNECTS: &str = "crawlq_nats_disconnects_total";
/// Messages finished by the worker loop, by `stage` and `outcome`
/// (`ok`, `retry`, `dead_letter`).
pub const WORKER_MESSAGES: &str = "crawlq_worker_messages_total";
/// Time spent in a stage's handler, by `stage`.
pub const WORKER_HANDLE_SECONDS: &str = "crawlq_worker_handle_duration_seconds";
/// Messages being handled right now, by `stage`.
pub const WORKER_IN_FLIGHT: &str = "crawlq_worker_in_flight";
/// Dead letters published, by `stage` and `reason`.
pub const WORKER_DEAD_LETTERS: &str = "crawlq_worker_dead_letters_total";
/// Messages received that had been delivered before, by `stage`.
pub const WORKER_REDELIVERIES: &str = "crawlq_worker_redeliveries_total";
/// Results published to the next stage, by `stage`.
pub const WORKER_PUBLISHED: &str = "crawlq_worker_published_total";
/// Attempts retried in place rather than by redelivery, by `stage` and
/// `step` (`handle` after a pipeline fault, `publish` the results, `ack`
/// the input): a stream, bucket or consumer without a leader, NATS or the
/// object store away.
pub const WORKER_RETRIES_IN_PLACE: &str = "crawlq_worker_retries_in_place_total";

/// Messages in the stage's stream not yet delivered to its consumer, by
/// `stage`: the backlog. Sampled from the consumer every 15 s.
pub const CONSUMER_PENDING: &str = "crawlq_consumer_pending_messages";
/// Messages delivered to the stage's consumer and not yet acknowledged,
/// by `stage`.
pub const CONSUMER_ACK_PENDING: &str = "crawlq_consumer_ack_pending_messages";

/// Seconds one group-commit `syncfs` of a local-folder store took.
pub const STORE_SYNC_SECONDS: &str = "crawlq_store_sync_duration_seconds";
/// Writers one group-commit `syncfs` made durable (the batch size).
pub const STORE_SYNC_WAITERS: &str = "crawlq_store_sync_waiters";

/// Latency buckets (seconds) for every `*_seconds` histogram.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Size buckets (bytes) for every `*_bytes` histogram.
const BYTES_BUCKETS: &[f64] = &[
    1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global Prometheus recorder once per process and returns
/// the handle `/metrics` renders from.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_bytes".into()), BYTES_BUCKETS)
                })
                .expect("static buckets are valid")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            crate::process::describe();
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(Duration::from_secs(5));
                    crate::process::sample();
                    upkeep.run_upkeep();
                })
                .expect("spawn metrics upkeep thread");
            handle
        })
        .clone()
}

fn describe() {
    describe_gauge!(NATS_CONNECTED, "1 while the NATS connection is up");
    // 0 until the first connection is made: a pod that never reaches NATS
    // (wrong URL, NetworkPolicy, credentials) must show as disconnected.
    metrics::gauge!(NATS_CONNECTED).set(0.0);
    describe_gauge!(BUILD_INFO, "Always 1; the labels say which crawlq runs");
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    describe_counter!(NATS_DISCONNECTS, "NATS disconnections seen");
    metrics::counter!(NATS_DISCONNECTS).increment(0);
    describe_counter!(
        WORKER_MESSAGES,
        "Messages finished by the worker loop, by stage and outcome"
    );
    describe_histogram!(
        WORKER_HANDLE_SECONDS,
        Unit::Seconds,
        "Time spent handling one message, by stage"
    );
    describe_gauge!(
        WORKER_IN_FLIGHT,
        "Messages being handled right now, by stage"
    );
    describe_counter!(
        WORKER_DEAD_LETTERS,
        "Dead letters published, by stage and reason"
    );
    describe_counter!(
        WORKER_REDELIVERIES,
        "Messages received that had been delivered before, by stage"
    );
    describe_counter!(
        WORKER_PUBLISHED,
        "Results published to the next stage, by stage"
    );
    describe_counter!(
        WORKER_RETRIES_IN_PLACE,
        "Attempts retried in place rather than by redelivery, by stage and step (handle, publish, ack)"
    );
    describe_gauge!(
        CONSUMER_PENDING,
        "Messages waiting in the stage's stream, not yet delivered (consumer lag)"
    );
    describe_gauge!(
        CONSUMER_ACK_PENDING,
        "Messages delivered to the stage's consumer and not yet acknowledged"
    );
    describe_histogram!(
        STORE_SYNC_SECONDS,
        Unit::Seconds,
        "Time one group-commit syncfs of the archive folder took"
    );
    describe_histogram!(
        STORE_SYNC_WAITERS,
        "Writers made durable by one group-commit syncfs"
    );
}
