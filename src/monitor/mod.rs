//! What operators watch: Prometheus metrics and the health endpoints.
//!
//! With `--metrics-addr`, a worker serves on that address:
//! - `/metrics`: Prometheus text format (see [`counters`] for every series);
//! - `/healthz`: 200 while the process runs (Kubernetes' liveness);
//! - `/readyz`: 200 only while the worker consumes from RabbitMQ *and* Redis
//!   answers a PING; 503 otherwise (Kubernetes' readiness).
//!
//! The recorder is process-wide (the `metrics` facade), installed once; without
//! `--metrics-addr` nothing is installed and recording costs next to nothing.

pub mod counters;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::store::Store;

/// Whether this worker is connected and consuming; shared with the consumer.
#[derive(Clone, Default)]
pub struct Health {
    consuming: Arc<AtomicBool>,
}

impl Health {
    pub fn set_consuming(&self, consuming: bool) {
        self.consuming.store(consuming, Ordering::Relaxed);
    }

    pub fn consuming(&self) -> bool {
        self.consuming.load(Ordering::Relaxed)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot listen on {addr} for metrics: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install the metrics recorder: {0}")]
    Recorder(String),
}

/// The process-wide Prometheus handle, installed on first use.
fn handle() -> Result<PrometheusHandle, MonitorError> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(counters::EVENT_SECONDS.into()),
            &[
                0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ],
        )
        .map_err(|e| MonitorError::Recorder(e.to_string()))?
        .install_recorder()
        .map_err(|e| MonitorError::Recorder(e.to_string()))?;
    counters::describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

#[derive(Clone)]
struct App {
    prometheus: PrometheusHandle,
    health: Health,
    store: Store,
}

/// Binds `addr` and serves the endpoints until `shutdown`; returns the bound
/// address (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    health: Health,
    store: Store,
    shutdown: CancellationToken,
) -> Result<SocketAddr, MonitorError> {
    let prometheus = handle()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| MonitorError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| MonitorError::Bind { addr, source })?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(App {
            prometheus,
            health,
            store,
        });
    info!(addr = %bound, "Serving /metrics, /healthz and /readyz.");
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            warn!(%error, "The metrics endpoint stopped.");
        }
    });
    Ok(bound)
}

async fn metrics(State(app): State<App>) -> String {
    app.prometheus.render()
}

/// Ready while consuming and while Redis answers within a second.
async fn readyz(State(app): State<App>) -> (StatusCode, &'static str) {
    if !app.health.consuming() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not consuming from RabbitMQ\n",
        );
    }
    match tokio::time::timeout(Duration::from_secs(1), app.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "Redis does not answer\n"),
    }
}

/// Asks a worker's `/readyz` on `addr` (the container's HEALTHCHECK): Ok when
/// it answers 200 within five seconds, else what it said.
pub async fn probe_ready(addr: SocketAddr) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&raw).into_owned())
    };
    let raw = match tokio::time::timeout(Duration::from_secs(5), ask).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => return Err(format!("no worker answers on {addr}: {e}")),
        Err(_) => return Err(format!("the worker on {addr} did not answer within 5 s")),
    };
    let status = raw.split(' ').nth(1).unwrap_or_default();
    if status == "200" {
        Ok(())
    } else {
        let body = raw.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        Err(format!(
            "the worker on {addr} is not ready ({status}): {body}"
        ))
    }
}
