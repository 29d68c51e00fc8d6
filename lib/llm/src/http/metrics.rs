//! The frontend's Prometheus metrics (Dynamo's `dynamo_frontend_*` names and labels) and the
//! per-request tracker that records them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use stator_runtime::Context;

use crate::kv_routing::{KvRouterStats, render_by_model};
use crate::model_manager::ModelFacts;

/// Default metric name prefix.
pub const DEFAULT_METRICS_PREFIX: &str = "dynamo_frontend";

/// The model label of requests for a model nobody serves.
pub(crate) const UNKNOWN_MODEL: &str = "unknown_model";

/// `[0, min … max]` with `count` log-spaced bounds.
fn log_buckets(min: f64, max: f64, count: usize) -> Vec<f64> {
    let factor = (max / min).powf(1.0 / (count as f64 - 1.0));
    let mut buckets = vec![0.0];
    let mut bound = min;
    for _ in 0..count {
        buckets.push(bound);
        bound *= factor;
    }
    buckets
}

/// The metric handles of one model, resolved once so a request does no label lookups.
pub(crate) struct ModelHandles {
    active: IntGauge,
    inflight: IntGauge,
    duration: Histogram,
    input_tokens: Histogram,
    output_tokens: Histogram,
    output_tokens_total: IntCounter,
    ttft: Histogram,
    itl: Histogram,
    cached_tokens: Histogram,
}

/// A per-model gauge and how its value derives from the model's facts.
type ModelGauge = (IntGaugeVec, fn(&ModelFacts) -> i64);

/// Every frontend metric, in one registry.
pub struct Metrics {
    registry: Registry,
    requests_total: IntCounterVec,
    requests_started: IntCounterVec,
    cancellations: IntCounterVec,
    disconnected_clients: IntGauge,
    active: IntGaugeVec,
    inflight: IntGaugeVec,
    duration: HistogramVec,
    input_tokens: HistogramVec,
    output_tokens: HistogramVec,
    output_tokens_total: IntCounterVec,
    ttft: HistogramVec,
    itl: HistogramVec,
    cached_tokens: HistogramVec,
    model_gauges: Vec<ModelGauge>,
    handles: RwLock<HashMap<String, Arc<ModelHandles>>>,
    prefix: String,
}

impl Metrics {
    /// Registers the metrics with names `{prefix}_{metric}`.
    pub fn new(prefix: &str) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let name = |metric: &str| format!("{prefix}_{metric}");
        let counter = |metric: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name(metric), help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let gauge = |metric: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name(metric), help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let histogram = |metric: &str, help: &str, buckets: Vec<f64>| {
            let h = HistogramVec::new(
                HistogramOpts::new(name(metric), help).buckets(buckets),
                &["model"],
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let disconnected_clients = IntGauge::new(
            name("disconnected_clients"),
            "Number of disconnected clients",
        )?;
        registry.register(Box::new(disconnected_clients.clone()))?;
        let model_gauge = |metric: &str, help: &str| gauge(metric, help, &["model"]);
        let model_gauges: Vec<ModelGauge> = vec![
            (
                model_gauge(
                    "model_ready",
                    "Whether the frontend can route at least one inference request for the model (1 = ready, 0 = not ready)",
                )?,
                |m| i64::from(m.ready),
            ),
            (
                model_gauge(
                    "model_total_kv_blocks",
                    "Total KV cache blocks available for a worker serving the model",
                )?,
                |m| gauge_value(m.card.runtime_config.total_kv_blocks),
            ),
            (
                model_gauge(
                    "model_max_num_seqs",
                    "Maximum number of sequences for a worker serving the model",
                )?,
                |m| gauge_value(m.card.runtime_config.max_num_seqs),
            ),
            (
                model_gauge(
                    "model_max_num_batched_tokens",
                    "Maximum number of batched tokens for a worker serving the model",
                )?,
                |m| gauge_value(m.card.runtime_config.max_num_batched_tokens),
            ),
            (
                model_gauge(
                    "model_context_length",
                    "Maximum context length in tokens for a worker serving the model",
                )?,
                |m| i64::from(m.card.context_length),
            ),
            (
                model_gauge(
                    "model_kv_cache_block_size",
                    "KV cache block size in tokens for a worker serving the model",
                )?,
                |m| i64::from(m.card.kv_cache_block_size),
            ),
            (
                model_gauge(
                    "model_migration_limit",
                    "Maximum number of request migrations allowed for the model",
                )?,
                |m| i64::from(m.card.migration_limit),
            ),
        ];
        Ok(Self {
            requests_total: counter(
                "requests_total",
                "Total number of LLM requests processed",
                &["model", "endpoint", "request_type", "status", "error_type"],
            )?,
            requests_started: counter(
                "requests_started_total",
                "Total number of LLM requests accepted by the frontend handler",
                &["model", "endpoint", "request_type"],
            )?,
            cancellations: counter(
                "model_cancellation_total",
                "Total number of requests cancelled because the client disconnected",
                &["model", "endpoint", "request_type"],
            )?,
            active: gauge(
                "active_requests",
                "Number of requests currently being handled by the frontend, from HTTP handler entry to response completion",
                &["model"],
            )?,
            inflight: gauge(
                "inflight_requests",
                "Number of inflight requests",
                &["model"],
            )?,
            duration: histogram(
                "request_duration_seconds",
                "Duration of LLM requests",
                log_buckets(1.0, 512.0, 10),
            )?,
            input_tokens: histogram(
                "input_sequence_tokens",
                "Input sequence length in tokens",
                log_buckets(50.0, 128_000.0, 12),
            )?,
            output_tokens: histogram(
                "output_sequence_tokens",
                "Output sequence length in tokens",
                log_buckets(50.0, 32_000.0, 10),
            )?,
            output_tokens_total: counter(
                "output_tokens_total",
                "Total number of output tokens generated (updates in real-time)",
                &["model"],
            )?,
            ttft: histogram(
                "time_to_first_token_seconds",
                "Time to first token in seconds",
                log_buckets(0.001, 480.0, 18),
            )?,
            itl: histogram(
                "inter_token_latency_seconds",
                "Inter-token latency in seconds",
                log_buckets(0.001, 80.0, 20),
            )?,
            cached_tokens: histogram(
                "cached_tokens",
                "Number of cached tokens (prefix cache hits) per request",
                log_buckets(1.0, 128_000.0, 12),
            )?,
            disconnected_clients,
            model_gauges,
            handles: RwLock::new(HashMap::new()),
            registry,
            prefix: prefix.to_owned(),
        })
    }

    /// The registry holding every frontend metric.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition of the registry, with the model gauges refreshed from `models`,
    /// followed by the models' KV router stats (`{prefix}_kv_router_*{model="…"}`).
    pub fn render(&self, models: &[ModelFacts]) -> String {
        for (gauge, value) in &self.model_gauges {
            gauge.reset();
            for model in models {
                gauge.with_label_values(&[&model.name]).set(value(model));
            }
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        let mut text = String::from_utf8(out).unwrap_or_default();
        let kv: Vec<(&str, KvRouterStats)> = models
            .iter()
            .filter_map(|m| m.kv_router.map(|stats| (m.name.as_str(), stats)))
            .collect();
        text.push_str(&render_by_model(&self.prefix, &kv));
        text
    }

    pub(crate) fn handles(&self, model: &str) -> Arc<ModelHandles> {
        if let Some(handles) = self.handles.read().get(model) {
            return Arc::clone(handles);
        }
        let labels = [model];
        let handles = Arc::new(ModelHandles {
            active: self.active.with_label_values(&labels),
            inflight: self.inflight.with_label_values(&labels),
            duration: self.duration.with_label_values(&labels),
            input_tokens: self.input_tokens.with_label_values(&labels),
            output_tokens: self.output_tokens.with_label_values(&labels),
            output_tokens_total: self.output_tokens_total.with_label_values(&labels),
            ttft: self.ttft.with_label_values(&labels),
            itl: self.itl.with_label_values(&labels),
            cached_tokens: self.cached_tokens.with_label_values(&labels),
        });
        self.handles
            .write()
            .entry(model.to_owned())
            .or_insert(handles)
            .clone()
    }
}

fn gauge_value(value: Option<u64>) -> i64 {
    value.map_or(0, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// Records one request's metrics; what is not recorded as an outcome when it drops was a
/// client disconnect, which also kills the request.
pub(crate) struct RequestTracker {
    metrics: Arc<super::AppState>,
    handles: Arc<ModelHandles>,
    model: String,
    endpoint: &'static str,
    request_type: &'static str,
    start: Instant,
    last_token: Option<Instant>,
    output_tokens: u32,
    outcome: Option<&'static str>,
    context: Option<Context>,
}

impl RequestTracker {
    pub(crate) fn start(
        state: Arc<super::AppState>,
        model: &str,
        endpoint: &'static str,
        stream: bool,
    ) -> Self {
        let handles = state.metrics.handles(model);
        let request_type = if stream { "stream" } else { "unary" };
        state
            .metrics
            .requests_started
            .with_label_values(&[model, endpoint, request_type])
            .inc();
        handles.active.inc();
        handles.inflight.inc();
        Self {
            metrics: state,
            handles,
            model: model.to_owned(),
            endpoint,
            request_type,
            start: Instant::now(),
            last_token: None,
            output_tokens: 0,
            outcome: None,
            context: None,
        }
    }

    /// The request's context, killed if the client goes away first.
    pub(crate) fn attach(&mut self, context: Context) {
        self.context = Some(context);
    }

    /// `tokens` new output tokens arrived.
    pub(crate) fn tokens(&mut self, tokens: u32) {
        if tokens == 0 {
            return;
        }
        let now = Instant::now();
        match self.last_token {
            None => self
                .handles
                .ttft
                .observe(now.duration_since(self.start).as_secs_f64()),
            Some(last) => self
                .handles
                .itl
                .observe(now.duration_since(last).as_secs_f64() / f64::from(tokens)),
        }
        self.last_token = Some(now);
        self.output_tokens += tokens;
        self.handles.output_tokens_total.inc_by(u64::from(tokens));
    }

    /// The prompt's size.
    pub(crate) fn prompt(&self, prompt_tokens: u32) {
        self.handles.input_tokens.observe(f64::from(prompt_tokens));
    }

    /// Prompt tokens a worker served from its KV cache.
    pub(crate) fn cached(&self, cached_tokens: u32) {
        self.handles.cached_tokens.observe(f64::from(cached_tokens));
    }

    /// The request succeeded.
    pub(crate) fn success(&mut self) {
        self.outcome = Some("");
    }

    /// The request failed with `error_type` (a `requests_total` label value).
    pub(crate) fn failure(&mut self, error_type: &'static str) {
        self.outcome = Some(error_type);
    }
}

impl Drop for RequestTracker {
    fn drop(&mut self) {
        let metrics = &self.metrics.metrics;
        let labels = [self.model.as_str(), self.endpoint, self.request_type];
        let error_type = if let Some(error_type) = self.outcome {
            error_type
        } else {
            if let Some(context) = &self.context {
                context.kill();
            }
            metrics.disconnected_clients.inc();
            metrics.cancellations.with_label_values(&labels).inc();
            "cancelled"
        };
        let status = if error_type.is_empty() {
            "success"
        } else {
            "error"
        };
        metrics
            .requests_total
            .with_label_values(&[labels[0], labels[1], labels[2], status, error_type])
            .inc();
        self.handles.active.dec();
        self.handles.inflight.dec();
        self.handles
            .duration
            .observe(self.start.elapsed().as_secs_f64());
        if self.outcome == Some("") {
            self.handles
                .output_tokens
                .observe(f64::from(self.output_tokens));
        }
    }
}
