//! The legacy completions request (`POST /v1/completions`).
//!
//! Laid out like [`crate::openai::ChatCompletionRequest`]: flattened OpenAI parameters,
//! common extensions and passthrough extras, direct `nvext`, and a catch-all for unknown keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{Stop, StreamOptions};
use super::ext::{CommonExt, PassthroughExt};
use crate::nvext::NvExt;

/// `prompt`: text or token ids, single or batched.
///
/// The type keeps the name `Prompt` because serde names it in the "did not match any variant
/// of untagged enum Prompt" error that clients see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// One text prompt.
    Text(String),
    /// A batch of text prompts.
    TextBatch(Vec<String>),
    /// One pre-tokenized prompt.
    Tokens(Vec<u32>),
    /// A batch of pre-tokenized prompts.
    TokensBatch(Vec<Vec<u32>>),
}

/// One prompt of a (possibly batched) [`Prompt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptItem<'a> {
    /// Text.
    Text(&'a str),
    /// Token ids.
    Tokens(&'a [u32]),
}

impl Prompt {
    /// The prompts of the batch in order (one for the unbatched forms).
    pub fn items(&self) -> Vec<PromptItem<'_>> {
        match self {
            Self::Text(s) => vec![PromptItem::Text(s)],
            Self::TextBatch(v) => v.iter().map(|s| PromptItem::Text(s)).collect(),
            Self::Tokens(t) => vec![PromptItem::Tokens(t)],
            Self::TokensBatch(v) => v.iter().map(|t| PromptItem::Tokens(t)).collect(),
        }
    }

    /// Number of prompts in the batch.
    pub fn batch_size(&self) -> usize {
        match self {
            Self::Text(_) | Self::Tokens(_) => 1,
            Self::TextBatch(v) => v.len(),
            Self::TokensBatch(v) => v.len(),
        }
    }
}

/// The OpenAI parameters of a completions request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionParams {
    /// The served model name.
    pub model: String,
    /// The prompt(s).
    pub prompt: Prompt,
    /// Text after the completion (accepted; used by fill-in-the-middle models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Maximum number of generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, in [0, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, in [0, 1].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Number of choices per prompt, in [1, 128].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u8>,
    /// Stream the answer as SSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Streaming options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Number of log-probabilities per position, in [0, 5].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u8>,
    /// Prepend the prompt to the completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    /// Stop strings (at most 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Penalty on tokens already present, in [-2, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Penalty on tokens by their frequency so far, in [-2, 2].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Candidates generated server-side, in [0, 20].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_of: Option<u8>,
    /// Bias per token id (as a string key), in [-100, 100].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bias: Option<BTreeMap<String, f32>>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
}

/// A completions request with Dynamo's extensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(expecting = "struct NvCreateCompletionRequest")]
pub struct CompletionRequest {
    /// The OpenAI parameters.
    #[serde(flatten)]
    pub inner: CompletionParams,
    /// Root-level sampling and decoding extensions.
    #[serde(flatten)]
    pub common: CommonExt,
    /// Root-level extras forwarded to the worker.
    #[serde(flatten)]
    pub passthrough: PassthroughExt,
    /// NVIDIA extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvext: Option<NvExt>,
    /// Free-form client metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Keep matched stop strings and stop/EOS tokens in the text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_stop_trim: Option<bool>,
    /// Return logprob tokens as `token_id:<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_tokens_as_token_ids: Option<bool>,
    /// Every other top-level key; non-empty means "Unsupported parameter(s)".
    #[serde(flatten)]
    pub unsupported: Map<String, Value>,
}

impl CompletionRequest {
    /// A request for `model` with `prompt` and nothing else set.
    pub fn new(model: impl Into<String>, prompt: Prompt) -> Self {
        Self {
            inner: CompletionParams {
                model: model.into(),
                prompt,
                suffix: None,
                max_tokens: None,
                temperature: None,
                top_p: None,
                n: None,
                stream: None,
                stream_options: None,
                logprobs: None,
                echo: None,
                stop: None,
                presence_penalty: None,
                frequency_penalty: None,
                best_of: None,
                logit_bias: None,
                user: None,
                seed: None,
            },
            common: CommonExt::default(),
            passthrough: PassthroughExt::default(),
            nvext: None,
            metadata: None,
            no_stop_trim: None,
            return_tokens_as_token_ids: None,
            unsupported: Map::new(),
        }
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

    /// Number of choices per prompt (default 1).
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

    fn prompt_of(json: &str) -> Prompt {
        let req: CompletionRequest =
            serde_json::from_str(&format!(r#"{{"model":"m","prompt":{json}}}"#)).unwrap();
        req.inner.prompt
    }

    #[test]
    fn all_four_prompt_forms_parse() {
        assert_eq!(prompt_of(r#""hi""#), Prompt::Text("hi".into()));
        assert_eq!(
            prompt_of(r#"["a","b"]"#),
            Prompt::TextBatch(vec!["a".into(), "b".into()])
        );
        assert_eq!(prompt_of("[9707]"), Prompt::Tokens(vec![9707]));
        assert_eq!(
            prompt_of("[[9707],[10134]]"),
            Prompt::TokensBatch(vec![vec![9707], vec![10134]])
        );
        assert_eq!(prompt_of("[[1],[2],[3]]").batch_size(), 3);
        assert_eq!(
            prompt_of(r#"["a","b"]"#).items(),
            vec![PromptItem::Text("a"), PromptItem::Text("b")]
        );
    }

    #[test]
    fn wrong_prompt_type_names_the_enum() {
        let err = serde_json::from_str::<CompletionRequest>(
            r#"{"model": "qwen2.5-0.5b-mock", "prompt": {"a": 1}, "max_tokens": 4}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "data did not match any variant of untagged enum Prompt at line 1 column 67"
        );
    }

    #[test]
    fn extensions_and_unknowns_are_split() {
        let req: CompletionRequest = serde_json::from_str(
            r#"{"model":"m","prompt":"p","echo":true,"ignore_eos":true,"no_stop_trim":true,"x":1}"#,
        )
        .unwrap();
        assert_eq!(req.inner.echo, Some(true));
        assert_eq!(req.common.ignore_eos, Some(true));
        assert_eq!(req.no_stop_trim, Some(true));
        assert_eq!(req.unsupported.len(), 1);
        assert_eq!(req.n(), 1);
        assert!(!req.is_stream());
    }
}
