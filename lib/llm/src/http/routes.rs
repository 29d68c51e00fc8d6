//! The route table and the non-generation routes: models, readiness, health, metrics, 404.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use stator_protocols::ErrorBody;
use stator_protocols::openai::{ModelList, ModelObject};
use stator_protocols::service::{HealthResponse, LiveResponse};
use stator_runtime::discovery::{DiscoveryQuery, DiscoveryRecord};

use super::AppState;
use super::openai::{chat, completions, error_response, json_response};
use crate::model_manager::ModelFacts;

/// Every route of the service.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*id}", get(model_or_readiness))
        .route("/health", get(health))
        .route("/live", get(live))
        .route("/metrics", get(metrics))
        .fallback(route_not_found)
        .with_state(state)
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    json_response(
        status,
        serde_json::to_vec(value).expect("service bodies serialize to memory"),
    )
}

fn model_object(facts: &ModelFacts) -> ModelObject {
    ModelObject::new(
        facts.name.as_str(),
        facts.created,
        facts.card.context_length,
    )
}

/// `GET /v1/models`: the models that can serve now.
async fn list_models(State(state): State<Arc<AppState>>) -> Response {
    let data = state
        .manager
        .models()
        .iter()
        .filter(|m| m.ready)
        .map(model_object)
        .collect();
    json(StatusCode::OK, &ModelList::new(data))
}

/// `GET /v1/models/{id}` (ids may contain `/`) and `GET /v1/models/{id}/ready`.
async fn model_or_readiness(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let models = state.manager.models();
    if let Some(facts) = models.iter().find(|m| m.name == id) {
        return json(StatusCode::OK, &model_object(facts));
    }
    if let Some(model) = id.strip_suffix("/ready")
        && let Some(readiness) = state.manager.readiness(model)
    {
        let status = if readiness.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        return json(status, &readiness);
    }
    error_response(&ErrorBody::model_not_found())
}

/// `GET /health`: every discovered endpoint instance.
async fn health(State(state): State<Arc<AppState>>) -> Response {
    let records = state
        .manager
        .runtime()
        .discovery()
        .list(&DiscoveryQuery::AllEndpoints)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot list endpoint instances");
            Vec::new()
        });
    let mut endpoints = BTreeSet::new();
    let mut instances = Vec::new();
    for record in records {
        if let DiscoveryRecord::Endpoint(instance) = record {
            endpoints.insert(instance.endpoint_id().url());
            if let Ok(value) = serde_json::to_value(&instance) {
                instances.push(value);
            }
        }
    }
    json(
        StatusCode::OK,
        &HealthResponse::healthy(endpoints.into_iter().collect(), instances),
    )
}

/// `GET /live`.
async fn live() -> Response {
    json(StatusCode::OK, &LiveResponse::live())
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let body = state.metrics.render(&state.manager.models());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Anything else: `{"message":"Route not found: POST /v1/nothing",...}`.
async fn route_not_found(method: Method, uri: Uri) -> Response {
    error_response(&ErrorBody::route_not_found(method.as_str(), uri.path()))
}
