//! What one SSE event of an OpenAI chat (or completions) stream means to the load generator.

use serde::Deserialize;

use crate::sse::SseEvent;

/// Token usage reported by the server (`usage` of the final chunk with `include_usage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `usage.prompt_tokens`.
    pub prompt_tokens: u64,
    /// `usage.completion_tokens`.
    pub completion_tokens: u64,
    /// `usage.prompt_tokens_details.cached_tokens` (0 when absent).
    pub cached_tokens: u64,
}

/// The meaning of one SSE event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// A chunk; `has_content` is true when any choice carried non-empty text.
    Chunk {
        /// Whether the chunk carried non-empty content (a token for TTFT/ITL purposes).
        has_content: bool,
        /// Usage, when the chunk carried it.
        usage: Option<Usage>,
    },
    /// The `[DONE]` sentinel.
    Done,
    /// An error event (`event: error` or a payload with a top-level `error`), with its text.
    Error(String),
}

#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<RawChoice<'a>>,
    #[serde(default)]
    usage: Option<RawUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<RawDelta<'a>>,
    /// Completions streams carry the text here instead of in `delta`.
    #[serde(default, borrow)]
    text: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawDelta<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<RawPromptDetails>,
}

#[derive(Deserialize)]
struct RawPromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

fn non_empty(text: Option<&std::borrow::Cow<'_, str>>) -> bool {
    text.is_some_and(|t| !t.is_empty())
}

/// Interprets one SSE event of a chat/completions stream.
pub fn classify(event: &SseEvent) -> StreamItem {
    if event.event.as_deref() == Some("error") {
        return StreamItem::Error(event.data.clone());
    }
    let data = event.data.trim();
    if data == "[DONE]" {
        return StreamItem::Done;
    }
    let chunk: RawChunk<'_> = match serde_json::from_str(data) {
        Ok(chunk) => chunk,
        Err(err) => return StreamItem::Error(format!("unparsable chunk ({err}): {data}")),
    };
    if let Some(error) = chunk.error.filter(|e| !e.is_null()) {
        return StreamItem::Error(error.to_string());
    }
    let has_content = chunk.choices.iter().any(|choice| {
        non_empty(choice.text.as_ref())
            || choice.delta.as_ref().is_some_and(|d| {
                non_empty(d.content.as_ref()) || non_empty(d.reasoning_content.as_ref())
            })
    });
    let usage = chunk.usage.map(|u| Usage {
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        cached_tokens: u
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0),
    });
    StreamItem::Chunk { has_content, usage }
}

#[cfg(test)]
mod tests {
    use super::{StreamItem, Usage, classify};
    use crate::sse::SseEvent;

    fn item(data: &str) -> StreamItem {
        classify(&SseEvent {
            event: None,
            data: data.to_owned(),
        })
    }

    #[test]
    fn classifies_dynamo_chat_chunks() {
        let role = r#"{"id":"c","choices":[{"index":0,"delta":{"content":" Q","role":"assistant"},"finish_reason":null,"logprobs":null}],"object":"chat.completion.chunk"}"#;
        assert_eq!(
            item(role),
            StreamItem::Chunk {
                has_content: true,
                usage: None
            }
        );
        let finish = r#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#;
        assert_eq!(
            item(finish),
            StreamItem::Chunk {
                has_content: false,
                usage: None
            }
        );
        let usage = r#"{"id":"c","choices":[],"usage":{"prompt_tokens":36,"completion_tokens":5,"total_tokens":41,"prompt_tokens_details":{"cached_tokens":7}}}"#;
        assert_eq!(
            item(usage),
            StreamItem::Chunk {
                has_content: false,
                usage: Some(Usage {
                    prompt_tokens: 36,
                    completion_tokens: 5,
                    cached_tokens: 7
                })
            }
        );
        assert_eq!(item(" [DONE]"), StreamItem::Done);
    }

    #[test]
    fn completions_text_and_null_usage() {
        let chunk = r#"{"choices":[{"index":0,"text":"a\"b","finish_reason":null}],"usage":null}"#;
        assert_eq!(
            item(chunk),
            StreamItem::Chunk {
                has_content: true,
                usage: None
            }
        );
    }

    #[test]
    fn errors_are_recognised() {
        let err = r#"{"error":{"message":"boom","type":"internal_server_error","code":500}}"#;
        assert!(matches!(item(err), StreamItem::Error(text) if text.contains("boom")));
        let named = SseEvent {
            event: Some("error".into()),
            data: "oops".into(),
        };
        assert_eq!(classify(&named), StreamItem::Error("oops".into()));
        assert!(matches!(item("not json"), StreamItem::Error(_)));
    }
}
