//! `LLMEngineOutput`: one item of a worker's response stream (inside `Annotated.data`).
//!
//! An item carries the tokens generated since the previous item. Only `token_ids` and
//! `finish_reason` are always written; everything else is omitted when unset, and a minimal
//! reply `{"token_ids":[9707],"finish_reason":null}` parses.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::openai::{self, Usage};

/// Why the engine stopped a sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An EOS token.
    Eos,
    /// `max_tokens` or the context limit.
    Length,
    /// A stop string or stop token.
    Stop,
    /// The engine failed: `{"error": "<message>"}`.
    Error(String),
    /// The request was cancelled (`"abort"` accepted as an alias).
    #[serde(alias = "abort")]
    Cancelled,
    /// Output was filtered.
    ContentFilter,
}

impl FinishReason {
    /// The OpenAI finish reason a client sees; `None` for errors (they surface as errors).
    pub fn to_openai(&self) -> Option<openai::FinishReason> {
        match self {
            Self::Eos | Self::Stop | Self::Cancelled => Some(openai::FinishReason::Stop),
            Self::Length => Some(openai::FinishReason::Length),
            Self::ContentFilter => Some(openai::FinishReason::ContentFilter),
            Self::Error(_) => None,
        }
    }
}

/// What ended the sequence: the matched stop string or stop token id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StopReason {
    /// A stop string.
    Text(String),
    /// A stop token id.
    TokenId(u32),
}

/// Kind of output an item carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputType {
    /// Text tokens.
    Text,
    /// Image.
    Image,
    /// Video.
    Video,
    /// Audio.
    Audio,
}

/// One alternative token at a position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLogprob {
    /// Rank among the alternatives.
    #[serde(default)]
    pub rank: u32,
    /// Token id.
    pub token_id: u32,
    /// Token text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Log-probability.
    pub logprob: f64,
}

/// One response-stream item of a worker engine.
///
/// The rarely set JSON fields are boxed: every item travels by value through several stream
/// layers on the frontend, and seven inline `Value`s would make each move copy ~500 bytes more.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LLMEngineOutput {
    /// Tokens generated since the previous item.
    #[serde(default)]
    pub token_ids: Vec<u32>,
    /// Their texts, when the engine detokenized (`null` for a token without text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Vec<Option<String>>>,
    /// Text of the new tokens, when the engine detokenized (skips the frontend detokenizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Output kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_type: Option<OutputType>,
    /// Non-text content parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_parts: Option<Box<Value>>,
    /// Cumulative log-probability of the sequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cum_log_probs: Option<f64>,
    /// Log-probability of each new token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_probs: Option<Vec<f64>>,
    /// Alternatives at each new position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<Vec<Vec<TopLogprob>>>,
    /// Set on the sequence's last item.
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
    /// The matched stop string or token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<StopReason>,
    /// Choice index (for `n > 1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Prefill → decode KV handoff parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disaggregated_params: Option<Box<Value>>,
    /// Encoder worker result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_result: Option<Box<Value>>,
    /// Trace link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_trace_link: Option<Box<Value>>,
    /// Engine extras.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<Box<Value>>,
    /// Usage as the engine counted it (carries `prompt_tokens_details.cached_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_usage: Option<Usage>,
    /// Opaque data surfaced as response `nvext.engine_data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_data: Option<Box<Value>>,
    /// Routing data reported by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_data: Option<Box<Value>>,
}

impl LLMEngineOutput {
    /// An item with new tokens and no finish reason.
    pub fn tokens(token_ids: Vec<u32>) -> Self {
        Self {
            token_ids,
            ..Self::default()
        }
    }

    /// A final item with `reason`.
    pub fn finished(token_ids: Vec<u32>, reason: FinishReason) -> Self {
        Self {
            token_ids,
            finish_reason: Some(reason),
            ..Self::default()
        }
    }
}
