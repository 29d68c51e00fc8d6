//! Root-level request extensions shared by chat and completions (vLLM-style sampling knobs,
//! guided decoding) and the passthrough extras that Dynamo accepts at the top level.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Root-level extensions flattened into chat and completions requests.
///
/// Fields of the same name in `nvext` are not accepted by Dynamo 1.6.1; these are the only
/// place they can be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommonExt {
    /// Keep generating past EOS until `max_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    /// Generate at least this many tokens before honoring stop conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens: Option<u32>,
    /// Sample from the `top_k` most likely tokens (`-1` or `0`: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i32>,
    /// Minimum probability relative to the most likely token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f32>,
    /// Multiplicative repetition penalty (1 = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f32>,
    /// Keep a matched stop string in the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_stop_str_in_output: Option<bool>,
    /// Guided decoding: output must match this JSON schema (string or object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guided_json: Option<Value>,
    /// Guided decoding: output must match this regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guided_regex: Option<String>,
    /// Guided decoding: output must match this context-free grammar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guided_grammar: Option<String>,
    /// Guided decoding: output must be one of these strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guided_choice: Option<Vec<String>>,
    /// Guided decoding backend name (e.g. `xgrammar`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guided_decoding_backend: Option<String>,
    /// Whitespace pattern for guided JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guided_whitespace_pattern: Option<String>,
    /// Drop special tokens from decoded text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_special_tokens: Option<bool>,
    /// Number of log-probabilities to return per prompt token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_logprobs: Option<u32>,
    /// Append the assistant generation prompt when rendering the chat template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_generation_prompt: Option<bool>,
    /// Continue the final (assistant) message instead of starting a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_final_message: Option<bool>,
}

/// Top-level fields that are not OpenAI parameters but are accepted and forwarded to the
/// worker (`extra_args`) instead of being reported as unsupported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PassthroughExt {
    /// KV-hash salt / cache namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_salt: Option<String>,
    /// Extra token ids that end generation (at most 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_token_ids: Option<Vec<u32>>,
    /// Whether the worker should detokenize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detokenize: Option<bool>,
    /// Restrict sampling to these token ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_token_ids: Option<Vec<u32>>,
    /// Token sequences that must not be generated (engine-specific shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_words_token_ids: Option<Value>,
    /// Token ids whose log-probabilities are always returned (engine-specific shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprob_token_ids: Option<Value>,
}

impl PassthroughExt {
    /// The set fields as a JSON object, for the worker's `extra_args`; `None` when none is set.
    pub fn to_extra_args(&self) -> Option<serde_json::Map<String, Value>> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) if !map.is_empty() => Some(map),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passthrough_extra_args_lists_only_set_fields() {
        let ext = PassthroughExt {
            cache_salt: Some("s".into()),
            ..PassthroughExt::default()
        };
        let args = ext.to_extra_args().unwrap();
        assert_eq!(args.len(), 1);
        assert_eq!(args["cache_salt"], "s");
        assert!(PassthroughExt::default().to_extra_args().is_none());
    }
}
