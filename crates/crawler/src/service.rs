//! The crawler stage's wiring: open the store and the KV buckets, build the
//! handler, run the worker. What happens to one message is in
//! [`crate::handler`].

use std::time::Duration;

use crawlq_runtime::http::Readiness;
use crawlq_runtime::service::ExtraConsumer;
use crawlq_runtime::{Runtime, Stage};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::handler::{Buckets, CrawlHandler};
use crate::metrics as m;
use crate::politeness::SharedHosts;

/// Runs the crawler until `stop` fires.
pub async fn run(config: Config, stop: CancellationToken) -> anyhow::Result<()> {
    let store = config.store.open()?;
    let rt = Runtime::start(&config.common, "crawlq-crawler", stop).await?;
    // After Runtime::start, which installs the recorder these register with.
    m::describe();
    let replicas = usize::from(config.common.nats.stream_replicas);
    let bucket = |purpose: &str, max_age: Duration| {
        let (js, name) = (rt.js.clone(), rt.topology.bucket(purpose));
        async move { crawlq_runtime::nats::ensure_kv(&js, &name, max_age, replicas).await }
    };
    let buckets = Buckets {
        robots: bucket("robots", config.robots_ttl).await?,
        seen: bucket("seen", config.duplicate_window.max(Duration::from_secs(1))).await?,
        validators: bucket("validators", Duration::from_secs(90 * 86_400)).await?,
        feeds: bucket(crate::watch::FEEDS_BUCKET, Duration::ZERO).await?,
        hosts: SharedHosts::open(rt.js.clone(), &rt.topology.bucket("hosts"), replicas).await?,
    };
    if let Some(path) = &config.feeds_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("CRAWLQ_FEEDS_FILE {}: {e}", path.display()))?;
        let lines = crate::watch::parse_feeds_file(&text, Duration::from_secs(3600))
            .map_err(|e| anyhow::anyhow!("CRAWLQ_FEEDS_FILE {}: {e}", path.display()))?;
        let synced = crate::watch::sync_feeds(
            &rt.js,
            &rt.topology,
            &buckets.feeds,
            &lines,
            &config.strip_params,
        )
        .await
        .map_err(|e| anyhow::anyhow!("syncing feeds from {}: {e}", path.display()))?;
        tracing::info!(file = %path.display(), feeds = lines.len(), added = synced.added.len(),
            updated = synced.updated.len(), removed = synced.removed.len(), "feeds file applied");
    }
    let handler = CrawlHandler::new(
        &config,
        store,
        rt.topology.clone(),
        buckets,
        crawlq_runtime::nats::max_payload(&rt.client),
    )?;
    // Due checks (feed polls, revisits) yield to fresh URLs: they are
    // pulled only while the intake has no backlog.
    let gate = Readiness::default();
    gate.set_failed(crate::watch::CHECK_INTAKE, "not sampled yet");
    crate::watch::watch_schedules(&rt, gate.clone());
    let due = ExtraConsumer {
        stream: rt.topology.schedules_stream(),
        name: rt.topology.due_consumer(),
        description: "crawlq due checks: feed polls and article revisits".into(),
        subjects: vec![rt.topology.due()],
        concurrency: config.due_concurrency,
        gate,
        label: "crawler_due",
    };
    rt.run_workers(Stage::Crawler, 512, handler, Some(due))
        .await?;
    Ok(())
}
