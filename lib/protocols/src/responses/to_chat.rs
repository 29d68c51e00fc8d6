//! Responses request → chat request: the frontend serves `/v1/responses` with the chat
//! pipeline, as the reference does.

use super::request::{InputItem, ResponseInput, ResponseTool, ResponsesRequest, TypedInputItem};
use crate::openai::{
    AssistantMessage, ChatCompletionRequest, ChatMessage, FunctionCall, FunctionDefinition,
    MessageContent, StreamOptions, SystemMessage, Tool, ToolCall, ToolChoice, ToolMessage,
    ToolType, UserMessage,
};

fn message(role: &str, text: String) -> ChatMessage {
    let content = MessageContent::Text(text);
    match role {
        "system" => ChatMessage::System(SystemMessage {
            content,
            name: None,
        }),
        "developer" => ChatMessage::Developer(SystemMessage {
            content,
            name: None,
        }),
        "assistant" => ChatMessage::Assistant(AssistantMessage {
            content: Some(content),
            ..AssistantMessage::default()
        }),
        _ => ChatMessage::User(UserMessage {
            content,
            name: None,
        }),
    }
}

fn push_item(messages: &mut Vec<ChatMessage>, item: &InputItem) {
    match item {
        InputItem::Message(m) | InputItem::Typed(TypedInputItem::Message(m)) => {
            messages.push(message(&m.role, m.content.text()));
        }
        InputItem::Typed(TypedInputItem::FunctionCall {
            call_id,
            name,
            arguments,
        }) => {
            let call = ToolCall {
                id: call_id.clone(),
                kind: ToolType::Function,
                function: FunctionCall {
                    name: name.clone(),
                    arguments: arguments.clone(),
                },
            };
            if let Some(ChatMessage::Assistant(prev)) = messages.last_mut() {
                prev.tool_calls.get_or_insert_with(Vec::new).push(call);
            } else {
                messages.push(ChatMessage::Assistant(AssistantMessage {
                    tool_calls: Some(vec![call]),
                    ..AssistantMessage::default()
                }));
            }
        }
        InputItem::Typed(TypedInputItem::FunctionCallOutput { call_id, output }) => {
            messages.push(ChatMessage::Tool(ToolMessage {
                content: MessageContent::Text(output.clone()),
                tool_call_id: call_id.clone(),
            }));
        }
    }
}

impl ResponsesRequest {
    /// The equivalent chat request: `instructions` become a system message, input items
    /// become messages (function calls join the preceding assistant turn), and the sampling
    /// knobs, tools, template arguments and `nvext` carry over.
    pub fn to_chat_request(&self) -> ChatCompletionRequest {
        let mut messages = Vec::new();
        if let Some(instructions) = &self.instructions {
            messages.push(ChatMessage::system(instructions.clone()));
        }
        match &self.input {
            ResponseInput::Text(text) => messages.push(ChatMessage::user(text.clone())),
            ResponseInput::Items(items) => {
                for item in items {
                    push_item(&mut messages, item);
                }
            }
        }
        let mut chat = ChatCompletionRequest::new(self.model.clone(), messages);
        let inner = &mut chat.inner;
        inner.max_tokens = self.max_output_tokens;
        inner.temperature = self.temperature;
        inner.top_p = self.top_p;
        inner.top_logprobs = self.top_logprobs.filter(|k| *k > 0);
        inner.logprobs = inner.top_logprobs.map(|_| true);
        inner.stream = self.stream;
        if self.is_stream() {
            inner.stream_options = Some(StreamOptions {
                include_usage: true,
                continuous_usage_stats: false,
            });
        }
        inner.parallel_tool_calls = self.parallel_tool_calls;
        inner.user.clone_from(&self.user);
        inner.tools = self.tools.as_ref().map(|tools| {
            tools
                .iter()
                .map(
                    |ResponseTool::Function {
                         name,
                         description,
                         parameters,
                         strict,
                     }| Tool {
                        kind: ToolType::Function,
                        function: FunctionDefinition {
                            name: name.clone(),
                            description: description.clone(),
                            parameters: parameters.clone(),
                            strict: *strict,
                        },
                    },
                )
                .collect()
        });
        inner.tool_choice = self
            .tool_choice
            .clone()
            .and_then(|v| serde_json::from_value::<ToolChoice>(v).ok());
        chat.chat_template_args.clone_from(&self.chat_template_args);
        chat.thinking_token_budget = self.thinking_token_budget;
        chat.nvext.clone_from(&self.nvext);
        chat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::{ToolChoiceMode, Validate, ValidationOptions};

    #[test]
    fn instructions_items_and_tools_map_onto_chat() {
        let req: ResponsesRequest = serde_json::from_str(
            r#"{"model":"m","instructions":"Be brief.","max_output_tokens":5,"stream":true,
                "input":[{"role":"user","content":"Weather?"},
                         {"type":"function_call","call_id":"c1","name":"get_weather","arguments":"{}"},
                         {"type":"function_call_output","call_id":"c1","output":"18C"}],
                "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object"}}],
                "tool_choice":"required"}"#,
        )
        .unwrap();
        let chat = req.to_chat_request();
        let roles: Vec<_> = chat.inner.messages.iter().map(ChatMessage::role).collect();
        assert_eq!(roles, vec!["system", "user", "assistant", "tool"]);
        assert_eq!(chat.max_tokens(), Some(5));
        assert!(chat.include_usage());
        assert_eq!(
            chat.inner.tool_choice,
            Some(ToolChoice::Mode(ToolChoiceMode::Required))
        );
        assert_eq!(
            chat.inner.tools.as_ref().unwrap()[0].function.name,
            "get_weather"
        );
        assert!(chat.validate(&ValidationOptions::default()).is_ok());
    }

    #[test]
    fn plain_text_input_is_one_user_message() {
        let req: ResponsesRequest =
            serde_json::from_str(r#"{"model":"m","input":"Say hi."}"#).unwrap();
        let chat = req.to_chat_request();
        assert_eq!(chat.inner.messages, vec![ChatMessage::user("Say hi.")]);
        assert!(!chat.is_stream());
    }
}
