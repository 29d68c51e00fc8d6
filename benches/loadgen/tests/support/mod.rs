//! A tiny OpenAI-like SSE server on raw tokio TCP for the engine tests.
//!
//! Behaviour is picked by the request's `model`:
//! `ok` streams `max_tokens` content chunks (role first, finish, usage, `[DONE]`), each event
//! written in 7-byte pieces so events straddle HTTP chunks; `http500` answers a JSON 500;
//! `sse-error` streams one token then an error event; `truncated` ends without `[DONE]`;
//! `hang` never answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Prompt tokens the `ok` model reports.
pub const PROMPT_TOKENS: u64 = 100;
/// Cached tokens the `ok` model reports.
pub const CACHED_TOKENS: u64 = 40;

/// A running test server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
}

/// Starts the server on an OS-assigned loopback port.
pub async fn start() -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(serve(stream));
        }
    });
    TestServer { base, connections }
}

async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Option<(String, serde_json::Value)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                read_more(stream, buf).await?;
            }
            let body: Vec<u8> = buf.drain(..end + 4 + length).skip(end + 4).collect();
            let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            return Some((path, body));
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await.ok()?;
    (n > 0).then(|| buf.extend_from_slice(&chunk[..n]))
}

async fn write_chunk(stream: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    stream
        .write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await?;
    stream.write_all(data).await?;
    stream.write_all(b"\r\n").await?;
    stream.flush().await
}

fn chunk(delta: &serde_json::Value, finish: Option<&str>) -> String {
    let value = serde_json::json!({
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "model": "ok",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
    });
    format!("data: {value}\n\n")
}

fn events(model: &str, max_tokens: u64) -> Vec<String> {
    let tokens = if model == "ok" { max_tokens } else { 1 };
    let mut events: Vec<String> = (0..tokens)
        .map(|i| {
            let delta = if i == 0 {
                serde_json::json!({"role": "assistant", "content": "tok0 é"})
            } else {
                serde_json::json!({"content": format!(" tok{i}")})
            };
            chunk(&delta, None)
        })
        .collect();
    match model {
        "sse-error" => {
            events.push("data: {\"error\":{\"message\":\"worker died\",\"type\":\"internal_server_error\",\"code\":500}}\n\n".into());
            events.push("data: [DONE]\n\n".into());
        }
        "truncated" => {}
        _ => {
            events.push(chunk(&serde_json::json!({}), Some("length")));
            let usage = serde_json::json!({
                "id": "chatcmpl-test", "object": "chat.completion.chunk", "model": "ok", "choices": [],
                "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": max_tokens,
                          "total_tokens": PROMPT_TOKENS + max_tokens,
                          "prompt_tokens_details": {"cached_tokens": CACHED_TOKENS}},
            });
            events.push(format!(": keep-alive comment\n\ndata: {usage}\n\n"));
            events.push("data: [DONE]\n\n".into());
        }
    }
    events
}

async fn serve(mut stream: TcpStream) {
    stream.set_nodelay(true).ok();
    let mut buf = Vec::new();
    while let Some((_path, body)) = read_request(&mut stream, &mut buf).await {
        let model = body["model"].as_str().unwrap_or_default().to_owned();
        let max_tokens = body["max_tokens"].as_u64().unwrap_or(16);
        match model.as_str() {
            "hang" => std::future::pending::<()>().await,
            "http500" => {
                let body = r#"{"message":"Internal server error","type":"Internal Server Error","code":500}"#;
                let head = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                if stream
                    .write_all(format!("{head}{body}").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
            }
            _ => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for event in events(&model, max_tokens) {
                    for piece in event.as_bytes().chunks(7) {
                        if write_chunk(&mut stream, piece).await.is_err() {
                            return;
                        }
                    }
                }
                if stream.write_all(b"0\r\n\r\n").await.is_err() {
                    return;
                }
            }
        }
    }
}
