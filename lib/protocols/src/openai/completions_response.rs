//! Completions responses. The same object is used for unary answers and stream chunks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::common::{CompletionTokensDetails, FinishReason, Usage};
use crate::nvext::NvExtResponse;

/// `object` of completions responses and chunks.
pub const TEXT_COMPLETION_OBJECT: &str = "text_completion";

/// `choices[].logprobs` of the completions API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionLogprobs {
    /// The generated tokens.
    pub tokens: Vec<String>,
    /// Log-probability of each token.
    pub token_logprobs: Vec<Option<f32>>,
    /// The most likely alternatives at each position.
    pub top_logprobs: Vec<Option<BTreeMap<String, f32>>>,
    /// Character offset of each token in the text.
    pub text_offset: Vec<u32>,
}

/// One choice of a completions response or chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionChoice {
    /// Generated text (new text only, in a chunk).
    pub text: String,
    /// Choice index (prompt index × n + sample index for batches).
    pub index: u32,
    /// Set on the choice's last chunk / in the unary answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// Log-probabilities, when requested and produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<CompletionLogprobs>,
}

/// `usage.prompt_tokens_details` of the completions API (both keys always present).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionPromptTokensDetails {
    /// Audio input tokens (always `null` for text models).
    #[serde(default)]
    pub audio_tokens: Option<u32>,
    /// Prompt tokens served from the KV cache.
    #[serde(default)]
    pub cached_tokens: Option<u32>,
}

/// `usage` of the completions API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionUsage {
    /// Tokens in the prompt(s).
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// `prompt_tokens + completion_tokens`.
    pub total_tokens: u32,
    /// Breakdown of the prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<CompletionPromptTokensDetails>,
    /// Breakdown of the completion tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

impl From<Usage> for CompletionUsage {
    fn from(u: Usage) -> Self {
        Self {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.total_tokens,
            prompt_tokens_details: u
                .prompt_tokens_details
                .map(|d| CompletionPromptTokensDetails {
                    audio_tokens: d.audio_tokens,
                    cached_tokens: d.cached_tokens,
                }),
            completion_tokens_details: u.completion_tokens_details,
        }
    }
}

/// A completions response; also the `data:` payload of each stream chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CompletionResponse {
    /// `cmpl-<uuid>`.
    pub id: String,
    /// The choices (empty on the usage chunk).
    pub choices: Vec<CompletionChoice>,
    /// Unix seconds.
    pub created: u64,
    /// The served model name.
    pub model: String,
    /// Backend fingerprint (always serialized).
    #[serde(default)]
    pub system_fingerprint: Option<String>,
    /// Always [`TEXT_COMPLETION_OBJECT`].
    pub object: String,
    /// Token accounting (always serialized; `null` on ordinary chunks).
    #[serde(default)]
    pub usage: Option<CompletionUsage>,
    /// NVIDIA response extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvext: Option<NvExtResponse>,
}

/// The streaming chunk of the completions API has the response's shape.
pub type CompletionChunk = CompletionResponse;

impl CompletionResponse {
    /// A response with `object` set and the given choices.
    pub fn new(
        id: impl Into<String>,
        model: impl Into<String>,
        created: u64,
        choices: Vec<CompletionChoice>,
    ) -> Self {
        Self {
            id: id.into(),
            choices,
            created,
            model: model.into(),
            object: TEXT_COMPLETION_OBJECT.to_owned(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::common::PromptTokensDetails;

    #[test]
    fn chunk_matches_the_reference_bytes() {
        let chunk = CompletionResponse::new(
            "cmpl-1",
            "qwen",
            5,
            vec![CompletionChoice {
                text: "IS".into(),
                index: 0,
                ..CompletionChoice::default()
            }],
        );
        assert_eq!(
            serde_json::to_string(&chunk).unwrap(),
            r#"{"id":"cmpl-1","choices":[{"text":"IS","index":0}],"created":5,"model":"qwen","system_fingerprint":null,"object":"text_completion","usage":null}"#
        );
    }

    #[test]
    fn usage_keeps_audio_tokens_null() {
        let mut usage = Usage::new(1, 3);
        usage.prompt_tokens_details = Some(PromptTokensDetails {
            audio_tokens: None,
            cached_tokens: Some(0),
        });
        let usage = CompletionUsage::from(usage);
        assert_eq!(
            serde_json::to_string(&usage).unwrap(),
            r#"{"prompt_tokens":1,"completion_tokens":3,"total_tokens":4,"prompt_tokens_details":{"audio_tokens":null,"cached_tokens":0}}"#
        );
    }
}
