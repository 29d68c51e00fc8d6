//! The system status server: `/health`, `/live`, `/metrics` and self-hosted files for a
//! worker process.
//!
//! Off unless `DYN_SYSTEM_PORT` is set to a port (Dynamo's default `-1` disables it). Health
//! routes answer `{"status":"ready"|"notready","uptime":{"secs","nanos"},"endpoints":{…}}`
//! with 200 or 503; `/metrics` renders a `prometheus::Registry` in the text format;
//! `/v1/metadata/…` serves the files registered in its [`FileRoutes`].

mod files;
mod health;

pub use files::{FileRoutes, METADATA_PREFIX};
pub use health::{HealthReport, HealthState, Readiness, Uptime};

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Settings of the status server (`DYN_SYSTEM_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemStatusConfig {
    /// Interface to bind (`DYN_SYSTEM_HOST`, default `0.0.0.0`).
    pub host: String,
    /// Port (`DYN_SYSTEM_PORT`); `None` disables the server, `Some(0)` picks a free port.
    pub port: Option<u16>,
    /// Health route (`DYN_SYSTEM_HEALTH_PATH`, default `/health`).
    pub health_path: String,
    /// Liveness route (`DYN_SYSTEM_LIVE_PATH`, default `/live`).
    pub live_path: String,
    /// Initial process status (`DYN_SYSTEM_STARTING_HEALTH_STATUS`, default not ready).
    pub starting_ready: bool,
    /// Endpoints that must be ready (`DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS`).
    pub required_endpoints: Vec<String>,
}

impl Default for SystemStatusConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: None,
            health_path: "/health".into(),
            live_path: "/live".into(),
            starting_ready: false,
            required_endpoints: Vec::new(),
        }
    }
}

impl SystemStatusConfig {
    /// Reads the `DYN_SYSTEM_*` variables; unset or invalid values keep their defaults.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`SystemStatusConfig::from_env`] over any variable source.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut config = Self::default();
        if let Some(host) = lookup("DYN_SYSTEM_HOST").filter(|h| !h.is_empty()) {
            config.host = host;
        }
        // Negative (Dynamo's -1) or unparsable means disabled.
        config.port = lookup("DYN_SYSTEM_PORT").and_then(|p| p.trim().parse::<u16>().ok());
        if let Some(path) = lookup("DYN_SYSTEM_HEALTH_PATH").filter(|p| p.starts_with('/')) {
            config.health_path = path;
        }
        if let Some(path) = lookup("DYN_SYSTEM_LIVE_PATH").filter(|p| p.starts_with('/')) {
            config.live_path = path;
        }
        config.starting_ready = lookup("DYN_SYSTEM_STARTING_HEALTH_STATUS")
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("ready"));
        if let Some(list) = lookup("DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS") {
            config.required_endpoints = parse_name_list(&list);
        }
        config
    }

    /// A fresh [`HealthState`] with this configuration's policy.
    pub fn health_state(&self) -> HealthState {
        HealthState::new(self.starting_ready, self.required_endpoints.clone())
    }
}

/// Accepts a JSON array of strings (`["generate"]`) or a comma-separated list.
fn parse_name_list(value: &str) -> Vec<String> {
    serde_json::from_str::<Vec<String>>(value).unwrap_or_else(|_| {
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

#[derive(Clone)]
struct AppState {
    health: HealthState,
    registry: Registry,
}

/// A running status server; it runs until [`SystemStatusServer::shutdown`].
pub struct SystemStatusServer {
    addr: SocketAddr,
    advertised: String,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SystemStatusServer {
    /// Starts the server if `config.port` is set; `Ok(None)` when disabled.
    pub async fn start(
        config: &SystemStatusConfig,
        health: HealthState,
        registry: Registry,
        files: FileRoutes,
    ) -> std::io::Result<Option<Self>> {
        let Some(port) = config.port else {
            return Ok(None);
        };
        let listener = TcpListener::bind((config.host.as_str(), port)).await?;
        let addr = listener.local_addr()?;
        let advertised =
            crate::net::authority(&crate::net::advertised_host(&config.host), addr.port());
        let metadata = Router::new()
            .route("/v1/metadata/{*rest}", get(files::metadata_handler))
            .with_state(files);
        let app = Router::new()
            .route(&config.health_path, get(health_handler))
            .route(&config.live_path, get(health_handler))
            .route("/metrics", get(metrics_handler))
            .with_state(AppState { health, registry })
            .merge(metadata);
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = server.await {
                tracing::warn!(error = %e, "system status server stopped");
            }
        });
        tracing::info!(%addr, "system status server listening");
        Ok(Some(Self {
            addr,
            advertised,
            cancel,
            task,
        }))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `host:port` other machines reach the server at (`DYN_SYSTEM_HOST`, or this machine's
    /// outbound address when bound to all interfaces).
    pub fn advertised_authority(&self) -> &str {
        &self.advertised
    }

    /// Stops accepting and waits for open requests to finish.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "system status server task failed");
        }
    }
}

async fn health_handler(State(state): State<AppState>) -> Response {
    let report = state.health.report();
    let code = match report.status {
        Readiness::Ready => StatusCode::OK,
        Readiness::NotReady => StatusCode::SERVICE_UNAVAILABLE,
    };
    (code, axum::Json(report)).into_response()
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    let encoder = TextEncoder::new();
    let mut body = Vec::new();
    match encoder.encode(&state.registry.gather(), &mut body) {
        Ok(()) => (
            [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests;
