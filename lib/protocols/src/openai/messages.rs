//! Chat messages of a request: one variant per role, content as a string or a list of parts.

use serde::{Deserialize, Serialize};

use super::tools::{FunctionCall, ToolCall};

/// Message content: a plain string or a list of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Typed parts (text, images, audio, video).
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// The text of the content: the string itself, or the text parts concatenated.
    pub fn text(&self) -> String {
        match self {
            Self::Text(s) => s.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// An image reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// `http(s)://` or `data:` URL.
    pub url: String,
    /// `low`, `high` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Inline audio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAudio {
    /// Base64 audio data.
    pub data: String,
    /// `wav`, `mp3`, ...
    pub format: String,
}

/// A video reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoUrl {
    /// `http(s)://` or `data:` URL.
    pub url: String,
}

/// One typed part of a message's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    ImageUrl {
        /// The image.
        image_url: ImageUrl,
    },
    /// Inline audio.
    InputAudio {
        /// The audio.
        input_audio: InputAudio,
    },
    /// A video.
    VideoUrl {
        /// The video.
        video_url: VideoUrl,
    },
    /// A refusal (assistant history).
    Refusal {
        /// The refusal text.
        refusal: String,
    },
}

/// A system or developer message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemMessage {
    /// Instructions.
    pub content: MessageContent,
    /// Optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A user message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserMessage {
    /// What the user said.
    pub content: MessageContent,
    /// Optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An assistant message from the conversation history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// What the assistant said (`null` when it only called tools).
    #[serde(default)]
    pub content: Option<MessageContent>,
    /// Optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Tool calls the assistant made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Reasoning text of a previous turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// Deprecated single function call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
}

/// A tool result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolMessage {
    /// The tool's output.
    pub content: MessageContent,
    /// The call this answers.
    pub tool_call_id: String,
}

/// A function result (deprecated API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionMessage {
    /// The function's output.
    #[serde(default)]
    pub content: Option<String>,
    /// The function's name.
    pub name: String,
}

/// One message of `messages`, tagged by `role`.
///
/// The variant order is the order Dynamo lists the roles in its "unknown variant" error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum ChatMessage {
    /// `developer`: instructions that outrank the user's.
    Developer(SystemMessage),
    /// `system`: instructions.
    System(SystemMessage),
    /// `user`.
    User(UserMessage),
    /// `assistant`.
    Assistant(AssistantMessage),
    /// `tool`: a tool result.
    Tool(ToolMessage),
    /// `function`: a function result (deprecated).
    Function(FunctionMessage),
}

impl ChatMessage {
    /// The role name as it appears on the wire.
    pub fn role(&self) -> &'static str {
        match self {
            Self::Developer(_) => "developer",
            Self::System(_) => "system",
            Self::User(_) => "user",
            Self::Assistant(_) => "assistant",
            Self::Tool(_) => "tool",
            Self::Function(_) => "function",
        }
    }

    /// A user message with plain text.
    pub fn user(text: impl Into<String>) -> Self {
        Self::User(UserMessage {
            content: MessageContent::Text(text.into()),
            name: None,
        })
    }

    /// A system message with plain text.
    pub fn system(text: impl Into<String>) -> Self {
        Self::System(SystemMessage {
            content: MessageContent::Text(text.into()),
            name: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_strings_both_parse() {
        let msg: ChatMessage = serde_json::from_str(
            r#"{"role":"user","content":[{"type":"text","text":"Describe"},{"type":"text","text":" the sea."}]}"#,
        )
        .unwrap();
        let ChatMessage::User(user) = &msg else {
            panic!("expected a user message");
        };
        assert_eq!(user.content.text(), "Describe the sea.");
        assert_eq!(msg.role(), "user");
    }

    #[test]
    fn assistant_tool_call_history_round_trips() {
        let json = r#"{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]}"#;
        let msg: ChatMessage = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_string(&msg).unwrap(), json);
    }

    #[test]
    fn unknown_role_lists_roles_in_reference_order() {
        let err = serde_json::from_str::<ChatMessage>(r#"{"role":"wizard","content":"hi"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "unknown variant `wizard`, expected one of `developer`, `system`, `user`, \
                 `assistant`, `tool`, `function`"
            ),
            "{err}"
        );
    }
}
