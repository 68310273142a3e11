//! Start-up and shutdown of a long-running stage, shared by all three.
//!
//! [`Runtime::start`] sets up logs, metrics and the HTTP listener, then
//! connects to NATS and provisions the streams, retrying with backoff while
//! `/readyz` says why it is not ready (it never crash-loops). The service
//! builds its handler from the runtime's connection, then calls
//! [`Runtime::run_worker`], which returns after a graceful drain.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;

use crate::config::CommonArgs;
use crate::error::Error;
use crate::handler::Handler;
use crate::http::{self, Readiness};
use crate::nats::{self, ConsumerSettings};
use crate::topology::{Stage, Topology};
use crate::worker::{self, Backoff, WorkerConfig};

/// Readiness check name of the NATS connection.
pub const CHECK_NATS: &str = "nats";
/// Readiness check name of the streams and consumer.
pub const CHECK_STREAMS: &str = "streams";

/// A connected, provisioned process, ready to run a stage.
pub struct Runtime {
    /// NATS connection.
    pub client: async_nats::Client,
    /// JetStream context.
    pub js: jetstream::Context,
    /// Subject and stream names.
    pub topology: Topology,
    /// `/readyz` checks; services add their own.
    pub readiness: Readiness,
    /// Cancelled on shutdown.
    pub stop: CancellationToken,
    /// Address the HTTP listener is bound to.
    pub http_addr: SocketAddr,
    common: CommonArgs,
    http_stop: CancellationToken,
    http_task: tokio::task::JoinHandle<()>,
}

impl Runtime {
    /// Starts logs, metrics, HTTP and NATS for a process named `name`.
    /// Returns `Err` only if `stop` fires before NATS is ready or the
    /// listener cannot bind.
    pub async fn start(
        common: &CommonArgs,
        name: &str,
        stop: CancellationToken,
    ) -> Result<Runtime, Error> {
        crate::logging::init(common.log_format);
        let handle = crate::metrics::install();
        let readiness = Readiness::default();
        readiness.set_failed(CHECK_NATS, "connecting");
        readiness.set_failed(CHECK_STREAMS, "not provisioned yet");
        let http_stop = CancellationToken::new();
        let (http_addr, http_task) = http::serve(
            common.metrics_addr,
            handle,
            readiness.clone(),
            http_stop.clone(),
        )
        .await?;

        let topology = Topology::new(common.nats.subject_prefix.clone());
        let client = tokio::select! {
            c = nats::connect(&common.nats, name) => c?,
            _ = stop.cancelled() => return Err(Error::Connect("stopped before connecting".into())),
        };
        let js = jetstream::new(client.clone());
        let mut delay = Duration::from_millis(250);
        loop {
            match nats::provision_streams(&js, &topology, &common.nats.streams()).await {
                Ok(_) => {
                    // The server answered, so its INFO (and version) is known.
                    nats::check_server_version(&client.server_info().version)?;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "cannot provision streams yet");
                    readiness.set_failed(CHECK_STREAMS, e.to_string());
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => delay = (delay * 2).min(Duration::from_secs(10)),
                _ = stop.cancelled() => return Err(Error::Connect("stopped before streams were ready".into())),
            }
        }
        watch_connection(client.clone(), readiness.clone(), stop.clone());
        Ok(Runtime {
            client,
            js,
            topology,
            readiness,
            stop,
            http_addr,
            common: common.clone(),
            http_stop,
            http_task,
        })
    }

    /// Ensures `stage`'s consumer and runs its worker loop until shutdown,
    /// then drains: in-flight work, NATS, then the HTTP listener.
    pub async fn run_worker<H: Handler>(
        self,
        stage: Stage,
        default_concurrency: usize,
        handler: H,
    ) -> Result<(), Error> {
        self.run_workers(stage, default_concurrency, handler, None)
            .await
    }

    /// As [`Runtime::run_worker`], with a second consumer whose messages the
    /// same handler serves (the crawler's due checks), pulled only while
    /// its own gate is ready.
    pub async fn run_workers<H: Handler>(
        self,
        stage: Stage,
        default_concurrency: usize,
        handler: H,
        extra: Option<ExtraConsumer>,
    ) -> Result<(), Error> {
        let concurrency = self
            .common
            .concurrency
            .map(|c| c as usize)
            .unwrap_or(default_concurrency);
        let settings = ConsumerSettings {
            ack_wait: self.common.ack_wait,
            max_ack_pending: (concurrency as i64 * 2).max(64),
        };
        let (consumer, _) =
            nats::ensure_consumer(&self.js, &self.topology, stage, &settings).await?;
        let extra = match extra {
            Some(x) => {
                let settings = ConsumerSettings {
                    ack_wait: self.common.ack_wait,
                    max_ack_pending: (x.concurrency as i64 * 2).max(64),
                };
                let (c, _) = nats::ensure_consumer_on(
                    &self.js,
                    &x.stream,
                    &x.name,
                    &x.description,
                    x.subjects.clone(),
                    &settings,
                )
                .await?;
                Some((x, c))
            }
            None => None,
        };
        self.readiness.set_ok(CHECK_STREAMS);
        watch_lag(consumer.clone(), stage.as_str(), self.stop.clone());
        let cfg = WorkerConfig {
            stage,
            topology: self.topology.clone(),
            concurrency,
            max_deliveries: self.common.max_deliveries,
            ack_wait: self.common.ack_wait,
            outage_patience: self.common.outage_patience,
            backoff: Backoff {
                base: self.common.retry_base_delay,
                max: self.common.retry_max_delay,
            },
            pull_expires: Duration::from_secs(2),
            shutdown_grace: self.common.shutdown_grace,
            max_payload: nats::max_payload(&self.client),
            yields: false,
        };
        let handler = Arc::new(handler);
        let main = worker::run(
            self.js.clone(),
            consumer,
            cfg.clone(),
            handler.clone(),
            self.readiness.clone(),
            self.stop.clone(),
        );
        match extra {
            Some((x, c)) => {
                watch_lag(c.clone(), x.label, self.stop.clone());
                let cfg = WorkerConfig {
                    concurrency: x.concurrency,
                    yields: true,
                    ..cfg
                };
                let side = worker::run(self.js.clone(), c, cfg, handler, x.gate, self.stop.clone());
                futures::future::join(main, side).await;
            }
            None => main.await,
        }
        self.readiness.set_failed(CHECK_STREAMS, "shutting down");
        if let Err(e) = self.client.drain().await {
            tracing::warn!(error = %e, "nats drain failed");
        }
        self.http_stop.cancel();
        let _ = self.http_task.await;
        Ok(())
    }
}

/// A second consumer for [`Runtime::run_workers`].
#[derive(Clone)]
pub struct ExtraConsumer {
    /// Stream it reads.
    pub stream: String,
    /// Durable name.
    pub name: String,
    /// Description shown by the server.
    pub description: String,
    /// Subjects it filters on.
    pub subjects: Vec<String>,
    /// Messages handled at once.
    pub concurrency: usize,
    /// Pulls only while this is ready.
    pub gate: Readiness,
    /// `stage` label of its lag gauges.
    pub label: &'static str,
}

/// Publishes the consumer's backlog as gauges, so dashboards, alerts and
/// autoscalers read lag from the service itself as well as from NATS.
fn watch_lag(
    consumer: jetstream::consumer::PullConsumer,
    label: &'static str,
    stop: CancellationToken,
) {
    every(LAG_INTERVAL, stop, move || {
        let consumer = consumer.clone();
        async move {
            match consumer.get_info().await {
                Ok(info) => {
                    metrics::gauge!(crate::metrics::CONSUMER_PENDING, "stage" => label)
                        .set(info.num_pending as f64);
                    metrics::gauge!(crate::metrics::CONSUMER_ACK_PENDING, "stage" => label)
                        .set(info.num_ack_pending as f64);
                }
                Err(e) => tracing::debug!(stage = label, error = %e, "consumer info failed"),
            }
        }
    });
}

/// How often [`watch_lag`] samples the consumer.
const LAG_INTERVAL: Duration = Duration::from_secs(15);

/// Runs `tick` now and then every `period` on a task of its own, until
/// `stop` fires.
pub fn every<F, Fut>(period: Duration, stop: CancellationToken, mut tick: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            tick().await;
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stop.cancelled() => return,
            }
        }
    });
}

/// Keeps the `nats` readiness check in step with the connection state.
fn watch_connection(client: async_nats::Client, readiness: Readiness, stop: CancellationToken) {
    every(Duration::from_millis(500), stop, move || {
        if nats::is_connected(&client) {
            readiness.set_ok(CHECK_NATS);
        } else {
            readiness.set_failed(CHECK_NATS, "disconnected");
        }
        std::future::ready(())
    });
}
