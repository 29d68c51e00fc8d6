//! Anthropic Messages requests (`POST /v1/messages`, `POST /v1/messages/count_tokens`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Prompt-caching hint on a block (`{"type":"ephemeral","ttl":"5m"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheControl {
    /// Always `ephemeral`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Retention (`5m`, `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// A content block of a request message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// Prompt-caching hint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// An image (`source` kept opaque: base64 or URL).
    Image {
        /// The image source.
        source: Value,
        /// Prompt-caching hint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    /// A tool call made by the assistant.
    ToolUse {
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Arguments.
        input: Value,
    },
    /// A tool result sent by the user.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// Result: a string or blocks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<Value>,
        /// The tool failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
    },
    /// Reasoning of a previous turn.
    Thinking {
        /// Reasoning text.
        thinking: String,
        /// Integrity signature.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
}

/// Message content: a string or blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Content blocks.
    Blocks(Vec<ContentBlock>),
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageRole {
    /// The user.
    User,
    /// The model.
    Assistant,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: MessageRole,
    /// Content.
    pub content: MessageContent,
}

/// `system`: a string or text blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SystemPrompt {
    /// Plain text.
    Text(String),
    /// Text blocks (may carry cache control).
    Blocks(Vec<ContentBlock>),
}

/// A tool definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Tool name.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the input.
    pub input_schema: Value,
    /// Prompt-caching hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto {
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call some tool.
    Any {
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// The model must call this tool.
    Tool {
        /// Tool name.
        name: String,
        /// At most one tool call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    /// No tool calls.
    None,
}

/// A Messages request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The served model name.
    pub model: String,
    /// Generation limit (required by the API).
    pub max_tokens: u32,
    /// The conversation.
    pub messages: Vec<Message>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// Stop strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    /// Stream as named SSE events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Top-k sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    /// Tool choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Client metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Extended thinking configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Value>,
}

impl MessagesRequest {
    /// Whether the answer is streamed.
    pub fn is_stream(&self) -> bool {
        self.stream.unwrap_or(false)
    }
}

/// A token-count request: a Messages request without generation parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountTokensRequest {
    /// The served model name.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// System prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// Tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
}

/// The token-count answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountTokensResponse {
    /// Tokens of the rendered prompt.
    pub input_tokens: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_requests_parse() {
        let tools: MessagesRequest = serde_json::from_str(
            r#"{"model": "qwen2.5-0.5b-mock", "max_tokens": 8, "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}], "tool_choice": {"type": "auto"}}"#,
        )
        .unwrap();
        assert_eq!(tools.tools.as_ref().unwrap()[0].name, "get_weather");
        assert_eq!(
            tools.tool_choice,
            Some(ToolChoice::Auto {
                disable_parallel_tool_use: None
            })
        );
        let blocks: MessagesRequest = serde_json::from_str(
            r#"{"model": "m", "max_tokens": 5, "system": "Be brief.", "stop_sequences": ["."], "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(blocks.system, Some(SystemPrompt::Text("Be brief.".into())));
        assert!(!blocks.is_stream());
    }
}
