//! The consumer loop every stage runs.
//!
//! It pulls from a stage's durable consumer with bounded concurrency and
//! hands each message to a [`Handler`]. What happens next is fixed, so no
//! message is ever lost:
//!
//! 1. success: publish every result, await each PubAck, then ack the input;
//! 2. retryable error: nak with the handler's delay or exponential backoff;
//! 3. permanent error, or a retryable one on the last allowed delivery:
//!    publish a [`DeadLetter`], await its PubAck, then terminate the input.
//!
//! Messages are handled in their own tasks, so a slow one never holds up
//! the others; long handlers keep their message alive with in-progress
//! acks. On shutdown the loop stops pulling, lets in-flight work finish
//! within the grace period, and returns.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::PullConsumer, AckKind};
use async_nats::HeaderMap;
use bytes::Bytes;
use crawlq_proto::v1::DeadLetter;
use crawlq_proto::CONTENT_TYPE_PROTOBUF;
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clip;
use crate::error::{Classify, Disposition};
use crate::http::Readiness;
use crate::metrics as m;
use crate::topology::{Stage, Topology};

/// Header carrying the crawl request id along the pipeline, so a stored
/// event can be matched to the submission that caused it.
pub const REQUEST_ID_HEADER: &str = "Crawlq-Request-Id";

/// One message as a handler sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Subject it was published to.
    pub subject: String,
    /// Its headers, if any.
    pub headers: Option<HeaderMap>,
    /// Its body.
    pub payload: Bytes,
    /// 1 on the first delivery.
    pub delivered: u32,
    /// Position in the stream; unique per message.
    pub stream_sequence: u64,
}

impl Delivery {
    /// A header value, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.as_ref()?.get(name).map(|v| v.as_str())
    }

    /// Is the body marked as protobuf?
    pub fn is_protobuf(&self) -> bool {
        self.header("Content-Type")
            .is_some_and(|v| v.eq_ignore_ascii_case(CONTENT_TYPE_PROTOBUF))
    }
}

/// A message a handler wants published before its input is acked.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Destination subject.
    pub subject: String,
    /// Headers (may be empty).
    pub headers: HeaderMap,
    /// Body.
    pub payload: Bytes,
}

impl Outgoing {
    /// A protobuf message, with its Content-Type header.
    pub fn protobuf(subject: impl Into<String>, msg: &impl crawlq_proto::Message) -> Outgoing {
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", CONTENT_TYPE_PROTOBUF);
        Outgoing {
            subject: subject.into(),
            headers,
            payload: Bytes::from(msg.encode_to_vec()),
        }
    }

    /// Sets the request-id header (see [`REQUEST_ID_HEADER`]).
    pub fn with_request_id(mut self, id: &str) -> Outgoing {
        if !id.is_empty() {
            self.headers.insert(REQUEST_ID_HEADER, id);
        }
        self
    }

    /// Sets `Nats-Msg-Id`, so a republish after a crash is dropped by the
    /// server as a duplicate within the stream's duplicate window.
    pub fn with_msg_id(mut self, id: impl AsRef<str>) -> Outgoing {
        self.headers.insert("Nats-Msg-Id", id.as_ref());
        self
    }
}

/// What a dead letter should say about the message, when the handler can tell.
#[derive(Debug, Clone, Default)]
pub struct Described {
    /// URL concerned.
    pub url: String,
    /// Request id concerned.
    pub request_id: String,
}

/// A stage's message handler.
pub trait Handler: Send + Sync + 'static {
    /// The stage's error type; its variants decide retry versus dead-letter.
    type Error: Classify + std::fmt::Display + Send + 'static;

    /// Handles one message and returns what to publish.
    fn handle(
        &self,
        delivery: &Delivery,
    ) -> impl Future<Output = Result<Vec<Outgoing>, Self::Error>> + Send;

    /// Extra deliveries a message may use up by being deferred before it is
    /// treated as poison. Handlers that never defer keep the default.
    fn defer_allowance(&self) -> u32 {
        0
    }

    /// URL and request id of a message, for its dead letter.
    fn describe(&self, _delivery: &Delivery) -> Described {
        Described::default()
    }
}

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
    /// Retry delays.
    pub backoff: Backoff,
    /// How long one pull request waits for messages.
    pub pull_expires: Duration,
    /// Time in-flight work gets to finish once `stop` fires.
    pub shutdown_grace: Duration,
    /// The server's largest message, which dead letters must fit in.
    pub max_payload: usize,
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
                tracing::warn!(stage, why = %gate.report(), "not ready; pausing pulls");
                paused = true;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => continue 'pull,
                _ = stop.cancelled() => break 'pull,
            }
        }
        if paused {
            tracing::info!(stage, "ready again; resuming pulls");
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
                    tasks.spawn(async move {
                        process(&js, &cfg, handler.as_ref(), msg).await;
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
    if delivery.delivered > cfg.max_deliveries + handler.defer_allowance() {
        // Earlier deliveries never finished (crash, hang): stop the loop here.
        let why = format!(
            "delivered {} times without finishing; the worker crashed or timed out each time",
            delivery.delivered
        );
        dead_letter(
            js,
            cfg,
            handler,
            &msg,
            &stream,
            &delivery,
            "max_deliveries",
            &why,
        )
        .await;
        return;
    }

    let in_flight = metrics::gauge!(m::WORKER_IN_FLIGHT, "stage" => stage);
    in_flight.increment(1.0);
    let started = Instant::now();
    let result = with_progress(&msg, cfg.ack_wait, handler.handle(&delivery)).await;
    metrics::histogram!(m::WORKER_HANDLE_SECONDS, "stage" => stage)
        .record(started.elapsed().as_secs_f64());
    in_flight.decrement(1.0);

    match result {
        Ok(outgoing) => {
            match publish_all(js, outgoing).await {
                Ok(n) => {
                    metrics::counter!(m::WORKER_PUBLISHED, "stage" => stage).increment(n);
                    match msg.double_ack().await {
                    Ok(()) => metrics::counter!(m::WORKER_MESSAGES, "stage" => stage, "outcome" => "ok").increment(1),
                    Err(e) => tracing::warn!(stage, error = %e, "ack failed; the message will be redelivered"),
                }
                }
                Err(e) => {
                    tracing::warn!(stage, error = %e, "publishing results failed; retrying");
                    nak(
                        cfg,
                        &msg,
                        cfg.backoff.delay(delivery.delivered),
                        NakKind::Retry,
                    )
                    .await;
                }
            }
        }
        Err(err) => match err.disposition() {
            Disposition::Retry(after) if delivery.delivered < cfg.max_deliveries => {
                let delay = after.unwrap_or_else(|| cfg.backoff.delay(delivery.delivered));
                tracing::info!(stage, reason = err.reason(), error = %err, delivered = delivery.delivered,
                    retry_in = ?delay, "retryable failure");
                nak(cfg, &msg, delay, NakKind::Retry).await;
            }
            Disposition::Defer(delay) => {
                tracing::debug!(stage, reason = err.reason(), retry_in = ?delay, "deferred");
                nak(cfg, &msg, delay, NakKind::Deferred).await;
            }
            disposition => {
                let why = match disposition {
                    Disposition::Retry(_) => {
                        format!("gave up after {} deliveries: {err}", delivery.delivered)
                    }
                    _ => err.to_string(),
                };
                dead_letter(
                    js,
                    cfg,
                    handler,
                    &msg,
                    &stream,
                    &delivery,
                    err.reason(),
                    &why,
                )
                .await;
            }
        },
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

/// PubAcks one handler leaves pending before awaiting them. The client
/// blocks every publish once 5,000 are pending across the connection, so
/// handlers that each held thousands (a sitemap expanding into 50,000
/// requests, several at once) could block each other forever.
const ACK_WINDOW: usize = 128;

/// Publishes every message and awaits every PubAck, at most
/// [`ACK_WINDOW`] in flight.
pub async fn publish_all(js: &jetstream::Context, outgoing: Vec<Outgoing>) -> Result<u64, String> {
    let n = outgoing.len() as u64;
    let mut acks = Vec::with_capacity(outgoing.len().min(ACK_WINDOW));
    for out in outgoing {
        let ack = js
            .publish_with_headers(out.subject, out.headers, out.payload)
            .await
            .map_err(|e| e.to_string())?;
        acks.push(ack);
        if acks.len() >= ACK_WINDOW {
            for ack in acks.drain(..) {
                ack.await.map_err(|e| e.to_string())?;
            }
        }
    }
    for ack in acks {
        ack.await.map_err(|e| e.to_string())?;
    }
    Ok(n)
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
    let outcome = match kind {
        NakKind::Retry => {
            metrics::counter!(format!("crawlq_{stage}_retries_total")).increment(1);
            "retry"
        }
        NakKind::Deferred => "deferred",
    };
    metrics::counter!(m::WORKER_MESSAGES, "stage" => stage, "outcome" => outcome).increment(1);
    if let Err(e) = msg.ack_with(AckKind::Nak(Some(delay))).await {
        tracing::warn!(error = %e, "nak failed; the message will be redelivered after the ack wait");
    }
}

/// Publishes a dead letter, awaits its PubAck, then terminates the input.
/// If the dead letter cannot be published, the input is nak'ed instead, so
/// it is never dropped.
#[allow(clippy::too_many_arguments)]
async fn dead_letter<H: Handler>(
    js: &jetstream::Context,
    cfg: &WorkerConfig,
    handler: &H,
    msg: &jetstream::Message,
    stream: &str,
    delivery: &Delivery,
    reason: &'static str,
    error: &str,
) {
    let stage = cfg.stage.as_str();
    let described = handler.describe(delivery);
    let mut letter = DeadLetter {
        stage: stage.to_string(),
        reason: reason.to_string(),
        error: clip(error, 4096),
        delivery_count: delivery.delivered,
        original_subject: delivery.subject.clone(),
        headers: delivery
            .headers
            .iter()
            .flat_map(|h| h.iter())
            .filter(|(k, _)| !k.to_string().eq_ignore_ascii_case("Nats-Msg-Id"))
            .filter_map(|(k, v)| Some((k.to_string(), v.first()?.to_string())))
            .collect(),
        payload: delivery.payload.to_vec(),
        failed_at: crate::now_ms(),
        url: clip(&described.url, 2048),
        request_id: clip(&described.request_id, 256),
    };
    // The letter must fit in one NATS message, or it could never be
    // published and the message would be retried forever: a payload that
    // left no room is cut, and the error says so.
    let overhead = crawlq_proto::Message::encoded_len(&letter) - letter.payload.len();
    let room = cfg.max_payload.saturating_sub(overhead + 1024);
    if letter.payload.len() > room {
        let full = letter.payload.len();
        letter.payload.truncate(room);
        letter.error = format!(
            "{} (payload cut from {full} to {room} bytes to fit the dead-letter stream)",
            letter.error
        );
    }
    // One dead letter per stream message, even if this runs twice.
    let out = Outgoing::protobuf(cfg.topology.dlq(cfg.stage), &letter)
        .with_msg_id(format!("dlq:{stream}:{}", delivery.stream_sequence));
    match publish_all(js, vec![out]).await {
        Ok(_) => {
            tracing::warn!(stage, reason, url = %described.url, error, "dead-lettered");
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
}
