//! `POST /v1/responses` and `POST /v1/responses/input_tokens` requests.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::nvext::NvExt;
use crate::openai::{MAX_TOKENS_LIMIT, Validate, ValidationError, ValidationOptions};

/// A content part of an input message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InputContentPart {
    /// User or system text.
    InputText {
        /// The text.
        text: String,
    },
    /// Assistant text from a previous turn.
    OutputText {
        /// The text.
        text: String,
    },
    /// An image.
    InputImage {
        /// `http(s)://` or `data:` URL.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image_url: Option<String>,
        /// `low`, `high` or `auto`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// Input message content: a string or parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputContent {
    /// Plain text.
    Text(String),
    /// Typed parts.
    Parts(Vec<InputContentPart>),
}

impl InputContent {
    /// The text: the string itself, or the text parts concatenated.
    pub fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    InputContentPart::InputText { text }
                    | InputContentPart::OutputText { text } => Some(text.as_str()),
                    InputContentPart::InputImage { .. } => None,
                })
                .collect(),
        }
    }
}

/// A message of the input (`type: "message"` may be omitted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputMessage {
    /// `user`, `assistant`, `system` or `developer`.
    pub role: String,
    /// Content.
    pub content: InputContent,
}

/// An input item with an explicit `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TypedInputItem {
    /// A message.
    Message(InputMessage),
    /// A function call made by the model in a previous turn.
    FunctionCall {
        /// Call id.
        call_id: String,
        /// Function name.
        name: String,
        /// Arguments as a JSON string.
        arguments: String,
    },
    /// The result of a function call.
    FunctionCallOutput {
        /// The call it answers.
        call_id: String,
        /// The output.
        output: String,
    },
}

/// One input item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputItem {
    /// An item with a `type`.
    Typed(TypedInputItem),
    /// A bare `{role, content}` message.
    Message(InputMessage),
}

/// `input`: a string or items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResponseInput {
    /// One user message.
    Text(String),
    /// Conversation items.
    Items(Vec<InputItem>),
}

/// A tool of a Responses request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseTool {
    /// A function tool (flat: name and schema at the top level).
    Function {
        /// Function name.
        name: String,
        /// What it does.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// JSON schema of the arguments.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameters: Option<Value>,
        /// Enforce the schema strictly.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

/// A Responses request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponsesRequest {
    /// The served model name.
    pub model: String,
    /// The input.
    pub input: ResponseInput,
    /// System instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Generation limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Alternatives per position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u8>,
    /// Stream as named SSE events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ResponseTool>>,
    /// Tool choice (`"auto"`, `"none"`, `"required"` or an object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Allow several tool calls in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Client metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Text output configuration (`{"format":{"type":"text"}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<Value>,
    /// Reasoning configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Value>,
    /// Previous response to continue (accepted; not stored server-side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
    /// Store the response (accepted, ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Truncation strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncation: Option<String>,
    /// Chat-template variables (alias `chat_template_kwargs`).
    #[serde(
        default,
        alias = "chat_template_kwargs",
        skip_serializing_if = "Option::is_none"
    )]
    pub chat_template_args: Option<Map<String, Value>>,
    /// Reasoning token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_token_budget: Option<u32>,
    /// NVIDIA extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvext: Option<NvExt>,
}

impl ResponsesRequest {
    /// Whether the answer is streamed.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
}

fn out_of_range(
    name: &'static str,
    min: &'static str,
    max: &'static str,
    got: String,
) -> ValidationError {
    ValidationError::OutOfRange {
        name,
        min,
        max,
        got,
    }
}

impl Validate for ResponsesRequest {
    fn validate(&self, _opts: &ValidationOptions) -> Result<(), ValidationError> {
        match &self.input {
            ResponseInput::Text(s) if s.is_empty() => return Err(ValidationError::EmptyInput),
            ResponseInput::Items(v) if v.is_empty() => return Err(ValidationError::EmptyInput),
            _ => {}
        }
        match self.max_output_tokens {
            Some(0) => return Err(ValidationError::MaxTokensZero(0)),
            Some(n) if n > MAX_TOKENS_LIMIT => {
                return Err(ValidationError::MaxTokensTooLarge {
                    max: MAX_TOKENS_LIMIT,
                    got: n,
                });
            }
            _ => {}
        }
        if let Some(t) = self.temperature.filter(|t| !(0.0..=2.0).contains(t)) {
            return Err(out_of_range("Temperature", "0", "2", t.to_string()));
        }
        if let Some(p) = self.top_p.filter(|p| !(0.0..=1.0).contains(p)) {
            return Err(out_of_range("Top_p", "0", "1", p.to_string()));
        }
        if let Some(k) = self.top_logprobs.filter(|k| *k > 20) {
            return Err(out_of_range("Top_logprobs", "0", "20", k.to_string()));
        }
        Ok(())
    }
}

/// `POST /v1/responses/input_tokens` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokensResponse {
    /// Always `response.input_tokens`.
    pub object: String,
    /// Tokens of the rendered prompt.
    pub input_tokens: u32,
}

impl InputTokensResponse {
    /// The answer for `input_tokens`.
    pub fn new(input_tokens: u32) -> Self {
        Self {
            object: "response.input_tokens".to_owned(),
            input_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_requests_parse() {
        let items: ResponsesRequest = serde_json::from_str(
            r#"{"model": "m", "max_output_tokens": 5, "instructions": "Be brief.", "input": [{"role": "user", "content": "Hello"}]}"#,
        )
        .unwrap();
        let ResponseInput::Items(items) = &items.input else {
            panic!("expected items");
        };
        assert!(matches!(&items[0], InputItem::Message(m) if m.content.text() == "Hello"));
        let tools: ResponsesRequest = serde_json::from_str(
            r#"{"model": "m", "input": "Weather in Paris?", "max_output_tokens": 8, "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]}"#,
        )
        .unwrap();
        assert_eq!(tools.tools.unwrap().len(), 1);
        let typed: ResponseInput = serde_json::from_str(
            r#"[{"type":"message","role":"user","content":[{"type":"input_text","text":"a"}]},
                {"type":"function_call","call_id":"c","name":"f","arguments":"{}"},
                {"type":"function_call_output","call_id":"c","output":"ok"}]"#,
        )
        .unwrap();
        let ResponseInput::Items(typed) = typed else {
            panic!("expected items");
        };
        assert!(matches!(
            typed[2],
            InputItem::Typed(TypedInputItem::FunctionCallOutput { .. })
        ));
        assert_eq!(
            serde_json::to_string(&InputTokensResponse::new(6)).unwrap(),
            r#"{"object":"response.input_tokens","input_tokens":6}"#
        );
    }
}
