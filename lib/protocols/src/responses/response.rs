//! The Responses API response object and its output items.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Lifecycle state of a response or an output item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    /// Generating.
    #[default]
    InProgress,
    /// Finished normally.
    Completed,
    /// Stopped early (see `incomplete_details`).
    Incomplete,
    /// Failed (see `error`).
    Failed,
    /// Cancelled.
    Cancelled,
    /// Waiting to start.
    Queued,
}

/// A content part of an output message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputContent {
    /// Generated text.
    OutputText {
        /// Citations and similar.
        #[serde(default)]
        annotations: Vec<Value>,
        /// Token log-probabilities.
        #[serde(default)]
        logprobs: Vec<Value>,
        /// The text.
        text: String,
    },
    /// A refusal.
    Refusal {
        /// The refusal text.
        refusal: String,
    },
}

impl OutputContent {
    /// An `output_text` part with `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Self::OutputText {
            annotations: Vec::new(),
            logprobs: Vec::new(),
            text: text.into(),
        }
    }
}

/// An item of `output`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputItem {
    /// An assistant message.
    Message {
        /// Content parts.
        content: Vec<OutputContent>,
        /// Item id (`msg_<hex>`).
        id: String,
        /// Always `assistant`.
        role: String,
        /// Item state.
        status: ResponseStatus,
    },
    /// A function call.
    FunctionCall {
        /// Arguments as a JSON string.
        arguments: String,
        /// Call id.
        call_id: String,
        /// Function name.
        name: String,
        /// Item id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Item state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<ResponseStatus>,
    },
    /// Reasoning summary and text (shape kept opaque).
    Reasoning {
        /// Item id.
        id: String,
        /// Summary parts.
        #[serde(default)]
        summary: Vec<Value>,
        /// Reasoning content parts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Vec<Value>>,
    },
}

/// `input_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensDetails {
    /// Prompt tokens served from the KV cache.
    pub cached_tokens: u32,
}

/// `output_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokensDetails {
    /// Tokens spent in reasoning.
    pub reasoning_tokens: u32,
}

/// Token accounting of a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseUsage {
    /// Prompt tokens.
    pub input_tokens: u32,
    /// Prompt breakdown.
    pub input_tokens_details: InputTokensDetails,
    /// Generated tokens.
    pub output_tokens: u32,
    /// Output breakdown.
    pub output_tokens_details: OutputTokensDetails,
    /// `input + output`.
    pub total_tokens: u32,
}

/// `incomplete_details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompleteDetails {
    /// `max_output_tokens` or `content_filter`.
    pub reason: String,
}

/// The response object (`object: "response"`), field order as the reference streams it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    /// Background mode.
    pub background: bool,
    /// Billing info.
    pub billing: Option<Value>,
    /// Conversation reference.
    pub conversation: Option<Value>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds when finished.
    pub completed_at: Option<u64>,
    /// Failure details.
    pub error: Option<Value>,
    /// `resp_<hex>`.
    pub id: String,
    /// Why the response is incomplete.
    pub incomplete_details: Option<IncompleteDetails>,
    /// Echo of the request's instructions.
    pub instructions: Option<Value>,
    /// Echo of the generation limit.
    pub max_output_tokens: Option<u32>,
    /// Echo of the tool-call limit.
    pub max_tool_calls: Option<u32>,
    /// Echo of the request metadata (`{}` when none).
    pub metadata: Value,
    /// The served model name.
    pub model: String,
    /// Always `response`.
    pub object: String,
    /// Output items.
    pub output: Vec<OutputItem>,
    /// Echo of `parallel_tool_calls`.
    pub parallel_tool_calls: bool,
    /// Echo of `previous_response_id`.
    pub previous_response_id: Option<String>,
    /// Prompt template reference.
    pub prompt: Option<Value>,
    /// Prompt cache key.
    pub prompt_cache_key: Option<String>,
    /// Prompt cache retention.
    pub prompt_cache_retention: Option<String>,
    /// Echo of the reasoning configuration.
    pub reasoning: Option<Value>,
    /// Safety identifier.
    pub safety_identifier: Option<String>,
    /// Service tier.
    pub service_tier: Option<String>,
    /// State.
    pub status: ResponseStatus,
    /// Echo of the temperature.
    pub temperature: Option<f32>,
    /// Echo of the text configuration.
    pub text: Value,
    /// Echo of the tool choice.
    pub tool_choice: Value,
    /// Echo of the tools.
    pub tools: Vec<Value>,
    /// Echo of `top_logprobs`.
    pub top_logprobs: Option<u8>,
    /// Echo of `top_p`.
    pub top_p: Option<f32>,
    /// Echo of the truncation strategy.
    pub truncation: Option<String>,
    /// Token accounting (`null` until finished).
    pub usage: Option<ResponseUsage>,
    /// Echo of the presence penalty.
    pub presence_penalty: f32,
    /// Echo of the frequency penalty.
    pub frequency_penalty: f32,
    /// Echo of `store`.
    pub store: bool,
}

impl ResponseObject {
    /// An in-progress response with the reference frontend's defaults for every echo field.
    pub fn new(id: impl Into<String>, model: impl Into<String>, created_at: u64) -> Self {
        Self {
            background: false,
            billing: None,
            conversation: None,
            created_at,
            completed_at: None,
            error: None,
            id: id.into(),
            incomplete_details: None,
            instructions: None,
            max_output_tokens: None,
            max_tool_calls: None,
            metadata: Value::Object(serde_json::Map::new()),
            model: model.into(),
            object: "response".to_owned(),
            output: Vec::new(),
            parallel_tool_calls: true,
            previous_response_id: None,
            prompt: None,
            prompt_cache_key: None,
            prompt_cache_retention: None,
            reasoning: None,
            safety_identifier: None,
            service_tier: Some("auto".to_owned()),
            status: ResponseStatus::InProgress,
            temperature: Some(1.0),
            text: serde_json::json!({"format": {"type": "text"}}),
            tool_choice: Value::String("auto".to_owned()),
            tools: Vec::new(),
            top_logprobs: Some(0),
            top_p: Some(1.0),
            truncation: Some("disabled".to_owned()),
            usage: None,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            store: false,
        }
    }
}
