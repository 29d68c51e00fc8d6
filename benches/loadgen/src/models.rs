//! `GET /v1/models`: which models the server lists, used to pick a default model and to wait
//! until a freshly started server is ready.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Uri};

use crate::request::HttpClient;

/// Errors asking the server for its models.
#[derive(Debug, thiserror::Error)]
pub enum ModelsError {
    /// The URL could not be built.
    #[error("bad URL {0}")]
    Url(String),
    /// Connecting or reading failed.
    #[error("request failed: {0}")]
    Transport(String),
    /// The server answered with another status than 200.
    #[error("HTTP {0}")]
    Status(u16),
    /// The body was not `{"data": [{"id": ...}]}`.
    #[error("unexpected /v1/models body: {0}")]
    Body(String),
    /// The model did not show up in time.
    #[error("no model{} listed at {url} after {waited:?}", .model.as_ref().map(|m| format!(" {m}")).unwrap_or_default())]
    NotReady {
        /// The model waited for, if one was named.
        model: Option<String>,
        /// The base URL.
        url: String,
        /// How long we waited.
        waited: Duration,
    },
}

/// The ids listed by `GET {base}/v1/models`.
pub async fn model_ids(client: &HttpClient, base: &str) -> Result<Vec<String>, ModelsError> {
    let uri: Uri = format!("{}/v1/models", base.trim_end_matches('/'))
        .parse()
        .map_err(|_| ModelsError::Url(base.to_owned()))?;
    let request = Request::get(uri)
        .body(Full::new(Bytes::new()))
        .map_err(|e| ModelsError::Url(e.to_string()))?;
    let response = client
        .pooled()
        .request(request)
        .await
        .map_err(|e| ModelsError::Transport(format!("{e:?}")))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| ModelsError::Transport(e.to_string()))?
        .to_bytes();
    if status != 200 {
        return Err(ModelsError::Status(status));
    }
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| ModelsError::Body(String::from_utf8_lossy(&body).into_owned()))?;
    let data = value["data"]
        .as_array()
        .ok_or_else(|| ModelsError::Body(value.to_string()))?;
    Ok(data
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect())
}

/// Polls `/v1/models` until `model` (or, if `None`, any model) is listed; returns the model.
pub async fn wait_for_model(
    client: &HttpClient,
    base: &str,
    model: Option<&str>,
    timeout: Duration,
) -> Result<String, ModelsError> {
    let started = Instant::now();
    loop {
        if let Ok(ids) = model_ids(client, base).await {
            let found = match model {
                Some(name) => ids.iter().find(|id| *id == name),
                None => ids.first(),
            };
            if let Some(id) = found {
                return Ok(id.clone());
            }
        }
        if started.elapsed() >= timeout {
            return Err(ModelsError::NotReady {
                model: model.map(str::to_owned),
                url: base.to_owned(),
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
