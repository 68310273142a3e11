//! The HTTP listener: `/metrics`, `/healthz` and `/readyz`.
//!
//! `/healthz` answers 200 while the process runs. `/readyz` answers 200
//! only when every readiness check passes (NATS connected, streams ready,
//! and whatever the service adds, such as its object store), else 503 with
//! the failing checks listed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// Named readiness checks; ready when all are true.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, Result<(), String>>>>,
}

impl Readiness {
    /// Marks `check` as passing.
    pub fn set_ok(&self, check: &'static str) {
        self.lock().insert(check, Ok(()));
    }

    /// Marks `check` as failing with `why`.
    pub fn set_failed(&self, check: &'static str, why: impl Into<String>) {
        self.lock().insert(check, Err(why.into()));
    }

    /// Ready when at least one check exists and all pass.
    pub fn is_ready(&self) -> bool {
        let checks = self.lock();
        !checks.is_empty() && checks.values().all(|c| c.is_ok())
    }

    /// One line per check, `name: ok` or `name: reason`.
    pub fn report(&self) -> String {
        self.lock()
            .iter()
            .map(|(name, c)| match c {
                Ok(()) => format!("{name}: ok\n"),
                Err(why) => format!("{name}: {why}\n"),
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Result<(), String>>> {
        self.checks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone)]
struct AppState {
    metrics: PrometheusHandle,
    readiness: Readiness,
}

/// Binds `addr` and serves until `stop` is cancelled. Returns the bound
/// address (useful with port 0) once listening.
pub async fn serve(
    addr: SocketAddr,
    metrics: PrometheusHandle,
    readiness: Readiness,
    stop: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(AppState { metrics, readiness });
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "http listener failed");
        }
    });
    tracing::info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    Ok((bound, task))
}

async fn render_metrics(State(s): State<AppState>) -> ([(&'static str, &'static str); 1], String) {
    (
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn ready(State(s): State<AppState>) -> (StatusCode, String) {
    let status = if s.readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, s.readiness.report())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_needs_every_check() {
        let r = Readiness::default();
        assert!(!r.is_ready(), "no checks yet means not ready");
        r.set_ok("nats");
        assert!(r.is_ready());
        r.set_failed("store", "access denied");
        assert!(!r.is_ready());
        assert!(r.report().contains("store: access denied"));
        r.set_ok("store");
        assert!(r.is_ready());
    }
}
