//! Files the status server serves under `/v1/metadata/…`: a worker's self-hosted model-card
//! artifacts (tokenizer.json, config.json, …), so frontends on other machines can fetch them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::RwLock;

/// The route prefix of self-hosted files.
pub const METADATA_PREFIX: &str = "/v1/metadata/";

/// Route → local file table, shared between the runtime (which adds routes) and the status
/// server (which serves them). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct FileRoutes {
    files: Arc<RwLock<HashMap<String, PathBuf>>>,
}

impl FileRoutes {
    /// Serves `path` at `route` (which must start with [`METADATA_PREFIX`]); returns whether
    /// the route was accepted.
    pub fn insert(&self, route: impl Into<String>, path: impl Into<PathBuf>) -> bool {
        let route = route.into();
        if !route.starts_with(METADATA_PREFIX) {
            return false;
        }
        self.files.write().insert(route, path.into());
        true
    }

    /// Stops serving `route`.
    pub fn remove(&self, route: &str) {
        self.files.write().remove(route);
    }

    /// The file served at `route`, if any.
    pub fn get(&self, route: &str) -> Option<PathBuf> {
        self.files.read().get(route).cloned()
    }
}

/// `GET /v1/metadata/{*rest}`: the registered file's bytes, or a JSON 404.
pub(super) async fn metadata_handler(
    State(files): State<FileRoutes>,
    Path(rest): Path<String>,
) -> Response {
    let route = format!("{METADATA_PREFIX}{rest}");
    let Some(path) = files.get(&route) else {
        return not_found(&route);
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let content_type = if path.extension().is_some_and(|e| e == "json") {
                "application/json"
            } else {
                "application/octet-stream"
            };
            ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read a self-hosted file");
            not_found(&route)
        }
    }
}

fn not_found(route: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": format!("no file at {route}")})),
    )
        .into_response()
}
