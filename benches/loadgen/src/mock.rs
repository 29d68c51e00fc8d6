//! A minimal OpenAI-like streaming server on raw tokio TCP, to test the engine and to measure
//! the generator's own ceiling (`loadgen-mock`) without a real frontend.
//!
//! `POST` bodies pick the behaviour by `model`: `http500` answers a JSON 500; `sse-error`
//! streams one token then an error event and `[DONE]`; `truncated` streams the tokens and ends
//! without `[DONE]`; `empty` streams no content and reports 0 completion tokens; `hang` never
//! answers; anything else streams `max_tokens` content chunks shaped like Dynamo's (role in the
//! first, an empty-delta finish chunk, a usage chunk with cached tokens, `[DONE]`). Requests
//! without `"stream": true` get one `chat.completion` JSON body instead. `GET` answers a models
//! list with the single id `mock`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Prompt tokens every streamed answer reports.
pub const MOCK_PROMPT_TOKENS: u64 = 100;
/// Cached prompt tokens every streamed answer reports.
pub const MOCK_CACHED_TOKENS: u64 = 40;

/// Largest request head plus body the mock accepts.
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// How the mock writes its streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MockOptions {
    /// Write every SSE event in HTTP chunks of at most this many bytes (tests split events and
    /// UTF-8 characters this way); `None` writes one chunk per event.
    pub piece_size: Option<usize>,
}

/// A running mock server.
#[derive(Debug)]
pub struct MockServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
}

impl MockServer {
    /// Binds `addr` (port 0 for an OS-assigned port) and serves on the current tokio runtime.
    pub async fn start(addr: SocketAddr, options: MockOptions) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(stream, options));
            }
        });
        Ok(Self { addr, connections })
    }

    /// `http://ADDR`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

struct MockRequest {
    is_get: bool,
    body: Value,
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await.ok()?;
    if n == 0 || buf.len() + n > MAX_REQUEST_BYTES {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}

async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<MockRequest> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                read_more(stream, buf).await?;
            }
            let body: Vec<u8> = buf.drain(..end + 4 + length).skip(end + 4).collect();
            return Some(MockRequest {
                is_get: head.starts_with("GET "),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
        }
        read_more(stream, buf).await?;
    }
}

fn chunk(delta: &Value, finish: Option<&str>) -> String {
    let value = json!({
        "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": "mock",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
    });
    format!("data: {value}\n\n")
}

/// Output tokens the mock produces for `model`.
fn token_count(model: &str, max_tokens: u64) -> u64 {
    match model {
        "sse-error" => 1,
        "empty" => 0,
        _ => max_tokens,
    }
}

fn usage(completion_tokens: u64) -> Value {
    json!({"prompt_tokens": MOCK_PROMPT_TOKENS, "completion_tokens": completion_tokens,
           "total_tokens": MOCK_PROMPT_TOKENS + completion_tokens,
           "prompt_tokens_details": {"cached_tokens": MOCK_CACHED_TOKENS}})
}

/// The unary (`stream: false`) answer: the same text folded into one message.
fn unary_body(model: &str, max_tokens: u64) -> String {
    let tokens = token_count(model, max_tokens);
    let text: String = (0..tokens)
        .map(|i| {
            if i == 0 {
                "tok0 é".to_owned()
            } else {
                format!(" tok{i}")
            }
        })
        .collect();
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": "mock",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
        "usage": usage(tokens),
    })
    .to_string()
}

fn stream_events(model: &str, max_tokens: u64) -> Vec<String> {
    let tokens = token_count(model, max_tokens);
    let mut events: Vec<String> = (0..tokens)
        .map(|i| {
            let delta = if i == 0 {
                json!({"role": "assistant", "content": "tok0 é"})
            } else {
                json!({"content": format!(" tok{i}")})
            };
            chunk(&delta, None)
        })
        .collect();
    match model {
        "sse-error" => {
            let error = json!({"error": {"message": "worker died", "type": "internal_server_error", "code": 500}});
            events.push(format!("data: {error}\n\n"));
        }
        "truncated" => return events,
        _ => {
            events.push(chunk(&json!({}), Some("length")));
            let usage = json!({
                "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": "mock",
                "choices": [], "usage": usage(tokens),
            });
            events.push(format!(": keep-alive\n\ndata: {usage}\n\n"));
        }
    }
    events.push("data: [DONE]\n\n".to_owned());
    events
}

async fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    let mut framed = Vec::with_capacity(data.len() + 12);
    framed.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    framed.extend_from_slice(data);
    framed.extend_from_slice(b"\r\n");
    stream.write_all(&framed).await
}

fn fixed_response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

async fn respond(
    stream: &mut TcpStream,
    request: &MockRequest,
    options: MockOptions,
) -> std::io::Result<()> {
    if request.is_get {
        let models = json!({"object": "list", "data": [{"id": "mock", "object": "model", "owned_by": "mock"}]});
        return stream
            .write_all(fixed_response("200 OK", &models.to_string()).as_bytes())
            .await;
    }
    let model = request.body["model"].as_str().unwrap_or_default();
    let max_tokens = request.body["max_tokens"].as_u64().unwrap_or(16);
    match model {
        "hang" => std::future::pending().await,
        "http500" => {
            let body =
                r#"{"message":"Internal server error","type":"Internal Server Error","code":500}"#;
            stream
                .write_all(fixed_response("500 Internal Server Error", body).as_bytes())
                .await
        }
        _ if request.body["stream"] != true => {
            let body = unary_body(model, max_tokens);
            stream
                .write_all(fixed_response("200 OK", &body).as_bytes())
                .await
        }
        _ => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
            stream.write_all(head.as_bytes()).await?;
            for event in stream_events(model, max_tokens) {
                let piece = options.piece_size.unwrap_or(event.len()).max(1);
                for part in event.as_bytes().chunks(piece) {
                    write_chunk(stream, part).await?;
                }
            }
            stream.write_all(b"0\r\n\r\n").await
        }
    }
}

async fn serve(mut stream: TcpStream, options: MockOptions) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buf = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buf).await {
        if respond(&mut stream, &request, options).await.is_err() {
            return;
        }
    }
}
