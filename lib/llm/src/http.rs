//! The OpenAI-compatible HTTP service (axum), wire-compatible with Dynamo 1.6.1's frontend:
//! `POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`,
//! `GET /v1/models/{id}` (slashes allowed), `GET /v1/models/{id}/ready`, `GET /health`,
//! `GET /live`, `GET /metrics`, a JSON 404 fallback, and Dynamo's 405/413/415 answers.
//!
//! Streaming answers are SSE (a role-first chunk, content chunks, a final chunk with
//! `finish_reason`, the optional usage chunk, `data: [DONE]`); a failure after the stream
//! started becomes an SSE error event followed by `[DONE]`. Unary answers are folded from the
//! same event stream. A client that disconnects kills the request, which sends `kill` to the
//! worker, and is counted in `disconnected_clients` and `model_cancellation_total`.

mod extra_fields;
mod metrics;
mod openai;
mod responses;
mod routes;
mod self_wake;
mod server;
mod sse;

use std::future::Future;
use std::sync::Arc;

pub use metrics::{DEFAULT_METRICS_PREFIX, Metrics};
use stator_protocols::openai::ValidationOptions;

use crate::model_manager::ModelManager;

/// Default of `DYN_HTTP_BODY_LIMIT_MB`.
pub const DEFAULT_BODY_LIMIT_MB: u64 = 45;

/// Settings of the HTTP service.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest accepted request body in MiB (`DYN_HTTP_BODY_LIMIT_MB`).
    pub body_limit_mb: u64,
    /// Metric name prefix (`--metrics-prefix`, default `dynamo_frontend`).
    pub metrics_prefix: String,
    /// Request validation settings (`DYN_IGNORE_OPENAI_FE_UNSUPPORTED_FIELDS`).
    pub validation: ValidationOptions,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_mb: DEFAULT_BODY_LIMIT_MB,
            metrics_prefix: DEFAULT_METRICS_PREFIX.to_owned(),
            validation: ValidationOptions::default(),
        }
    }
}

/// Errors starting the HTTP service.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// A metric could not be registered (e.g. an invalid prefix).
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Binding or serving failed.
    #[error("HTTP server error: {0}")]
    Io(#[from] std::io::Error),
}

/// State shared by every handler.
pub(crate) struct AppState {
    pub(crate) manager: ModelManager,
    pub(crate) metrics: Metrics,
    pub(crate) body_limit_mb: u64,
    pub(crate) validation: ValidationOptions,
}

/// The HTTP front of a [`ModelManager`].
pub struct HttpService {
    state: Arc<AppState>,
}

impl HttpService {
    /// A service answering for the models of `manager`.
    pub fn new(manager: ModelManager, config: &HttpConfig) -> Result<Self, HttpError> {
        Ok(Self {
            state: Arc::new(AppState {
                manager,
                metrics: Metrics::new(&config.metrics_prefix)?,
                body_limit_mb: config.body_limit_mb,
                validation: config.validation,
            }),
        })
    }

    /// The frontend's metrics (also served at `/metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The axum router, for embedding or testing.
    pub fn router(&self) -> axum::Router {
        routes::router(Arc::clone(&self.state))
    }

    /// Serves on `listener` until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HttpError> {
        server::serve(listener, self.router(), shutdown).await;
        Ok(())
    }
}
