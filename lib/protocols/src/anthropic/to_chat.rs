//! Messages request → chat request: the frontend serves `/v1/messages` with the chat
//! pipeline, as the reference does.

use serde_json::Value;

use super::request::{
    ContentBlock, Message, MessageContent, MessageRole, MessagesRequest, SystemPrompt, Tool,
    ToolChoice,
};
use crate::openai::{
    self, AssistantMessage, ChatCompletionRequest, ChatMessage, FunctionCall, FunctionDefinition,
    FunctionName, NamedToolChoice, Stop, StreamOptions, ToolCall, ToolChoiceMode, ToolMessage,
    ToolType,
};

fn blocks_text(blocks: &[ContentBlock]) -> String {
    blocks
        .iter()
        .filter_map(|b| match b {
            ContentBlock::Text { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn tool_result_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn push_message(out: &mut Vec<ChatMessage>, message: &Message) {
    let blocks = match &message.content {
        MessageContent::Text(text) => {
            out.push(match message.role {
                MessageRole::User => ChatMessage::user(text.clone()),
                MessageRole::Assistant => ChatMessage::Assistant(AssistantMessage {
                    content: Some(openai::MessageContent::Text(text.clone())),
                    ..AssistantMessage::default()
                }),
            });
            return;
        }
        MessageContent::Blocks(blocks) => blocks,
    };
    match message.role {
        MessageRole::Assistant => {
            let calls: Vec<ToolCall> = blocks
                .iter()
                .filter_map(|b| match b {
                    ContentBlock::ToolUse { id, name, input } => Some(ToolCall {
                        id: id.clone(),
                        kind: ToolType::Function,
                        function: FunctionCall {
                            name: name.clone(),
                            arguments: input.to_string(),
                        },
                    }),
                    _ => None,
                })
                .collect();
            let text = blocks_text(blocks);
            out.push(ChatMessage::Assistant(AssistantMessage {
                content: (!text.is_empty()).then_some(openai::MessageContent::Text(text)),
                tool_calls: (!calls.is_empty()).then_some(calls),
                ..AssistantMessage::default()
            }));
        }
        MessageRole::User => {
            for block in blocks {
                if let ContentBlock::ToolResult {
                    tool_use_id,
                    content,
                    ..
                } = block
                {
                    out.push(ChatMessage::Tool(ToolMessage {
                        content: openai::MessageContent::Text(tool_result_text(content.as_ref())),
                        tool_call_id: tool_use_id.clone(),
                    }));
                }
            }
            let text = blocks_text(blocks);
            if !text.is_empty() {
                out.push(ChatMessage::user(text));
            }
        }
    }
}

fn chat_tool(tool: &Tool) -> openai::Tool {
    openai::Tool {
        kind: ToolType::Function,
        function: FunctionDefinition {
            name: tool.name.clone(),
            description: tool.description.clone(),
            parameters: Some(tool.input_schema.clone()),
            strict: None,
        },
    }
}

fn chat_tool_choice(choice: &ToolChoice) -> openai::ToolChoice {
    match choice {
        ToolChoice::Auto { .. } => openai::ToolChoice::Mode(ToolChoiceMode::Auto),
        ToolChoice::Any { .. } => openai::ToolChoice::Mode(ToolChoiceMode::Required),
        ToolChoice::None => openai::ToolChoice::Mode(ToolChoiceMode::None),
        ToolChoice::Tool { name, .. } => openai::ToolChoice::Named(NamedToolChoice {
            kind: ToolType::Function,
            function: FunctionName { name: name.clone() },
        }),
    }
}

impl MessagesRequest {
    /// The equivalent chat request: `system` becomes a system message, tool-use blocks become
    /// assistant tool calls, tool-result blocks become tool messages, and `stop_sequences`,
    /// `top_k`, tools and tool choice carry over.
    pub fn to_chat_request(&self) -> ChatCompletionRequest {
        let mut messages = Vec::new();
        match &self.system {
            Some(SystemPrompt::Text(text)) => messages.push(ChatMessage::system(text.clone())),
            Some(SystemPrompt::Blocks(blocks)) => {
                messages.push(ChatMessage::system(blocks_text(blocks)));
            }
            None => {}
        }
        for message in &self.messages {
            push_message(&mut messages, message);
        }
        let mut chat = ChatCompletionRequest::new(self.model.clone(), messages);
        let inner = &mut chat.inner;
        inner.max_tokens = Some(self.max_tokens);
        inner.temperature = self.temperature;
        inner.top_p = self.top_p;
        inner.stop = self.stop_sequences.clone().map(Stop::Many);
        inner.stream = self.stream;
        if self.is_stream() {
            inner.stream_options = Some(StreamOptions {
                include_usage: true,
                continuous_usage_stats: false,
            });
        }
        inner.tools = self
            .tools
            .as_ref()
            .map(|tools| tools.iter().map(chat_tool).collect());
        inner.tool_choice = self.tool_choice.as_ref().map(chat_tool_choice);
        chat.common.top_k = self.top_k.and_then(|k| i32::try_from(k).ok());
        chat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::{Validate, ValidationOptions};

    #[test]
    fn tool_history_maps_onto_chat() {
        let req: MessagesRequest = serde_json::from_str(
            r#"{"model":"m","max_tokens":8,"system":[{"type":"text","text":"Be brief."}],
                "stop_sequences":["."],"top_k":20,"stream":true,
                "messages":[
                  {"role":"user","content":"Weather in Paris?"},
                  {"role":"assistant","content":[{"type":"text","text":"Checking."},
                    {"type":"tool_use","id":"t1","name":"get_weather","input":{"city":"Paris"}}]},
                  {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"18C"},
                    {"type":"text","text":"Thanks"}]}],
                "tools":[{"name":"get_weather","input_schema":{"type":"object"}}],
                "tool_choice":{"type":"tool","name":"get_weather"}}"#,
        )
        .unwrap();
        let chat = req.to_chat_request();
        let roles: Vec<_> = chat.inner.messages.iter().map(ChatMessage::role).collect();
        assert_eq!(roles, vec!["system", "user", "assistant", "tool", "user"]);
        let ChatMessage::Assistant(assistant) = &chat.inner.messages[2] else {
            panic!("expected the assistant turn");
        };
        let call = &assistant.tool_calls.as_ref().unwrap()[0];
        assert_eq!(call.function.arguments, r#"{"city":"Paris"}"#);
        assert_eq!(chat.max_tokens(), Some(8));
        assert_eq!(chat.stop_strings(), vec!["."]);
        assert_eq!(chat.common.top_k, Some(20));
        assert!(chat.include_usage());
        assert!(chat.validate(&ValidationOptions::default()).is_ok());
    }
}
