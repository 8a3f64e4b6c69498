//! The admin HTTP server: Prometheus `/metrics`, liveness `/healthz`, readiness `/readyz`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Whether the service is ready to take traffic (flipped off first on shutdown). Watchable:
/// the gRPC health service follows it (see [`crate::grpc::serve_service`]), so `/readyz`,
/// Kubernetes' gRPC probes and the smoke check all read the same truth.
#[derive(Debug, Clone)]
pub struct Readiness(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0
            .send_if_modified(|r| std::mem::replace(r, ready) != ready);
    }
    pub fn get(&self) -> bool {
        *self.0.borrow()
    }
    /// A receiver that sees every change from now on (and the current value).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<bool> {
        self.0.subscribe()
    }
}

#[derive(Clone)]
struct AdminState {
    registry: Registry,
    readiness: Readiness,
}

async fn metrics(State(state): State<AdminState>) -> Result<String, (StatusCode, String)> {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&state.registry.gather(), &mut buf)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    String::from_utf8(buf).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

async fn readyz(State(state): State<AdminState>) -> (StatusCode, &'static str) {
    if state.readiness.get() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Serves the admin endpoints on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    readiness: Readiness,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(AdminState {
            registry,
            readiness,
        });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}
