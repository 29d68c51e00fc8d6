//! Semantic validation of OpenAI requests: ranges, limits, tool-choice sanity and unknown
//! top-level fields. Messages match Dynamo 1.6.1's wording (the HTTP layer prefixes them with
//! `Validation: `).

use std::collections::BTreeMap;

use super::chat::ChatCompletionRequest;
use super::common::Stop;
use super::completions::{CompletionRequest, Prompt};
use super::embeddings::{EmbeddingInput, EmbeddingRequest};
use super::ext::{CommonExt, PassthroughExt};
use super::tools::{Tool, ToolChoice, ToolChoiceMode};

/// Largest accepted `max_tokens` / `max_completion_tokens`.
pub const MAX_TOKENS_LIMIT: u32 = 1_048_576;
/// Most stop strings (and most `stop_token_ids`) a request may carry.
pub const MAX_STOP_SEQUENCES: usize = 32;
/// Most tools a request may carry.
pub const MAX_TOOLS: usize = 1536;
/// Longest function name, in characters.
pub const MAX_FUNCTION_NAME_LEN: usize = 128;

/// A semantic problem with a request. `Display` is the message after `Validation: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Top-level keys that no part of the request knows.
    #[error("Unsupported parameter(s): {}", quoted_list(.0))]
    UnsupportedParameters(Vec<String>),
    /// `messages` is `[]`.
    #[error("The 'messages' field cannot be empty. At least one message is required.")]
    EmptyMessages,
    /// `prompt` is `""`.
    #[error("Prompt string cannot be empty")]
    EmptyPrompt,
    /// `prompt` is `[]` (or contains an empty token list).
    #[error("Prompt array cannot be empty")]
    EmptyPromptArray,
    /// Embedding `input` is empty.
    #[error("Input cannot be empty")]
    EmptyInput,
    /// A numeric parameter outside its range.
    #[error("{name} must be between {min} and {max}, got {got}")]
    OutOfRange {
        /// Parameter name as Dynamo capitalizes it (`Temperature`, `Top_p`, `n`).
        name: &'static str,
        /// Lower bound.
        min: &'static str,
        /// Upper bound.
        max: &'static str,
        /// The value sent.
        got: String,
    },
    /// `max_tokens` is 0.
    #[error("Max tokens must be greater than 0, got {0}")]
    MaxTokensZero(u32),
    /// `max_tokens` is over [`MAX_TOKENS_LIMIT`].
    #[error("Max tokens must not exceed {max}, got {got}")]
    MaxTokensTooLarge {
        /// The limit.
        max: u32,
        /// The value sent.
        got: u32,
    },
    /// A list parameter with too many entries.
    #[error("{what} must not contain more than {max} entries, got {got}")]
    TooMany {
        /// What the list is (`Stop sequences`, `Tools`).
        what: &'static str,
        /// The limit.
        max: usize,
        /// The length sent.
        got: usize,
    },
    /// A tool's function name is too long.
    #[error("Function name must not exceed {max} characters, got {got}")]
    FunctionNameTooLong {
        /// The limit.
        max: usize,
        /// The length sent.
        got: usize,
    },
    /// A `logit_bias` value outside [-100, 100].
    #[error("Logit bias for token {token} must be between -100 and 100, got {got}")]
    LogitBiasOutOfRange {
        /// The token key.
        token: String,
        /// The value sent.
        got: String,
    },
    /// `tool_choice: "required"` without tools.
    #[error("tool_choice is \"required\" but tools is empty")]
    ToolChoiceRequiredWithoutTools,
    /// `tool_choice` names a function that is not in `tools`.
    #[error("tool named \"{0}\" in tool_choice is not present in tools")]
    ToolChoiceUnknownFunction(String),
}

fn quoted_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Knobs of validation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidationOptions {
    /// Accept unknown top-level fields instead of rejecting them
    /// (`DYN_IGNORE_OPENAI_FE_UNSUPPORTED_FIELDS`).
    pub ignore_unsupported_fields: bool,
}

/// A request that can check itself.
pub trait Validate {
    /// The first problem found, in a fixed order.
    fn validate(&self, opts: &ValidationOptions) -> Result<(), ValidationError>;
}

type Check = Result<(), ValidationError>;

fn range<T: PartialOrd + ToString>(
    name: &'static str,
    v: Option<T>,
    min: T,
    max: T,
    bounds: (&'static str, &'static str),
) -> Check {
    match v {
        Some(x) if !(min..=max).contains(&x) => Err(ValidationError::OutOfRange {
            name,
            min: bounds.0,
            max: bounds.1,
            got: x.to_string(),
        }),
        _ => Ok(()),
    }
}

fn unsupported(
    extra: &serde_json::Map<String, serde_json::Value>,
    opts: ValidationOptions,
) -> Check {
    if extra.is_empty() || opts.ignore_unsupported_fields {
        return Ok(());
    }
    // Sorted explicitly: the map's own order depends on serde_json's `preserve_order`
    // feature, which other crates of a workspace may turn on.
    let mut keys: Vec<String> = extra.keys().cloned().collect();
    keys.sort_unstable();
    Err(ValidationError::UnsupportedParameters(keys))
}

fn max_tokens(v: Option<u32>) -> Check {
    match v {
        Some(0) => Err(ValidationError::MaxTokensZero(0)),
        Some(x) if x > MAX_TOKENS_LIMIT => Err(ValidationError::MaxTokensTooLarge {
            max: MAX_TOKENS_LIMIT,
            got: x,
        }),
        _ => Ok(()),
    }
}

fn sampling(
    temperature: Option<f32>,
    top_p: Option<f32>,
    frequency: Option<f32>,
    presence: Option<f32>,
) -> Check {
    range("Temperature", temperature, 0.0, 2.0, ("0", "2"))?;
    range("Top_p", top_p, 0.0, 1.0, ("0", "1"))?;
    range("Frequency_penalty", frequency, -2.0, 2.0, ("-2", "2"))?;
    range("Presence_penalty", presence, -2.0, 2.0, ("-2", "2"))
}

fn stops(stop: Option<&Stop>) -> Check {
    match stop {
        Some(s) if s.len() > MAX_STOP_SEQUENCES => Err(ValidationError::TooMany {
            what: "Stop sequences",
            max: MAX_STOP_SEQUENCES,
            got: s.len(),
        }),
        _ => Ok(()),
    }
}

fn logit_bias(bias: Option<&BTreeMap<String, f32>>) -> Check {
    for (token, v) in bias.into_iter().flatten() {
        if !(-100.0..=100.0).contains(v) {
            return Err(ValidationError::LogitBiasOutOfRange {
                token: token.clone(),
                got: v.to_string(),
            });
        }
    }
    Ok(())
}

fn common(ext: &CommonExt, passthrough: &PassthroughExt) -> Check {
    range("Min_p", ext.min_p, 0.0, 1.0, ("0", "1"))?;
    range(
        "Repetition_penalty",
        ext.repetition_penalty,
        0.0,
        2.0,
        ("0", "2"),
    )?;
    match passthrough.stop_token_ids.as_ref() {
        Some(ids) if ids.len() > MAX_STOP_SEQUENCES => Err(ValidationError::TooMany {
            what: "Stop token ids",
            max: MAX_STOP_SEQUENCES,
            got: ids.len(),
        }),
        _ => Ok(()),
    }
}

fn tools(tools: Option<&[Tool]>, choice: Option<&ToolChoice>) -> Check {
    let tools = tools.unwrap_or_default();
    if tools.len() > MAX_TOOLS {
        return Err(ValidationError::TooMany {
            what: "Tools",
            max: MAX_TOOLS,
            got: tools.len(),
        });
    }
    for tool in tools {
        let len = tool.function.name.chars().count();
        if len > MAX_FUNCTION_NAME_LEN {
            return Err(ValidationError::FunctionNameTooLong {
                max: MAX_FUNCTION_NAME_LEN,
                got: len,
            });
        }
    }
    match choice {
        Some(ToolChoice::Mode(ToolChoiceMode::Required)) if tools.is_empty() => {
            Err(ValidationError::ToolChoiceRequiredWithoutTools)
        }
        Some(ToolChoice::Named(named))
            if !tools.iter().any(|t| t.function.name == named.function.name) =>
        {
            Err(ValidationError::ToolChoiceUnknownFunction(
                named.function.name.clone(),
            ))
        }
        _ => Ok(()),
    }
}

impl Validate for ChatCompletionRequest {
    fn validate(&self, opts: &ValidationOptions) -> Result<(), ValidationError> {
        unsupported(&self.unsupported, *opts)?;
        let r = &self.inner;
        if r.messages.is_empty() {
            return Err(ValidationError::EmptyMessages);
        }
        max_tokens(r.max_tokens)?;
        max_tokens(r.max_completion_tokens)?;
        sampling(
            r.temperature,
            r.top_p,
            r.frequency_penalty,
            r.presence_penalty,
        )?;
        range("n", r.n, 1, 128, ("1", "128"))?;
        range("Top_logprobs", r.top_logprobs, 0, 20, ("0", "20"))?;
        logit_bias(r.logit_bias.as_ref())?;
        stops(r.stop.as_ref())?;
        tools(r.tools.as_deref(), r.tool_choice.as_ref())?;
        common(&self.common, &self.passthrough)
    }
}

impl Validate for CompletionRequest {
    fn validate(&self, opts: &ValidationOptions) -> Result<(), ValidationError> {
        unsupported(&self.unsupported, *opts)?;
        let r = &self.inner;
        match &r.prompt {
            Prompt::Text(s) if s.is_empty() => return Err(ValidationError::EmptyPrompt),
            Prompt::TextBatch(v) if v.is_empty() => return Err(ValidationError::EmptyPromptArray),
            Prompt::TextBatch(v) if v.iter().any(String::is_empty) => {
                return Err(ValidationError::EmptyPrompt);
            }
            Prompt::Tokens(t) if t.is_empty() => return Err(ValidationError::EmptyPromptArray),
            Prompt::TokensBatch(v) if v.is_empty() || v.iter().any(Vec::is_empty) => {
                return Err(ValidationError::EmptyPromptArray);
            }
            _ => {}
        }
        max_tokens(r.max_tokens)?;
        sampling(
            r.temperature,
            r.top_p,
            r.frequency_penalty,
            r.presence_penalty,
        )?;
        range("n", r.n, 1, 128, ("1", "128"))?;
        range("Logprobs", r.logprobs, 0, 5, ("0", "5"))?;
        range("Best_of", r.best_of, 0, 20, ("0", "20"))?;
        logit_bias(r.logit_bias.as_ref())?;
        stops(r.stop.as_ref())?;
        common(&self.common, &self.passthrough)
    }
}

impl Validate for EmbeddingRequest {
    fn validate(&self, _opts: &ValidationOptions) -> Result<(), ValidationError> {
        let empty = match &self.input {
            EmbeddingInput::Text(s) => s.is_empty(),
            EmbeddingInput::TextBatch(v) => v.is_empty() || v.iter().any(String::is_empty),
            EmbeddingInput::Tokens(t) => t.is_empty(),
            EmbeddingInput::TokensBatch(v) => v.is_empty() || v.iter().any(Vec::is_empty),
        };
        if empty {
            Err(ValidationError::EmptyInput)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::parse_request;

    fn chat_error(extra: &str) -> String {
        let body =
            format!(r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}]{extra}}}"#);
        parse_request::<ChatCompletionRequest>(body.as_bytes(), &ValidationOptions::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    fn completion_error(extra: &str) -> String {
        let body = format!(r#"{{"model":"m","prompt":"p"{extra}}}"#);
        parse_request::<CompletionRequest>(body.as_bytes(), &ValidationOptions::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn chat_ranges_and_limits() {
        let cases = [
            (
                r#","frequency_penalty":-3"#,
                "Frequency_penalty must be between -2 and 2, got -3",
            ),
            (
                r#","presence_penalty":2.5"#,
                "Presence_penalty must be between -2 and 2, got 2.5",
            ),
            (r#","min_p":1.5"#, "Min_p must be between 0 and 1, got 1.5"),
            (
                r#","repetition_penalty":3"#,
                "Repetition_penalty must be between 0 and 2, got 3",
            ),
            (r#","n":129"#, "n must be between 1 and 128, got 129"),
            (
                r#","max_completion_tokens":0"#,
                "Max tokens must be greater than 0, got 0",
            ),
            (
                r#","logit_bias":{"42":101}"#,
                "Logit bias for token 42 must be between -100 and 100, got 101",
            ),
            (
                r#","temperature":-0.5"#,
                "Temperature must be between 0 and 2, got -0.5",
            ),
        ];
        for (extra, message) in cases {
            assert_eq!(
                chat_error(extra),
                format!("Validation: {message}"),
                "{extra}"
            );
        }
    }

    #[test]
    fn boundaries_are_inclusive() {
        for extra in [
            r#","temperature":0,"top_p":1,"n":128,"top_logprobs":20"#,
            r#","temperature":2,"top_p":0,"n":1,"max_tokens":1048576"#,
            r#","frequency_penalty":-2,"presence_penalty":2,"logit_bias":{"1":-100}"#,
        ] {
            assert_eq!(chat_error(extra), "", "{extra}");
        }
    }

    #[test]
    fn list_limits() {
        let stops: Vec<String> = (0..33).map(|i| format!("\"s{i}\"")).collect();
        assert_eq!(
            chat_error(&format!(r#","stop":[{}]"#, stops.join(","))),
            "Validation: Stop sequences must not contain more than 32 entries, got 33"
        );
        assert_eq!(
            chat_error(&format!(r#","stop":[{}]"#, stops[..32].join(","))),
            ""
        );
        let ids: Vec<String> = (0..33).map(|i| i.to_string()).collect();
        assert_eq!(
            chat_error(&format!(r#","stop_token_ids":[{}]"#, ids.join(","))),
            "Validation: Stop token ids must not contain more than 32 entries, got 33"
        );
        let long = "f".repeat(129);
        assert_eq!(
            chat_error(&format!(
                r#","tools":[{{"type":"function","function":{{"name":"{long}"}}}}]"#
            )),
            "Validation: Function name must not exceed 128 characters, got 129"
        );
    }

    #[test]
    fn tool_choice_sanity() {
        let tools = r#","tools":[{"type":"function","function":{"name":"get_weather"}}]"#;
        assert_eq!(
            chat_error(&format!(r#"{tools},"tool_choice":"required""#)),
            ""
        );
        assert_eq!(
            chat_error(&format!(
                r#"{tools},"tool_choice":{{"type":"function","function":{{"name":"get_weather"}}}}"#
            )),
            ""
        );
        assert_eq!(chat_error(r#","tool_choice":"none""#), "");
        assert_eq!(
            chat_error(r#","tool_choice":{"type":"function","function":{"name":"f"}}"#),
            "Validation: tool named \"f\" in tool_choice is not present in tools"
        );
    }

    #[test]
    fn unsupported_parameters_are_listed_together() {
        assert_eq!(
            chat_error(r#","zeta":1,"alpha":2"#),
            "Validation: Unsupported parameter(s): `alpha`, `zeta`"
        );
    }

    #[test]
    fn completion_ranges_and_prompts() {
        assert_eq!(
            completion_error(r#","logprobs":6"#),
            "Validation: Logprobs must be between 0 and 5, got 6"
        );
        assert_eq!(
            completion_error(r#","best_of":21"#),
            "Validation: Best_of must be between 0 and 20, got 21"
        );
        assert_eq!(
            completion_error(r#","logprobs":5,"best_of":20,"echo":true"#),
            ""
        );
        for (prompt, message) in [
            ("[]", "Prompt array cannot be empty"),
            (r#"["a",""]"#, "Prompt string cannot be empty"),
            ("[[1],[]]", "Prompt array cannot be empty"),
        ] {
            let body = format!(r#"{{"model":"m","prompt":{prompt}}}"#);
            let err =
                parse_request::<CompletionRequest>(body.as_bytes(), &ValidationOptions::default())
                    .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("Validation: {message}"),
                "{prompt}"
            );
        }
    }

    #[test]
    fn embeddings_need_input() {
        let opts = ValidationOptions::default();
        assert!(parse_request::<EmbeddingRequest>(br#"{"model":"m","input":"x"}"#, &opts).is_ok());
        let err =
            parse_request::<EmbeddingRequest>(br#"{"model":"m","input":[]}"#, &opts).unwrap_err();
        assert_eq!(err.to_string(), "Validation: Input cannot be empty");
    }
}
