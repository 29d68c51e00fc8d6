//! One timed request: send, read the (SSE or JSON) answer incrementally, classify the outcome.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::chunk::{StreamItem, Usage, classify};
use crate::connection::{Connection, Connections};
use crate::sse::{SseEvent, SseParser};

/// The load generator's HTTP client: a pooled client for one-off requests (`/v1/models`) and
/// the keep-alive connections the closed-loop tasks own, one each.
#[derive(Clone)]
pub struct HttpClient {
    pooled: Client<HttpConnector, Full<Bytes>>,
    connections: Connections,
}

impl HttpClient {
    /// A client over `pooled` (keep-alive, `TCP_NODELAY`), with no connection opened yet.
    pub(crate) fn new(pooled: Client<HttpConnector, Full<Bytes>>) -> Self {
        Self {
            pooled,
            connections: Connections::default(),
        }
    }

    /// The pooled client, for requests outside the closed loop.
    pub(crate) fn pooled(&self) -> &Client<HttpConnector, Full<Bytes>> {
        &self.pooled
    }

    /// A connection for one closed-loop task (kept open from an earlier task when possible).
    pub(crate) fn take_connection(&self) -> Connection {
        self.connections.take()
    }

    /// Keeps a task's connection for the next phase or row.
    pub(crate) fn give_back(&self, connection: Connection) {
        self.connections.give_back(connection);
    }
}

/// Largest error body kept for the report.
const ERROR_BODY_LIMIT: usize = 512;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The server answered with a non-200 status.
    #[error("HTTP {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The stream carried an error event.
    #[error("SSE error: {0}")]
    Sse(String),
    /// The request did not finish within the timeout.
    #[error("timed out")]
    Timeout,
    /// Connecting, sending or reading failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The stream ended without `data: [DONE]`.
    #[error("stream ended without [DONE]")]
    Incomplete,
    /// A 200 answer with no content and no reported completion tokens.
    #[error("no content in the answer")]
    Empty,
}

impl RequestError {
    /// A short stable name of the error class, for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Status { .. } => "http_status",
            Self::Sse(_) => "sse_error",
            Self::Timeout => "timeout",
            Self::Transport(_) => "transport",
            Self::Incomplete => "incomplete",
            Self::Empty => "empty",
        }
    }
}

/// Timings and counts of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestOutcome {
    /// Request sent → first chunk with non-empty content (streaming only).
    pub ttft: Option<Duration>,
    /// Request sent → `[DONE]` (or end of body).
    pub e2e: Duration,
    /// Number of SSE chunks with non-empty content.
    pub content_chunks: u64,
    /// Usage reported by the server, if any.
    pub usage: Option<Usage>,
    /// `None` when the request succeeded.
    pub error: Option<RequestError>,
}

impl RequestOutcome {
    /// Output tokens: `usage.completion_tokens` when reported, else the content chunk count.
    pub fn tokens(&self) -> u64 {
        self.usage
            .map_or(self.content_chunks, |u| u.completion_tokens)
    }

    /// Inter-token latency: `(e2e − TTFT) / (tokens − 1)`; `None` with fewer than two tokens.
    pub fn itl(&self) -> Option<Duration> {
        let ttft = self.ttft?;
        let gaps = self.tokens().checked_sub(1).filter(|&g| g > 0)?;
        Some(self.e2e.saturating_sub(ttft) / u32::try_from(gaps).unwrap_or(u32::MAX))
    }
}

/// State of one answer being read.
struct Progress {
    start: Instant,
    ttft: Option<Duration>,
    done_at: Option<Duration>,
    content_chunks: u64,
    usage: Option<Usage>,
    error: Option<RequestError>,
}

impl Progress {
    /// Whether usage reported output tokens (text may legitimately be empty, e.g. a token
    /// that decodes to nothing on its own).
    fn reported_tokens(&self) -> bool {
        self.usage.is_some_and(|u| u.completion_tokens > 0)
    }

    fn apply(&mut self, events: &mut Vec<SseEvent>) {
        for event in events.drain(..) {
            match classify(&event) {
                StreamItem::Chunk { has_content, usage } => {
                    if has_content {
                        self.content_chunks += 1;
                        if self.ttft.is_none() {
                            self.ttft = Some(self.start.elapsed());
                        }
                    }
                    if usage.is_some() {
                        self.usage = usage;
                    }
                }
                StreamItem::Done => {
                    if self.done_at.is_none() {
                        self.done_at = Some(self.start.elapsed());
                    }
                }
                StreamItem::Error(text) => {
                    if self.error.is_none() {
                        self.error = Some(RequestError::Sse(text));
                    }
                }
            }
        }
    }
}

/// Sends `body` as a POST to `uri` and reads the whole answer, within `timeout`.
pub async fn send(
    connection: &mut Connection,
    uri: &Uri,
    body: Bytes,
    timeout: Duration,
) -> RequestOutcome {
    let start = Instant::now();
    let mut progress = Progress {
        start,
        ttft: None,
        done_at: None,
        content_chunks: 0,
        usage: None,
        error: None,
    };
    let result =
        tokio::time::timeout(timeout, exchange(connection, uri, body, &mut progress)).await;
    let error = match result {
        Err(_) => Some(RequestError::Timeout),
        Ok(Err(err)) => Some(err),
        Ok(Ok(())) => progress.error.take(),
    };
    RequestOutcome {
        ttft: progress.ttft,
        e2e: progress.done_at.unwrap_or_else(|| start.elapsed()),
        content_chunks: progress.content_chunks,
        usage: progress.usage,
        error,
    }
}

async fn exchange(
    connection: &mut Connection,
    uri: &Uri,
    body: Bytes,
    progress: &mut Progress,
) -> Result<(), RequestError> {
    let request = Request::post(uri.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "text/event-stream, application/json")
        .body(Full::new(body))
        .map_err(|e| RequestError::Transport(e.to_string()))?;
    let response = connection.send(uri, request).await?;
    let status = response.status();
    let is_sse = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let mut body = response.into_body();
    if status != StatusCode::OK {
        let bytes = body
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        let text =
            String::from_utf8_lossy(&bytes[..bytes.len().min(ERROR_BODY_LIMIT)]).into_owned();
        return Err(RequestError::Status {
            status: status.as_u16(),
            body: text,
        });
    }
    if !is_sse {
        let bytes = body
            .collect()
            .await
            .map_err(|e| RequestError::Transport(e.to_string()))?
            .to_bytes();
        return unary(&bytes, progress);
    }
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| RequestError::Transport(e.to_string()))?;
        if let Some(data) = frame.data_ref() {
            parser.push(data, &mut events);
            progress.apply(&mut events);
        }
    }
    parser.finish(&mut events);
    progress.apply(&mut events);
    if progress.done_at.is_none() && progress.error.is_none() {
        return Err(RequestError::Incomplete);
    }
    if progress.content_chunks == 0 && progress.error.is_none() && !progress.reported_tokens() {
        return Err(RequestError::Empty);
    }
    Ok(())
}

/// A non-streaming answer: one JSON body, its usage counted, TTFT left undefined.
fn unary(bytes: &[u8], progress: &mut Progress) -> Result<(), RequestError> {
    progress.done_at = Some(progress.start.elapsed());
    let event = SseEvent {
        event: None,
        data: String::from_utf8_lossy(bytes).into_owned(),
    };
    let value: serde_json::Value = serde_json::from_str(&event.data)
        .map_err(|e| RequestError::Sse(format!("bad JSON body: {e}")))?;
    let text_len = value["choices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            c["message"]["content"]
                .as_str()
                .or_else(|| c["text"].as_str())
        })
        .map(str::len)
        .sum::<usize>();
    progress.apply(&mut vec![event]);
    if text_len == 0 && progress.error.is_none() && !progress.reported_tokens() {
        return Err(RequestError::Empty);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{RequestOutcome, Usage};
    use std::time::Duration;

    #[test]
    fn itl_uses_usage_tokens_then_chunk_count() {
        let mut outcome = RequestOutcome {
            ttft: Some(Duration::from_millis(10)),
            e2e: Duration::from_millis(73),
            content_chunks: 10,
            usage: Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 64,
                cached_tokens: 0,
            }),
            error: None,
        };
        assert_eq!(outcome.tokens(), 64);
        assert_eq!(outcome.itl(), Some(Duration::from_millis(1)));
        outcome.usage = None;
        assert_eq!(outcome.itl(), Some(Duration::from_millis(7)));
        outcome.content_chunks = 1;
        assert_eq!(outcome.itl(), None);
    }
}
