//! Chat completion responses: the unary object and the streaming chunk.

use serde::{Deserialize, Serialize};

use super::common::{ChatLogprobs, FinishReason, Usage};
use super::tools::{ToolCall, ToolCallDelta};
use crate::nvext::NvExtResponse;

/// `object` of a unary chat response.
pub const CHAT_COMPLETION_OBJECT: &str = "chat.completion";
/// `object` of a streaming chat chunk.
pub const CHAT_COMPLETION_CHUNK_OBJECT: &str = "chat.completion.chunk";

/// The author of a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Developer instructions.
    Developer,
    /// System instructions.
    System,
    /// The user.
    User,
    /// The model.
    #[default]
    Assistant,
    /// A tool result.
    Tool,
    /// A function result.
    Function,
}

/// The message of a unary choice.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponseMessage {
    /// Generated text (`null` when the model only called tools).
    pub content: Option<String>,
    /// A refusal (always serialized, usually `null`).
    #[serde(default)]
    pub refusal: Option<String>,
    /// Tool calls parsed from the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Always `assistant`.
    pub role: Role,
    /// Reasoning text split off by a reasoning parser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

/// One choice of a unary response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatChoice {
    /// Choice index.
    pub index: u32,
    /// The generated message.
    pub message: ChatResponseMessage,
    /// Why generation stopped.
    pub finish_reason: Option<FinishReason>,
    /// Log-probabilities, when requested and produced.
    #[serde(default)]
    pub logprobs: Option<ChatLogprobs>,
}

/// A unary chat completion response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionResponse {
    /// `chatcmpl-<uuid>`.
    pub id: String,
    /// The choices.
    pub choices: Vec<ChatChoice>,
    /// Unix seconds.
    pub created: u64,
    /// The served model name.
    pub model: String,
    /// Service tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Backend fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// Always [`CHAT_COMPLETION_OBJECT`].
    pub object: String,
    /// Token accounting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// NVIDIA response extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvext: Option<NvExtResponse>,
}

impl ChatCompletionResponse {
    /// An empty response with `object` set.
    pub fn new(id: impl Into<String>, model: impl Into<String>, created: u64) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            created,
            object: CHAT_COMPLETION_OBJECT.to_owned(),
            ..Self::default()
        }
    }
}

/// The delta of a streaming choice; empty (`{}`) on the final chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatDelta {
    /// New text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// New reasoning text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// New refusal text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// `assistant` on the first chunk of a choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Tool call fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
}

/// One choice of a streaming chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatChunkChoice {
    /// Choice index.
    pub index: u32,
    /// What is new.
    pub delta: ChatDelta,
    /// Set on the choice's last chunk.
    pub finish_reason: Option<FinishReason>,
    /// Log-probabilities of the tokens in this delta.
    #[serde(default)]
    pub logprobs: Option<ChatLogprobs>,
}

/// A streaming chat chunk (`data:` payload of the SSE stream).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// Same id on every chunk of a response.
    pub id: String,
    /// The choices with news (empty on the usage chunk).
    pub choices: Vec<ChatChunkChoice>,
    /// Unix seconds.
    pub created: u64,
    /// The served model name.
    pub model: String,
    /// Service tier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Backend fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// Always [`CHAT_COMPLETION_CHUNK_OBJECT`].
    pub object: String,
    /// Usage (final chunk with `include_usage`, or every chunk with `continuous_usage_stats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// NVIDIA response extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvext: Option<NvExtResponse>,
}

impl ChatCompletionChunk {
    /// A chunk with `object` set and the given choices.
    pub fn new(
        id: impl Into<String>,
        model: impl Into<String>,
        created: u64,
        choices: Vec<ChatChunkChoice>,
    ) -> Self {
        Self {
            id: id.into(),
            choices,
            created,
            model: model.into(),
            object: CHAT_COMPLETION_CHUNK_OBJECT.to_owned(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::common::PromptTokensDetails;

    #[test]
    fn unary_response_matches_the_reference_bytes() {
        let mut resp = ChatCompletionResponse::new("chatcmpl-1", "qwen", 1_795_322_621);
        resp.choices.push(ChatChoice {
            index: 0,
            message: ChatResponseMessage {
                content: Some("PI".into()),
                ..ChatResponseMessage::default()
            },
            finish_reason: Some(FinishReason::Length),
            logprobs: None,
        });
        let mut usage = Usage::new(36, 1);
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            audio_tokens: None,
            cached_tokens: Some(0),
        });
        resp.usage = Some(usage);
        assert_eq!(
            serde_json::to_string(&resp).unwrap(),
            r#"{"id":"chatcmpl-1","choices":[{"index":0,"message":{"content":"PI","refusal":null,"role":"assistant"},"finish_reason":"length","logprobs":null}],"created":1795322621,"model":"qwen","object":"chat.completion","usage":{"prompt_tokens":36,"completion_tokens":1,"total_tokens":37,"prompt_tokens_details":{"cached_tokens":0}}}"#
        );
    }

    #[test]
    fn chunks_match_the_reference_bytes() {
        let first = ChatCompletionChunk::new(
            "chatcmpl-2",
            "qwen",
            7,
            vec![ChatChunkChoice {
                index: 0,
                delta: ChatDelta {
                    content: Some(" Q".into()),
                    role: Some(Role::Assistant),
                    ..ChatDelta::default()
                },
                finish_reason: None,
                logprobs: None,
            }],
        );
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            r#"{"id":"chatcmpl-2","choices":[{"index":0,"delta":{"content":" Q","role":"assistant"},"finish_reason":null,"logprobs":null}],"created":7,"model":"qwen","object":"chat.completion.chunk"}"#
        );
        let last = ChatCompletionChunk::new(
            "chatcmpl-2",
            "qwen",
            7,
            vec![ChatChunkChoice {
                finish_reason: Some(FinishReason::Length),
                ..ChatChunkChoice::default()
            }],
        );
        assert_eq!(
            serde_json::to_string(&last).unwrap(),
            r#"{"id":"chatcmpl-2","choices":[{"index":0,"delta":{},"finish_reason":"length","logprobs":null}],"created":7,"model":"qwen","object":"chat.completion.chunk"}"#
        );
    }
}
