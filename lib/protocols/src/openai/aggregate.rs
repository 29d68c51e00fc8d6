//! Folding a stream of chunks into the unary response (unary requests run as streams).

use std::collections::BTreeMap;

use super::chat_response::{
    ChatChoice, ChatCompletionChunk, ChatCompletionResponse, ChatResponseMessage, Role,
};
use super::common::{ChatLogprobs, FinishReason, Usage};
use super::completions_response::{
    CompletionChoice, CompletionChunk, CompletionLogprobs, CompletionResponse,
};
use super::tools::{FunctionCall, ToolCall, ToolCallDelta, ToolType};
use crate::nvext::NvExtResponse;

#[derive(Debug, Default)]
struct ToolCallState {
    id: Option<String>,
    name: String,
    arguments: String,
}

#[derive(Debug, Default)]
struct ChatChoiceState {
    content: String,
    reasoning: String,
    refusal: Option<String>,
    tool_calls: BTreeMap<u32, ToolCallState>,
    finish_reason: Option<FinishReason>,
    logprobs: Option<ChatLogprobs>,
}

impl ChatChoiceState {
    fn add_tool_call(&mut self, delta: ToolCallDelta) {
        let state = self.tool_calls.entry(delta.index).or_default();
        if state.id.is_none() {
            state.id = delta.id;
        }
        if let Some(f) = delta.function {
            if let Some(name) = f.name {
                state.name.push_str(&name);
            }
            if let Some(args) = f.arguments {
                state.arguments.push_str(&args);
            }
        }
    }

    fn add_logprobs(&mut self, lp: ChatLogprobs) {
        let acc = self.logprobs.get_or_insert_with(ChatLogprobs::default);
        if let Some(content) = lp.content {
            acc.content.get_or_insert_with(Vec::new).extend(content);
        }
        if let Some(refusal) = lp.refusal {
            acc.refusal.get_or_insert_with(Vec::new).extend(refusal);
        }
    }

    fn into_choice(self, index: u32) -> ChatChoice {
        let tool_calls: Vec<ToolCall> = self
            .tool_calls
            .into_values()
            .map(|t| ToolCall {
                id: t.id.unwrap_or_default(),
                kind: ToolType::Function,
                function: FunctionCall {
                    name: t.name,
                    arguments: t.arguments,
                },
            })
            .collect();
        let content = (!self.content.is_empty() || tool_calls.is_empty()).then_some(self.content);
        ChatChoice {
            index,
            message: ChatResponseMessage {
                content,
                refusal: self.refusal,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                role: Role::Assistant,
                reasoning_content: (!self.reasoning.is_empty()).then_some(self.reasoning),
            },
            finish_reason: self.finish_reason,
            logprobs: self.logprobs,
        }
    }
}

/// Folds [`ChatCompletionChunk`]s into a [`ChatCompletionResponse`]: text, reasoning and tool
/// call fragments are concatenated per choice index, the last finish reason, usage and
/// `nvext` win.
#[derive(Debug, Default)]
pub struct ChatAggregator {
    id: String,
    model: String,
    created: u64,
    service_tier: Option<String>,
    system_fingerprint: Option<String>,
    choices: BTreeMap<u32, ChatChoiceState>,
    usage: Option<Usage>,
    nvext: Option<NvExtResponse>,
}

impl ChatAggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the next chunk of the stream.
    pub fn push(&mut self, chunk: ChatCompletionChunk) {
        self.id = chunk.id;
        self.model = chunk.model;
        self.created = chunk.created;
        self.service_tier = chunk.service_tier.or(self.service_tier.take());
        self.system_fingerprint = chunk.system_fingerprint.or(self.system_fingerprint.take());
        self.usage = chunk.usage.or(self.usage.take());
        self.nvext = chunk.nvext.or(self.nvext.take());
        for c in chunk.choices {
            let state = self.choices.entry(c.index).or_default();
            let delta = c.delta;
            if let Some(text) = delta.content {
                state.content.push_str(&text);
            }
            if let Some(text) = delta.reasoning_content {
                state.reasoning.push_str(&text);
            }
            if let Some(text) = delta.refusal {
                state
                    .refusal
                    .get_or_insert_with(String::new)
                    .push_str(&text);
            }
            for call in delta.tool_calls.into_iter().flatten() {
                state.add_tool_call(call);
            }
            if let Some(lp) = c.logprobs {
                state.add_logprobs(lp);
            }
            if c.finish_reason.is_some() {
                state.finish_reason = c.finish_reason;
            }
        }
    }

    /// The unary response.
    pub fn finish(self) -> ChatCompletionResponse {
        let mut resp = ChatCompletionResponse::new(self.id, self.model, self.created);
        resp.choices = self
            .choices
            .into_iter()
            .map(|(i, s)| s.into_choice(i))
            .collect();
        resp.service_tier = self.service_tier;
        resp.system_fingerprint = self.system_fingerprint;
        resp.usage = self.usage;
        resp.nvext = self.nvext;
        resp
    }
}

/// Folds completions chunks into a [`CompletionResponse`], per choice index.
#[derive(Debug, Default)]
pub struct CompletionAggregator {
    head: CompletionResponse,
    choices: BTreeMap<u32, CompletionChoice>,
}

impl CompletionAggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the next chunk of the stream.
    pub fn push(&mut self, chunk: CompletionChunk) {
        for c in chunk.choices {
            let acc = self
                .choices
                .entry(c.index)
                .or_insert_with(|| CompletionChoice {
                    index: c.index,
                    ..CompletionChoice::default()
                });
            acc.text.push_str(&c.text);
            if c.finish_reason.is_some() {
                acc.finish_reason = c.finish_reason;
            }
            if let Some(lp) = c.logprobs {
                let into = acc.logprobs.get_or_insert_with(CompletionLogprobs::default);
                into.tokens.extend(lp.tokens);
                into.token_logprobs.extend(lp.token_logprobs);
                into.top_logprobs.extend(lp.top_logprobs);
                into.text_offset.extend(lp.text_offset);
            }
        }
        let head = &mut self.head;
        head.id = chunk.id;
        head.model = chunk.model;
        head.created = chunk.created;
        head.object = chunk.object;
        head.system_fingerprint = chunk.system_fingerprint.or(head.system_fingerprint.take());
        head.usage = chunk.usage.or(head.usage.take());
        head.nvext = chunk.nvext.or(head.nvext.take());
    }

    /// The unary response.
    pub fn finish(self) -> CompletionResponse {
        let mut resp = self.head;
        resp.choices = self.choices.into_values().collect();
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::{ChatChunkChoice, ChatDelta, FunctionCallDelta};
    use proptest::prelude::*;

    fn chunk(index: u32, delta: ChatDelta, finish: Option<FinishReason>) -> ChatCompletionChunk {
        ChatCompletionChunk::new(
            "chatcmpl-1",
            "m",
            9,
            vec![ChatChunkChoice {
                index,
                delta,
                finish_reason: finish,
                logprobs: None,
            }],
        )
    }

    fn text(t: &str) -> ChatDelta {
        ChatDelta {
            content: Some(t.into()),
            ..ChatDelta::default()
        }
    }

    #[test]
    fn interleaved_choices_fold_per_index() {
        let mut agg = ChatAggregator::new();
        agg.push(chunk(0, text("Hel"), None));
        agg.push(chunk(1, text("Wor"), None));
        agg.push(chunk(0, text("lo"), Some(FinishReason::Stop)));
        agg.push(chunk(1, text("ld"), Some(FinishReason::Length)));
        let mut usage_chunk = ChatCompletionChunk::new("chatcmpl-1", "m", 9, vec![]);
        usage_chunk.usage = Some(Usage::new(3, 4));
        agg.push(usage_chunk);
        let resp = agg.finish();
        assert_eq!(resp.object, "chat.completion");
        assert_eq!(resp.choices.len(), 2);
        assert_eq!(resp.choices[0].message.content.as_deref(), Some("Hello"));
        assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Stop));
        assert_eq!(resp.choices[1].message.content.as_deref(), Some("World"));
        assert_eq!(resp.usage, Some(Usage::new(3, 4)));
    }

    #[test]
    fn tool_call_fragments_are_joined() {
        let mut agg = ChatAggregator::new();
        let part = |id: Option<&str>, name: Option<&str>, args: &str| ChatDelta {
            tool_calls: Some(vec![ToolCallDelta {
                index: 0,
                id: id.map(Into::into),
                kind: id.map(|_| ToolType::Function),
                function: Some(FunctionCallDelta {
                    name: name.map(Into::into),
                    arguments: Some(args.into()),
                }),
            }]),
            ..ChatDelta::default()
        };
        agg.push(chunk(
            0,
            part(Some("call_1"), Some("get_weather"), "{\"ci"),
            None,
        ));
        agg.push(chunk(
            0,
            part(None, None, "ty\":\"Paris\"}"),
            Some(FinishReason::ToolCalls),
        ));
        let choice = &agg.finish().choices[0];
        assert_eq!(choice.message.content, None);
        let calls = choice.message.tool_calls.as_ref().unwrap();
        assert_eq!(calls[0].id, "call_1");
        assert_eq!(calls[0].function.name, "get_weather");
        assert_eq!(calls[0].function.arguments, "{\"city\":\"Paris\"}");
    }

    #[test]
    fn completion_chunks_fold() {
        let mut agg = CompletionAggregator::new();
        for (i, t, f) in [(0, "a", None), (0, "b", Some(FinishReason::Length))] {
            agg.push(CompletionResponse::new(
                "cmpl-1",
                "m",
                1,
                vec![CompletionChoice {
                    text: t.into(),
                    index: i,
                    finish_reason: f,
                    logprobs: None,
                }],
            ));
        }
        let resp = agg.finish();
        assert_eq!(resp.object, "text_completion");
        assert_eq!(resp.choices[0].text, "ab");
        assert_eq!(resp.choices[0].finish_reason, Some(FinishReason::Length));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn folding_any_split_of_n_texts_restores_them(
            texts in proptest::collection::vec("\\PC{0,24}", 1..4),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut agg = ChatAggregator::new();
            for (i, t) in texts.iter().enumerate() {
                let chars: Vec<char> = t.chars().collect();
                let mut points: Vec<usize> = cuts.iter().map(|c| c % (chars.len() + 1)).collect();
                points.sort_unstable();
                points.push(chars.len());
                let mut start = 0;
                for p in points {
                    let piece: String = chars[start..p].iter().collect();
                    agg.push(chunk(i as u32, text(&piece), None));
                    start = p;
                }
            }
            let resp = agg.finish();
            let got: Vec<String> = resp
                .choices
                .iter()
                .map(|c| c.message.content.clone().unwrap_or_default())
                .collect();
            prop_assert_eq!(got, texts);
        }
    }
}
