//! The crawler stage's wiring: open the store and the KV buckets, build the
//! handler, run the worker. What happens to one message is in
//! [`crate::handler`].

use std::time::Duration;

use crawlq_runtime::{Runtime, Stage};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::handler::CrawlHandler;
use crate::metrics as m;

/// Runs the crawler until `stop` fires.
pub async fn run(config: Config, stop: CancellationToken) -> anyhow::Result<()> {
    let store = config.store.open()?;
    let rt = Runtime::start(&config.common, "crawlq-crawler", stop).await?;
    // After Runtime::start, which installs the recorder these register with.
    m::describe();
    let replicas = usize::from(config.common.nats.stream_replicas);
    let robots_kv = crawlq_runtime::nats::ensure_kv(
        &rt.js,
        &rt.topology.bucket("robots"),
        config.robots_ttl,
        replicas,
    )
    .await?;
    let seen_kv = crawlq_runtime::nats::ensure_kv(
        &rt.js,
        &rt.topology.bucket("seen"),
        config.duplicate_window.max(Duration::from_secs(1)),
        replicas,
    )
    .await?;
    let validators_kv = crawlq_runtime::nats::ensure_kv(
        &rt.js,
        &rt.topology.bucket("validators"),
        Duration::from_secs(90 * 86_400),
        replicas,
    )
    .await?;
    let handler = CrawlHandler::new(
        &config,
        store,
        rt.topology.clone(),
        robots_kv,
        seen_kv,
        validators_kv,
        rt.client.server_info().max_payload,
    )?;
    rt.run_worker(Stage::Crawler, 512, handler).await?;
    Ok(())
}
