//! The extractor stage's wiring: load the site rules, open the store,
//! build the handler, run the worker. What happens to one page is in
//! [`crate::handler`].

use crawlq_runtime::{Runtime, Stage};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::extract::Extractor;
use crate::handler::ExtractHandler;
use crate::metrics as m;
use crate::rules::Rules;

/// Runs the extractor until `stop` fires.
pub async fn run(config: Config, stop: CancellationToken) -> anyhow::Result<()> {
    let mut extractor = Extractor {
        keep_listings: config.keep_listings,
        ..Extractor::default()
    };
    if let Some(path) = &config.rules_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("CRAWLQ_RULES_FILE {}: {e}", path.display()))?;
        extractor.rules = Rules::with_extra(&text)?;
    }
    let store = config.store.open()?;
    let rt = Runtime::start(&config.common, "crawlq-extractor", stop).await?;
    // After Runtime::start, which installs the recorder these register with.
    m::describe();
    let handler = ExtractHandler::new(
        extractor,
        store,
        rt.topology.clone(),
        &config,
        crawlq_runtime::nats::max_payload(&rt.client),
    );
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    rt.run_worker(Stage::Extractor, cores * 4, handler).await?;
    Ok(())
}
