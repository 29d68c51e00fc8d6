//! The chat completions request (`POST /v1/chat/completions`).
//!
//! The request is laid out like Dynamo's: the OpenAI fields, the common extensions and the
//! passthrough extras are flattened parts; `nvext` and the chat-only extensions are direct
//! fields; every other top-level key lands in [`ChatCompletionRequest::unsupported`] and is
//! reported by validation. This layout makes serde's error messages (including the line and
//! column) the same as the reference frontend's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Stop, StreamOptions};
use super::ext::{CommonExt, PassthroughExt};
use super::messages::ChatMessage;
use super::tools::{ResponseFormat, Tool, ToolChoice};
use crate::nvext::NvExt;

/// The OpenAI parameters of a chat request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionParams {
    /// The conversation (must not be empty).
    pub messages: Vec<ChatMessage>,
    /// The served model name.
    pub model: String,
    /// Store the completion (accepted, ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Reasoning effort for reasoning models (`low`, `medium`, `high`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// Free-form client metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Penalty on tokens by their frequency so far, in [-2, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Bias per token id (as a string key), in [-100, 100].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<BTreeMap<String, f32>>,
    /// Return log-probabilities of the generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// Number of alternatives per position, in [0, 20].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u8>,
    /// Deprecated spelling of `max_completion_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Maximum number of generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Number of choices, in [1, 128].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u8>,
    /// Output modalities (accepted, text only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modalities: Option<Vec<String>>,
    /// Predicted output (accepted, ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Value>,
    /// Audio output options (accepted, ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Value>,
    /// Penalty on tokens already present, in [-2, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Output format constraint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Service tier (accepted, ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Stop strings (at most 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Stream the answer as SSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Sampling temperature, in [0, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Tools the model may call (at most 1536).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Whether and which tool to call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Allow several tool calls in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Deprecated function-call control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<Value>,
    /// Deprecated function list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub functions: Option<Value>,
    /// Web search options (accepted, ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_search_options: Option<Value>,
}

/// A chat completions request with Dynamo's extensions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(expecting = "struct NvCreateChatCompletionRequest")]
pub struct ChatCompletionRequest {
    /// The OpenAI parameters.
    #[serde(flatten)]
    pub inner: ChatCompletionParams,
    /// Root-level sampling and decoding extensions.
    #[serde(flatten)]
    pub common: CommonExt,
    /// Root-level extras forwarded to the worker.
    #[serde(flatten)]
    pub passthrough: PassthroughExt,
    /// NVIDIA extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvext: Option<NvExt>,
    /// Extra variables for the chat template (alias `chat_template_kwargs`).
    #[serde(
        default,
        alias = "chat_template_kwargs",
        skip_serializing_if = "Option::is_none"
    )]
    pub chat_template_args: Option<Map<String, Value>>,
    /// Media decoding options forwarded to the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_io_kwargs: Option<Value>,
    /// OpenAI-style thinking control.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
    /// Thinking token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_token_budget: Option<u32>,
    /// Return logprob tokens as `token_id:<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_tokens_as_token_ids: Option<bool>,
    /// Every other top-level key; non-empty means "Unsupported parameter(s)".
    #[serde(flatten)]
    pub unsupported: Map<String, Value>,
}

impl ChatCompletionRequest {
    /// A request for `model` with `messages` and nothing else set.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            inner: ChatCompletionParams {
                messages,
                model: model.into(),
                ..ChatCompletionParams::default()
            },
            ..Self::default()
        }
    }

    /// The generation limit: `max_completion_tokens`, else `max_tokens`.
    pub fn max_tokens(&self) -> Option<u32> {
        self.inner.max_completion_tokens.or(self.inner.max_tokens)
    }

    /// Whether the answer is streamed.
    pub fn is_stream(&self) -> bool {
        self.inner.stream.unwrap_or(false)
    }

    /// Whether the stream ends with a usage chunk.
    pub fn include_usage(&self) -> bool {
        self.inner
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }

    /// Whether every chunk carries the running usage.
    pub fn continuous_usage_stats(&self) -> bool {
        self.inner
            .stream_options
            .as_ref()
            .is_some_and(|o| o.continuous_usage_stats)
    }

    /// Number of choices (default 1).
    pub fn n(&self) -> u8 {
        self.inner.n.unwrap_or(1)
    }

    /// The stop strings (empty when none).
    pub fn stop_strings(&self) -> Vec<String> {
        self.inner
            .stop
            .as_ref()
            .map(Stop::to_vec)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_request_parses_into_its_parts() {
        let req: ChatCompletionRequest = serde_json::from_str(
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":8,
                "temperature":0.7,"top_k":20,"min_p":0.05,"ignore_eos":true,"cache_salt":"s",
                "chat_template_kwargs":{"enable_thinking":false},"nvext":{"greed_sampling":true},
                "stream":true,"stream_options":{"include_usage":true},"stop":"x"}"#,
        )
        .unwrap();
        assert_eq!(req.inner.model, "m");
        assert_eq!(req.max_tokens(), Some(8));
        assert_eq!(req.common.top_k, Some(20));
        assert_eq!(req.common.ignore_eos, Some(true));
        assert_eq!(req.passthrough.cache_salt.as_deref(), Some("s"));
        assert_eq!(
            req.chat_template_args.as_ref().unwrap()["enable_thinking"],
            false
        );
        assert!(req.is_stream() && req.include_usage());
        assert_eq!(req.stop_strings(), vec!["x"]);
        assert!(req.unsupported.is_empty());
    }

    #[test]
    fn unknown_keys_are_captured() {
        let req: ChatCompletionRequest =
            serde_json::from_str(r#"{"model":"m","messages":[],"bogus_field":1,"other":{"a":2}}"#)
                .unwrap();
        let keys: Vec<_> = req.unsupported.keys().cloned().collect();
        assert_eq!(keys, vec!["bogus_field", "other"]);
    }

    #[test]
    fn max_completion_tokens_wins_over_max_tokens() {
        let mut req = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")]);
        req.inner.max_tokens = Some(4);
        req.inner.max_completion_tokens = Some(9);
        assert_eq!(req.max_tokens(), Some(9));
        assert_eq!(req.n(), 1);
    }

    #[test]
    fn serializes_flat() {
        let mut req = ChatCompletionRequest::new("m", vec![ChatMessage::user("hi")]);
        req.common.min_tokens = Some(2);
        let json = serde_json::to_value(&req).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"messages":[{"role":"user","content":"hi"}],"model":"m","min_tokens":2})
        );
        let back: ChatCompletionRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, req);
    }
}
