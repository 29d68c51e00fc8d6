//! Every 200 answer the reference frontend gave on the chat, completions, Responses and
//! Messages routes
//! (`fixtures/transcript_responses.json`, extracted from the golden HTTP transcripts) is read
//! back through this crate's types:
//!
//! - unary bodies (pretty-printed in the transcripts) must re-serialize to the same JSON value;
//! - every SSE `data:` payload must re-serialize to the very same bytes, which also pins the
//!   field order, and the stream is split by [`sse::SseParser`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use stator_protocols::anthropic::{CountTokensResponse, MessagesResponse, StreamEvent};
use stator_protocols::openai::{
    ChatCompletionChunk, ChatCompletionResponse, CompletionChunk, CompletionResponse,
};
use stator_protocols::responses::{InputTokensResponse, ResponseObject, ResponseStreamEvent};
use stator_protocols::sse;

#[derive(serde::Deserialize)]
struct Answer {
    case: String,
    path: String,
    stream: bool,
    body: String,
}

fn same_value<T: DeserializeOwned + Serialize>(body: &str) -> Result<(), String> {
    let typed: T = serde_json::from_str(body).map_err(|e| format!("parse: {e}"))?;
    let expected: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    let got = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if got == expected {
        Ok(())
    } else {
        Err(format!("re-serialized as {got}"))
    }
}

fn same_bytes<T: DeserializeOwned + Serialize>(data: &str) -> Result<(), String> {
    let typed: T = serde_json::from_str(data).map_err(|e| format!("parse {data}: {e}"))?;
    let got = serde_json::to_string(&typed).map_err(|e| e.to_string())?;
    if got == data {
        Ok(())
    } else {
        Err(format!("\n  got      {got}\n  expected {data}"))
    }
}

fn named(event: &sse::SseEvent, name: &str, data: &str) -> Result<(), String> {
    if event.event.as_deref() == Some(name) {
        Ok(())
    } else {
        Err(format!("event name {:?} for {data}", event.event))
    }
}

fn check_stream(answer: &Answer) -> Result<(), String> {
    let events = sse::parse_all(&answer.body);
    let last = events.last().ok_or("empty stream")?;
    if !last.is_done() {
        return Err("stream does not end with [DONE]".into());
    }
    let mut chunks = 0;
    for event in &events {
        let Some(data) = event.data.as_deref() else {
            if event.event.is_none() || event.comments.is_empty() {
                return Err(format!("annotation without name or payload: {event:?}"));
            }
            continue;
        };
        if event.is_done() {
            continue;
        }
        chunks += 1;
        match answer.path.as_str() {
            "/v1/chat/completions" => same_bytes::<ChatCompletionChunk>(data)?,
            "/v1/completions" => same_bytes::<CompletionChunk>(data)?,
            "/v1/responses" => {
                same_bytes::<ResponseStreamEvent>(data)?;
                let parsed: ResponseStreamEvent =
                    serde_json::from_str(data).map_err(|e| e.to_string())?;
                named(event, parsed.event_name(), data)?;
            }
            _ => {
                same_bytes::<StreamEvent>(data)?;
                let parsed: StreamEvent = serde_json::from_str(data).map_err(|e| e.to_string())?;
                named(event, parsed.event_name(), data)?;
            }
        }
    }
    if chunks == 0 {
        return Err("no data events".into());
    }
    Ok(())
}

fn check(answer: &Answer) -> Result<(), String> {
    if answer.stream {
        return check_stream(answer);
    }
    match answer.path.as_str() {
        "/v1/chat/completions" => same_value::<ChatCompletionResponse>(&answer.body),
        "/v1/completions" => same_value::<CompletionResponse>(&answer.body),
        "/v1/responses" => same_value::<ResponseObject>(&answer.body),
        "/v1/responses/input_tokens" => same_value::<InputTokensResponse>(&answer.body),
        "/v1/messages" => same_value::<MessagesResponse>(&answer.body),
        "/v1/messages/count_tokens" => same_value::<CountTokensResponse>(&answer.body),
        other => Err(format!("unexpected route {other}")),
    }
}

#[test]
fn every_reference_answer_reads_back_unchanged() {
    let answers: Vec<Answer> =
        serde_json::from_str(include_str!("fixtures/transcript_responses.json")).unwrap();
    assert!(answers.len() >= 50, "fixture lost cases: {}", answers.len());
    assert!(answers.iter().filter(|a| a.stream).count() >= 10);
    let failures: Vec<String> = answers
        .iter()
        .filter_map(|a| check(a).err().map(|e| format!("{}: {e}", a.case)))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
