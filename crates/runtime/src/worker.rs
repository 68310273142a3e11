//! The consumer loop every stage runs.
//!
//! It pulls from a stage's durable consumer with bounded concurrency and
//! hands each message to a [`Handler`]. What happens next is fixed, so no
//! message is ever lost:
//!
//! 1. success: publish every result, await each PubAck, then ack the input;
//! 2. retryable error: nak with the handler's delay or exponential backoff;
//! 3. permanent error, or a retryable one on the last allowed delivery:
//!    publish a dead letter, await its PubAck, then terminate the input.
//!
//! Which of these happens is decided by the pure [`settle`] function; this
//! module only carries it out.
//!
//! Messages are handled in their own tasks, so a slow one never holds up
//! the others; long handlers keep their message alive with in-progress
//! acks. On shutdown the loop stops pulling, lets in-flight work finish
//! within the grace period, and returns.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::PullConsumer, AckKind};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dead_letter::DeadLetterBuilder;
use crate::error::{Classify, Disposition};
use crate::handler::{Delivery, Handler, Outgoing};
use crate::http::Readiness;
use crate::metrics as m;
use crate::settle::{self, Settlement};
use crate::topology::{Stage, Topology};

/// Exponential retry delays with jitter.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Delay after the first failed delivery.
    pub base: Duration,
    /// Upper bound.
    pub max: Duration,
}

impl Backoff {
    /// Delay after delivery number `delivered` failed: base·2^(n-1), capped,
    /// then ±20% jitter so retries of a burst spread out.
    pub fn delay(&self, delivered: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << delivered.saturating_sub(1).min(20));
        let capped = exp.min(self.max);
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        capped.mul_f64(jitter)
    }
}

/// Settings of one worker loop.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The stage, for subjects and metric labels.
    pub stage: Stage,
    /// Subject names.
    pub topology: Topology,
    /// Messages handled at once.
    pub concurrency: usize,
    /// Deliveries before a retryable failure is dead-lettered.
    pub max_deliveries: u32,
    /// The consumer's ack wait; in-progress acks are sent at a third of it.
    pub ack_wait: Duration,
    /// How long a pipeline failure (handling, publishing results, acking)
    /// is retried in place before the input is handed back.
    pub outage_patience: Duration,
    /// Retry delays.
    pub backoff: Backoff,
    /// How long one pull request waits for messages.
    pub pull_expires: Duration,
    /// Time in-flight work gets to finish once `stop` fires.
    pub shutdown_grace: Duration,
    /// The server's largest message, which dead letters must fit in.
    pub max_payload: usize,
    /// This loop yields to another (its gate closes whenever the other has
    /// a backlog): pausing is routine, not worth a warning.
    pub yields: bool,
}

/// Runs the loop, pulling only while `gate` is ready, until `stop` is
/// cancelled and in-flight work is done (or the grace period ran out;
/// unfinished messages are then redelivered).
pub async fn run<H: Handler>(
    js: jetstream::Context,
    consumer: PullConsumer,
    cfg: WorkerConfig,
    handler: Arc<H>,
    gate: Readiness,
    stop: CancellationToken,
) {
    let cfg = Arc::new(cfg);
    let stage = cfg.stage.as_str();
    let permits = Arc::new(Semaphore::new(cfg.concurrency));
    let tasks = TaskTracker::new();
    // Every outcome starts at zero, so ratios over it exist from the start.
    for outcome in ["ok", "retry", "deferred", "dead_letter"] {
        metrics::counter!(m::WORKER_MESSAGES, "stage" => stage, "outcome" => outcome).increment(0);
    }
    for step in ["handle", "publish", "ack"] {
        metrics::counter!(m::WORKER_RETRIES_IN_PLACE, "stage" => stage, "step" => step)
            .increment(0);
    }
    for name in [m::WORKER_REDELIVERIES, m::WORKER_PUBLISHED] {
        metrics::counter!(name, "stage" => stage).increment(0);
    }
    tracing::info!(stage, concurrency = cfg.concurrency, "worker started");
    let mut paused = false;
    'pull: loop {
        // A stage that is not ready (NATS gone, its store down) takes no
        // work: pulling would only burn deliveries on failures.
        if !gate.is_ready() {
            if !paused {
                if cfg.yields {
                    tracing::debug!(stage, why = %gate.report(), "yielding; pausing pulls");
                } else {
                    tracing::warn!(stage, why = %gate.report(), "not ready; pausing pulls");
                }
                paused = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => continue 'pull,
                _ = stop.cancelled() => break 'pull,
            }
        }
        if paused {
            if !cfg.yields {
                tracing::info!(stage, "ready again; resuming pulls");
            }
            paused = false;
        }
        let first = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = stop.cancelled() => break,
        };
        let mut held = vec![first];
        while let Ok(p) = permits.clone().try_acquire_owned() {
            held.push(p);
        }
        let batch = consumer
            .batch()
            .max_messages(held.len())
            .expires(cfg.pull_expires)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(stage, error = %e, "pull failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'pull,
                    _ = stop.cancelled() => break 'pull,
                }
            }
        };
        // Everything this pull delivers is handled, even after `stop`.
        while let Some(next) = batch.next().await {
            match next {
                Ok(msg) => {
                    let permit = held
                        .pop()
                        .expect("a pull never yields more than it asked for");
                    let (js, cfg, handler) = (js.clone(), cfg.clone(), handler.clone());
                    let stop = stop.clone();
                    tasks.spawn(async move {
                        process(&js, &cfg, handler.as_ref(), msg, &stop).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::debug!(stage, error = %e, "pull ended");
                    break;
                }
            }
        }
    }
    tasks.close();
    tracing::info!(
        stage,
        in_flight = tasks.len(),
        "stopped pulling; finishing in-flight work"
    );
    if tokio::time::timeout(cfg.shutdown_grace, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            stage,
            left = tasks.len(),
            "grace period over; unfinished messages will be redelivered"
        );
    }
    tracing::info!(stage, "worker stopped");
}

async fn process<H: Handler>(
    js: &jetstream::Context,
    cfg: &WorkerConfig,
    handler: &H,
    msg: jetstream::Message,
    stop: &CancellationToken,
) {
    let stage = cfg.stage.as_str();
    let Ok(info) = msg.info() else {
        tracing::error!(stage, subject = %msg.subject, "message without JetStream metadata; ignored");
        return;
    };
    let delivery = Delivery {
        subject: msg.subject.to_string(),
        headers: msg.headers.clone(),
        payload: msg.payload.clone(),
        delivered: u32::try_from(info.delivered).unwrap_or(u32::MAX),
        stream_sequence: info.stream_sequence,
    };
    let stream = info.stream.to_string();
    if delivery.delivered > 1 {
        metrics::counter!(m::WORKER_REDELIVERIES, "stage" => stage).increment(1);
    }
    let job = Job {
        js,
        cfg,
        handler,
        msg: &msg,
        stream: &stream,
        delivery: &delivery,
        stop,
    };
    let limit = cfg.max_deliveries + handler.defer_allowance();
    if let Some(settlement) = settle::exhausted(delivery.delivered, limit) {
        job.carry_out(settlement, Vec::new()).await;
        return;
    }

    let in_flight = metrics::gauge!(m::WORKER_IN_FLIGHT, "stage" => stage);
    in_flight.increment(1.0);
    let started = Instant::now();
    let result = job.handle_patiently().await;
    metrics::histogram!(m::WORKER_HANDLE_SECONDS, "stage" => stage)
        .record(started.elapsed().as_secs_f64());
    in_flight.decrement(1.0);

    let settlement = settle::settle(&result, delivery.delivered, cfg.max_deliveries);
    if let (Err(err), Settlement::Retry(_)) = (&result, &settlement) {
        tracing::info!(stage, reason = err.reason(), error = %err, delivered = delivery.delivered, "handler failed");
    }
    let outgoing = carry_submission(&delivery, result.unwrap_or_default());
    job.carry_out(settlement, outgoing).await;
}

/// Results carry the submission of the message they came from, except
/// scheduled ones: a check that fires days later belongs to no `submit`.
fn carry_submission(d: &Delivery, mut out: Vec<Outgoing>) -> Vec<Outgoing> {
    use crate::handler::SUBMISSION_HEADER;
    if let Some(id) = d.header(SUBMISSION_HEADER) {
        for o in &mut out {
            let scheduled = o.headers.get(crate::schedule::SCHEDULE_HEADER).is_some();
            if !scheduled && o.headers.get(SUBMISSION_HEADER).is_none() {
                o.headers.insert(SUBMISSION_HEADER, id);
            }
        }
    }
    out
}

/// One delivery being settled, with what settling it needs.
struct Job<'a, H> {
    js: &'a jetstream::Context,
    cfg: &'a WorkerConfig,
    handler: &'a H,
    msg: &'a jetstream::Message,
    stream: &'a str,
    delivery: &'a Delivery,
    stop: &'a CancellationToken,
}

impl<H: Handler> Job<'_, H> {
    /// Carries out what [`settle`] decided.
    async fn carry_out(&self, settlement: Settlement, outgoing: Vec<Outgoing>) {
        let (cfg, msg, delivery) = (self.cfg, self.msg, self.delivery);
        let stage = cfg.stage.as_str();
        match settlement {
            Settlement::Ack => match self.publish_patiently(outgoing).await {
                Ok(n) => {
                    metrics::counter!(m::WORKER_PUBLISHED, "stage" => stage).increment(n);
                    // A lost ack would redeliver work that is done.
                    let ack = self.patiently("ack", SETTLE_BACKOFF, || msg.double_ack(), |_| true);
                    match ack.await {
                        Ok(()) => metrics::counter!(m::WORKER_MESSAGES, "stage" => stage, "outcome" => "ok").increment(1),
                        Err(e) => tracing::warn!(stage, error = %e, "ack failed; the message will be redelivered"),
                    }
                }
                Err(e) => {
                    tracing::warn!(stage, error = %e, "publishing results failed; retrying");
                    nak(
                        cfg,
                        msg,
                        cfg.backoff.delay(delivery.delivered),
                        NakKind::Retry,
                    )
                    .await;
                }
            },
            Settlement::Retry(after) => {
                let delay = after.unwrap_or_else(|| cfg.backoff.delay(delivery.delivered));
                tracing::info!(stage, delivered = delivery.delivered, retry_in = ?delay, "retryable failure");
                nak(cfg, msg, delay, NakKind::Retry).await;
            }
            Settlement::Defer(delay) => {
                tracing::debug!(stage, retry_in = ?delay, "deferred");
                nak(cfg, msg, delay, NakKind::Deferred).await;
            }
            Settlement::DeadLetter { reason, error } => self.dead_letter(reason, &error).await,
        }
    }

    /// Publishes a handled message's results (or its dead letter). A
    /// failure here is the pipeline's, not the message's (a stream electing
    /// a new leader, the connection moving to another node), and handing
    /// the message back would spend one of its deliveries on each attempt:
    /// a few seconds of failover could use them all up. So it is retried in
    /// place. Messages carry ids, so a retry that repeats one the stream
    /// already has is dropped as a duplicate.
    async fn publish_patiently(&self, outgoing: Vec<Outgoing>) -> Result<u64, String> {
        let attempt = || publish_all(self.js, outgoing.clone());
        self.patiently("publish", SETTLE_BACKOFF, attempt, |_| true)
            .await
    }

    /// Runs the handler, again in place while it fails for the pipeline's
    /// own reasons ([`Classify::pipeline_fault`]: NATS, a bucket, the
    /// object store), so an outage or a leader election spends none of the
    /// message's deliveries.
    async fn handle_patiently(&self) -> Result<Vec<Outgoing>, H::Error> {
        let pipeline =
            |e: &H::Error| e.pipeline_fault() && matches!(e.disposition(), Disposition::Retry(_));
        // The stage's own retry delays: an attempt may fetch a page again.
        self.patiently(
            "handle",
            self.cfg.backoff,
            || self.handler.handle(self.delivery),
            pipeline,
        )
        .await
    }

    /// Runs `attempt` until it succeeds, fails in a way `worth_retrying`
    /// refuses, the outage patience runs out or shutdown begins, backing
    /// off between attempts and keeping the input alive with in-progress
    /// acks. `step` names it in logs and metrics.
    async fn patiently<T, E, F, Fut>(
        &self,
        step: &'static str,
        backoff: Backoff,
        mut attempt: F,
        worth_retrying: impl Fn(&E) -> bool,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let cfg = self.cfg;
        let stage = cfg.stage.as_str();
        let give_up = Instant::now() + cfg.outage_patience;
        let attempts = async {
            let mut failed = 0;
            loop {
                failed += 1;
                let err = match attempt().await {
                    Ok(v) => return Ok(v),
                    Err(e) => e,
                };
                let left = give_up.saturating_duration_since(Instant::now());
                if !worth_retrying(&err) || left.is_zero() || self.stop.is_cancelled() {
                    return Err(err);
                }
                let delay = backoff.delay(failed).min(left);
                metrics::counter!(m::WORKER_RETRIES_IN_PLACE, "stage" => stage, "step" => step)
                    .increment(1);
                tracing::info!(stage, step, error = %err, retry_in = ?delay, "failed; retrying in place");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = self.stop.cancelled() => return Err(err),
                }
            }
        };
        with_progress(self.msg, cfg.ack_wait, attempts).await
    }

    /// Publishes a dead letter, awaits its PubAck, then terminates the
    /// input. If the dead letter cannot be published, the input is nak'ed
    /// instead, so it is never dropped.
    async fn dead_letter(&self, reason: &'static str, error: &str) {
        let (cfg, msg, delivery) = (self.cfg, self.msg, self.delivery);
        let stage = cfg.stage.as_str();
        let described = self.handler.describe(delivery);
        // One dead letter per stream message, even if this runs twice.
        let out = DeadLetterBuilder::new(cfg.stage, reason, error)
            .delivery(delivery)
            .described(&described)
            .outgoing(
                &cfg.topology,
                format!("dlq:{}:{}", self.stream, delivery.stream_sequence),
                cfg.max_payload,
            );
        match self.publish_patiently(vec![out]).await {
            Ok(_) => {
                tracing::warn!(stage, reason, url = %crate::printable(&described.url), error = %crate::printable(error), "dead-lettered");
                metrics::counter!(m::WORKER_DEAD_LETTERS, "stage" => stage, "reason" => reason)
                    .increment(1);
                metrics::counter!(m::WORKER_MESSAGES, "stage" => stage, "outcome" => "dead_letter")
                    .increment(1);
                if let Err(e) = msg.double_ack_with(AckKind::Term).await {
                    tracing::warn!(stage, error = %e, "terminating a dead-lettered message failed; it may be redelivered");
                }
            }
            Err(e) => {
                tracing::error!(stage, reason, error = %e, "cannot publish dead letter; retrying the message");
                nak(
                    cfg,
                    msg,
                    cfg.backoff.delay(delivery.delivered),
                    NakKind::Retry,
                )
                .await;
            }
        }
    }
}

/// Runs `work`, sending an in-progress ack every third of the ack wait.
async fn with_progress<F: Future>(
    msg: &jetstream::Message,
    ack_wait: Duration,
    work: F,
) -> F::Output {
    let every = (ack_wait / 3).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticker.tick() => {
                if let Err(e) = msg.ack_with(AckKind::Progress).await {
                    tracing::debug!(error = %e, "in-progress ack failed");
                }
            }
        }
    }
}

/// Delays between attempts to publish results or ack, retried in place:
/// short, since a leader election takes seconds and nothing is refetched.
const SETTLE_BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(200),
    max: Duration::from_secs(5),
};

/// PubAcks one handler leaves pending before awaiting them. The client
/// blocks every publish once 5,000 are pending across the connection, so
/// handlers that each held thousands (a sitemap expanding into 50,000
/// requests, several at once) could block each other forever.
const ACK_WINDOW: usize = 128;

/// Publishes every message and awaits every PubAck, at most
/// [`ACK_WINDOW`] in flight.
pub async fn publish_all(js: &jetstream::Context, outgoing: Vec<Outgoing>) -> Result<u64, String> {
    publish_each(js, outgoing)
        .await
        .map(|acks| acks.len() as u64)
}

/// As [`publish_all`], saying for each message whether the stream dropped
/// it as a duplicate of one published within its window (`Nats-Msg-Id`).
pub async fn publish_each(
    js: &jetstream::Context,
    outgoing: Vec<Outgoing>,
) -> Result<Vec<bool>, String> {
    let mut duplicates = Vec::with_capacity(outgoing.len());
    let mut acks = Vec::with_capacity(outgoing.len().min(ACK_WINDOW));
    for out in outgoing {
        let ack = js
            .publish_with_headers(out.subject, out.headers, out.payload)
            .await
            .map_err(|e| e.to_string())?;
        acks.push(ack);
        if acks.len() >= ACK_WINDOW {
            for ack in acks.drain(..) {
                duplicates.push(ack.await.map_err(|e| e.to_string())?.duplicate);
            }
        }
    }
    for ack in acks {
        duplicates.push(ack.await.map_err(|e| e.to_string())?.duplicate);
    }
    Ok(duplicates)
}

/// Why a message is handed back.
#[derive(Clone, Copy)]
enum NakKind {
    /// A failure that spends the retry budget.
    Retry,
    /// Work that cannot start yet (a busy host); not a failure.
    Deferred,
}

/// Hands a message back to be redelivered after `delay`.
async fn nak(cfg: &WorkerConfig, msg: &jetstream::Message, delay: Duration, kind: NakKind) {
    let stage = cfg.stage.as_str();
    // Retries are `crawlq_worker_messages_total{outcome="retry"}`: the
    // stage is a label, never part of a metric's name.
    let outcome = match kind {
        NakKind::Retry => "retry",
        NakKind::Deferred => "deferred",
    };
    metrics::counter!(m::WORKER_MESSAGES, "stage" => stage, "outcome" => outcome).increment(1);
    if let Err(e) = msg.ack_with(AckKind::Nak(Some(delay))).await {
        tracing::warn!(error = %e, "nak failed; the message will be redelivered after the ack wait");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        let d1 = b.delay(1).as_secs_f64();
        let d3 = b.delay(3).as_secs_f64();
        let d9 = b.delay(9).as_secs_f64();
        assert!((0.8..=1.2).contains(&d1), "{d1}");
        assert!((3.2..=4.8).contains(&d3), "{d3}");
        assert!((8.0..=12.0).contains(&d9), "{d9}");
        assert!(b.delay(u32::MAX) <= Duration::from_secs(12));
    }

    #[test]
    fn results_carry_the_submission_but_schedules_do_not() {
        use crate::handler::SUBMISSION_HEADER;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(SUBMISSION_HEADER, "s1");
        let d = Delivery {
            subject: "p.urls".into(),
            headers: Some(headers),
            payload: bytes::Bytes::new(),
            delivered: 1,
            stream_sequence: 1,
        };
        let plain = Outgoing::protobuf("p.fetched", &crawlq_proto::v1::CrawlRequest::default());
        let mut scheduled = plain.clone();
        scheduled
            .headers
            .insert(crate::schedule::SCHEDULE_HEADER, "@at 2030-01-01T00:00:00Z");
        let own = plain.clone().with_submission("s2");
        let out = carry_submission(&d, vec![plain, scheduled, own]);
        let sub = |o: &Outgoing| o.headers.get(SUBMISSION_HEADER).map(|v| v.to_string());
        assert_eq!(sub(&out[0]).as_deref(), Some("s1"));
        assert_eq!(sub(&out[1]), None);
        assert_eq!(sub(&out[2]).as_deref(), Some("s2"));
    }
}
