//! Anthropic Messages responses, streaming events and the Anthropic error body.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorKind;

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Natural end of turn.
    EndTurn,
    /// `max_tokens` reached.
    MaxTokens,
    /// A stop sequence matched.
    StopSequence,
    /// The model called a tool.
    ToolUse,
}

/// A content block of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments.
        input: Value,
    },
    /// Reasoning.
    Thinking {
        /// Reasoning text.
        thinking: String,
        /// Integrity signature.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
}

/// Token accounting of a Messages response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Generated tokens.
    pub output_tokens: u32,
    /// Tokens written to the prompt cache (always serialized).
    #[serde(default)]
    pub cache_creation_input_tokens: u32,
    /// Prompt tokens read from the cache, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u32>,
    /// `input + output` (carried by streaming deltas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u32>,
}

/// A Messages response (and the `message` of `message_start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// `msg_<hex>`.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `assistant`.
    pub role: String,
    /// Generated blocks.
    pub content: Vec<ResponseBlock>,
    /// The served model name.
    pub model: String,
    /// Why generation stopped (`null` in `message_start`).
    pub stop_reason: Option<StopReason>,
    /// The matched stop sequence.
    pub stop_sequence: Option<String>,
    /// Token accounting.
    pub usage: Usage,
}

impl MessagesResponse {
    /// An assistant message with `content`.
    pub fn new(
        id: impl Into<String>,
        model: impl Into<String>,
        content: Vec<ResponseBlock>,
    ) -> Self {
        Self {
            id: id.into(),
            kind: "message".to_owned(),
            role: "assistant".to_owned(),
            content,
            model: model.into(),
            stop_reason: None,
            stop_sequence: None,
            usage: Usage::default(),
        }
    }
}

/// The change carried by a `content_block_delta`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockDelta {
    /// More text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// More tool-call JSON.
    InputJsonDelta {
        /// A JSON fragment.
        partial_json: String,
    },
    /// More reasoning.
    ThinkingDelta {
        /// The reasoning text.
        thinking: String,
    },
}

/// The `delta` of a `message_delta` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDelta {
    /// Why generation stopped.
    pub stop_reason: Option<StopReason>,
    /// The matched stop sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequence: Option<String>,
}

/// One streaming event; the SSE `event:` name equals the `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The message envelope, no content yet.
    MessageStart {
        /// The message.
        message: MessagesResponse,
    },
    /// A block opens.
    ContentBlockStart {
        /// Block index.
        index: u32,
        /// The empty block.
        content_block: ResponseBlock,
    },
    /// A block grows.
    ContentBlockDelta {
        /// Block index.
        index: u32,
        /// The change.
        delta: BlockDelta,
        /// Running usage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    /// A block closes.
    ContentBlockStop {
        /// Block index.
        index: u32,
    },
    /// Final stop reason and usage.
    MessageDelta {
        /// Stop reason.
        delta: MessageDelta,
        /// Final usage.
        usage: Usage,
    },
    /// End of message.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// Mid-stream error.
    Error {
        /// The error.
        error: ErrorDetail,
    },
}

impl StreamEvent {
    /// The SSE `event:` name (same as the `type`).
    pub fn event_name(&self) -> &'static str {
        match self {
            Self::MessageStart { .. } => "message_start",
            Self::ContentBlockStart { .. } => "content_block_start",
            Self::ContentBlockDelta { .. } => "content_block_delta",
            Self::ContentBlockStop { .. } => "content_block_stop",
            Self::MessageDelta { .. } => "message_delta",
            Self::MessageStop => "message_stop",
            Self::Ping => "ping",
            Self::Error { .. } => "error",
        }
    }

    /// The SSE frame `event: <name>\ndata: <json>\n\n`.
    pub fn to_sse(&self) -> String {
        let json = serde_json::to_string(self).expect("a StreamEvent always serializes");
        crate::sse::event(self.event_name(), &json)
    }
}

/// The inner object of an Anthropic error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Anthropic error type (`invalid_request_error`, `not_found_error`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable message.
    pub message: String,
}

/// The Anthropic error body: `{"type":"error","error":{"type","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Always `error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The error.
    pub error: ErrorDetail,
}

impl ErrorBody {
    /// An error body for `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind: "error".to_owned(),
            error: ErrorDetail {
                kind: error_type(kind).to_owned(),
                message: message.into(),
            },
        }
    }
}

/// The Anthropic error type for an error kind.
pub fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest
        | ErrorKind::MethodNotAllowed
        | ErrorKind::Conflict
        | ErrorKind::UnsupportedMediaType => "invalid_request_error",
        ErrorKind::Unauthenticated => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::RateLimited => "rate_limit_error",
        ErrorKind::Overloaded | ErrorKind::Unavailable => "overloaded_error",
        ErrorKind::Cancelled
        | ErrorKind::Internal
        | ErrorKind::NotImplemented
        | ErrorKind::BackendProtocol
        | ErrorKind::DeadlineExceeded => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_matches_the_reference_bytes() {
        let mut resp = MessagesResponse::new(
            "msg_1",
            "qwen",
            vec![ResponseBlock::Text { text: "hi".into() }],
        );
        resp.stop_reason = Some(StopReason::MaxTokens);
        resp.usage = Usage {
            input_tokens: 30,
            output_tokens: 8,
            ..Usage::default()
        };
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"hi"}],"model":"qwen","stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":30,"output_tokens":8,"cache_creation_input_tokens":0}}"#
        );
    }

    #[test]
    fn stream_events_match_the_reference_frames() {
        let delta = StreamEvent::ContentBlockDelta {
            index: 0,
            delta: BlockDelta::TextDelta { text: "rg".into() },
            usage: Some(Usage {
                input_tokens: 30,
                output_tokens: 2,
                cache_creation_input_tokens: 0,
                cache_read_input_tokens: None,
                total_tokens: Some(32),
            }),
        };
        assert_eq!(
            delta.to_sse(),
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"rg\"},\"usage\":{\"input_tokens\":30,\"output_tokens\":2,\"cache_creation_input_tokens\":0,\"total_tokens\":32}}\n\n"
        );
        let end = StreamEvent::MessageDelta {
            delta: MessageDelta {
                stop_reason: Some(StopReason::MaxTokens),
                stop_sequence: None,
            },
            usage: Usage {
                input_tokens: 30,
                output_tokens: 5,
                ..Usage::default()
            },
        };
        assert_eq!(
            serde_json::to_string(&end).unwrap(),
            r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"input_tokens":30,"output_tokens":5,"cache_creation_input_tokens":0}}"#
        );
        assert_eq!(
            StreamEvent::MessageStop.to_sse(),
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        );
    }

    #[test]
    fn error_body_matches_the_reference_shape() {
        let body = ErrorBody::new(ErrorKind::NotFound, "Model 'nope' not found");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"type":"error","error":{"type":"not_found_error","message":"Model 'nope' not found"}}"#
        );
    }
}
