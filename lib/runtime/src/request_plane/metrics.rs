//! Worker-side request metrics, with Dynamo's names and labels.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::error::StatorError;
use crate::names::EndpointId;

const LABELS: [&str; 3] = ["dynamo_namespace", "dynamo_component", "dynamo_endpoint"];

/// The `dynamo_component_*` metric families of one process, registered once per registry.
#[derive(Clone)]
pub struct WorkerMetrics {
    requests_total: IntCounterVec,
    inflight_requests: IntGaugeVec,
    request_duration_seconds: HistogramVec,
    errors_total: IntCounterVec,
}

/// The metric handles of one served endpoint.
#[derive(Clone)]
pub struct EndpointMetrics {
    pub(crate) requests_total: prometheus::IntCounter,
    pub(crate) inflight_requests: prometheus::IntGauge,
    pub(crate) request_duration_seconds: prometheus::Histogram,
    errors_total: IntCounterVec,
    labels: [String; 3],
}

impl WorkerMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, StatorError> {
        let fail =
            |e: prometheus::Error| StatorError::internal(format!("metrics registration: {e}"));
        let requests_total = IntCounterVec::new(
            Opts::new(
                "dynamo_component_requests_total",
                "Requests received by the endpoint",
            ),
            &LABELS,
        )
        .map_err(fail)?;
        let inflight_requests = IntGaugeVec::new(
            Opts::new(
                "dynamo_component_inflight_requests",
                "Requests being served",
            ),
            &LABELS,
        )
        .map_err(fail)?;
        let request_duration_seconds = HistogramVec::new(
            HistogramOpts::new(
                "dynamo_component_request_duration_seconds",
                "Time from receiving a request to the end of its response stream",
            ),
            &LABELS,
        )
        .map_err(fail)?;
        let mut error_labels = LABELS.to_vec();
        error_labels.push("error_type");
        let errors_total = IntCounterVec::new(
            Opts::new(
                "dynamo_component_errors_total",
                "Requests that failed, by error class",
            ),
            &error_labels,
        )
        .map_err(fail)?;
        registry
            .register(Box::new(requests_total.clone()))
            .map_err(fail)?;
        registry
            .register(Box::new(inflight_requests.clone()))
            .map_err(fail)?;
        registry
            .register(Box::new(request_duration_seconds.clone()))
            .map_err(fail)?;
        registry
            .register(Box::new(errors_total.clone()))
            .map_err(fail)?;
        Ok(Self {
            requests_total,
            inflight_requests,
            request_duration_seconds,
            errors_total,
        })
    }

    /// The handles for `endpoint`.
    pub fn endpoint(&self, endpoint: &EndpointId) -> EndpointMetrics {
        let labels = [
            endpoint.namespace.clone(),
            endpoint.component.clone(),
            endpoint.name.clone(),
        ];
        let values = [labels[0].as_str(), labels[1].as_str(), labels[2].as_str()];
        EndpointMetrics {
            requests_total: self.requests_total.with_label_values(&values),
            inflight_requests: self.inflight_requests.with_label_values(&values),
            request_duration_seconds: self.request_duration_seconds.with_label_values(&values),
            errors_total: self.errors_total.clone(),
            labels,
        }
    }
}

impl EndpointMetrics {
    /// Counts one failed request of `class`.
    pub(crate) fn error(&self, class: &str) {
        self.errors_total
            .with_label_values(&[&self.labels[0], &self.labels[1], &self.labels[2], class])
            .inc();
    }
}
