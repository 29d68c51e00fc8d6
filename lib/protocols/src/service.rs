//! Bodies of the frontend's own routes: `/health`, `/live`, `/v1/models/{id}/ready` and
//! `/busy_threshold`, in the shapes the reference frontend answers with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `GET /live`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveResponse {
    /// `live`, or `shutting_down`.
    pub status: String,
    /// `Service is live`.
    pub message: String,
}

impl LiveResponse {
    /// The 200 body: `{"status":"live","message":"Service is live"}`.
    pub fn live() -> Self {
        Self {
            status: "live".to_owned(),
            message: "Service is live".to_owned(),
        }
    }

    /// The 503 body while draining (the message wording is Stator's).
    pub fn shutting_down() -> Self {
        Self {
            status: "shutting_down".to_owned(),
            message: "Service is shutting down".to_owned(),
        }
    }
}

/// `GET /health` once the service is ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// `healthy`.
    pub status: String,
    /// Every discovered endpoint as `dyn://namespace.component.endpoint`.
    pub endpoints: Vec<String>,
    /// The discovery instance records of those endpoints (the runtime's JSON shape).
    pub instances: Vec<Value>,
}

impl HealthResponse {
    /// A healthy body listing `endpoints` and `instances`.
    pub fn healthy(endpoints: Vec<String>, instances: Vec<Value>) -> Self {
        Self {
            status: "healthy".to_owned(),
            endpoints,
            instances,
        }
    }
}

/// `GET /health` (503) before the service is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotReadyHealthResponse {
    /// `not_ready`.
    pub status: String,
    /// Start-up stage.
    pub stage: String,
    /// `Service is not ready`.
    pub message: String,
}

impl NotReadyHealthResponse {
    /// The body for start-up `stage`.
    pub fn new(stage: impl Into<String>) -> Self {
        Self {
            status: "not_ready".to_owned(),
            stage: stage.into(),
            message: "Service is not ready".to_owned(),
        }
    }
}

/// Workers of one type in a namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerTypeReadiness {
    /// Live workers of this type.
    pub workers: u32,
    /// Peer worker types this type needs (disjunction of conjunctions).
    pub needs: Vec<Vec<String>>,
}

/// Readiness of a model in one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceReadiness {
    /// All needs are met.
    pub ready: bool,
    /// Per worker type (`aggregated`, `prefill`, `decode`, ...).
    pub worker_types: BTreeMap<String, WorkerTypeReadiness>,
    /// Worker types present.
    pub present: Vec<String>,
    /// Worker types needed but absent.
    pub missing_worker_types: Vec<String>,
}

/// `GET /v1/models/{id}/ready`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelReadiness {
    /// Model name.
    pub model: String,
    /// Some namespace is ready.
    pub ready: bool,
    /// Per namespace.
    pub namespaces: BTreeMap<String, NamespaceReadiness>,
}

/// One model's busy thresholds (`GET`/`POST /busy_threshold`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BusyThreshold {
    /// Model name.
    pub model: String,
    /// Decode KV blocks above which a worker counts as busy.
    #[serde(default)]
    pub active_decode_blocks_threshold: Option<f64>,
    /// Prefill tokens above which a worker counts as busy.
    #[serde(default)]
    pub active_prefill_tokens_threshold: Option<u64>,
    /// Same, as a fraction of the batch token budget.
    #[serde(default)]
    pub active_prefill_tokens_threshold_frac: Option<f64>,
}

/// `GET /busy_threshold`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BusyThresholds {
    /// Per model.
    pub thresholds: Vec<BusyThreshold>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_the_reference_bytes() {
        assert_eq!(
            serde_json::to_string(&LiveResponse::live()).unwrap(),
            r#"{"status":"live","message":"Service is live"}"#
        );
        let mut ns = NamespaceReadiness {
            ready: true,
            present: vec!["aggregated".into()],
            ..NamespaceReadiness::default()
        };
        ns.worker_types.insert(
            "aggregated".into(),
            WorkerTypeReadiness {
                workers: 2,
                needs: vec![],
            },
        );
        let ready = ModelReadiness {
            model: "qwen2.5-0.5b-mock".into(),
            ready: true,
            namespaces: BTreeMap::from([("dynamo".to_owned(), ns)]),
        };
        assert_eq!(
            serde_json::to_string(&ready).unwrap(),
            r#"{"model":"qwen2.5-0.5b-mock","ready":true,"namespaces":{"dynamo":{"ready":true,"worker_types":{"aggregated":{"workers":2,"needs":[]}},"present":["aggregated"],"missing_worker_types":[]}}}"#
        );
        let busy = BusyThresholds {
            thresholds: vec![BusyThreshold {
                model: "m".into(),
                ..BusyThreshold::default()
            }],
        };
        assert_eq!(
            serde_json::to_string(&busy).unwrap(),
            r#"{"thresholds":[{"model":"m","active_decode_blocks_threshold":null,"active_prefill_tokens_threshold":null,"active_prefill_tokens_threshold_frac":null}]}"#
        );
        let health = HealthResponse::healthy(vec!["dyn://dynamo.backend.generate".into()], vec![]);
        assert_eq!(
            serde_json::to_string(&health).unwrap(),
            r#"{"status":"healthy","endpoints":["dyn://dynamo.backend.generate"],"instances":[]}"#
        );
        assert_eq!(NotReadyHealthResponse::new("init").status, "not_ready");
    }
}
