//! Choice events → OpenAI chat and completions chunks (SSE) or unary bodies.

use std::collections::BTreeMap;
use std::io::Write as _;

use serde::Serialize;
use stator_protocols::nvext::NvExtResponse;
use stator_protocols::openai::{
    CHAT_COMPLETION_CHUNK_OBJECT, ChatChoice, ChatCompletionChunk, ChatCompletionResponse,
    ChatResponseMessage, CompletionChoice, CompletionChunk, CompletionResponse, FinishReason,
    PromptTokensDetails, Role, Usage,
};

use super::extra_fields::ExtraFields;
use crate::pipeline::{ChoiceEvent, FinishInfo};

/// Token accounting summed over the choices of a response.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct UsageTotals {
    prompt: u32,
    completion: u32,
    cached: Option<u32>,
}

impl UsageTotals {
    pub(crate) fn add(&mut self, finish: &FinishInfo) {
        self.prompt += finish.prompt_tokens;
        self.completion += finish.completion_tokens;
        if let Some(cached) = finish.cached_tokens {
            *self.cached.get_or_insert(0) += cached;
        }
    }

    /// `usage`; `prompt_tokens_details` only when a worker or router reported cache hits.
    pub(crate) fn to_usage(&self) -> Usage {
        let mut usage = Usage::new(self.prompt, self.completion);
        usage.prompt_tokens_details = self.cached.map(|cached| PromptTokensDetails {
            audio_tokens: None,
            cached_tokens: Some(cached),
        });
        usage
    }
}

/// How one API turns choice events into its wire format.
pub(crate) trait Shape: Send + Unpin + 'static {
    /// Appends the SSE frames of one event.
    fn stream_event(&mut self, event: &ChoiceEvent, out: &mut Vec<u8>);
    /// Appends the frames after the last event (the usage chunk, if asked for).
    fn stream_end(&mut self, usage: &UsageTotals, out: &mut Vec<u8>);
    /// Folds one event into the unary answer.
    fn fold(&mut self, event: ChoiceEvent);
    /// The unary JSON body.
    fn unary_body(self, usage: &UsageTotals) -> Vec<u8>;
}

/// Identity of a response: repeated on every chunk.
pub(crate) struct ResponseHead {
    pub(crate) id: String,
    pub(crate) model: String,
    pub(crate) created: u64,
    pub(crate) include_usage: bool,
    /// The `nvext.extra_fields` asked for (carried on each choice's finish chunk and on the
    /// unary body).
    pub(crate) extra: ExtraFields,
}

fn push_data<T: Serialize>(out: &mut Vec<u8>, value: &T) {
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut *out, value).expect("chunks serialize to memory");
    out.extend_from_slice(b"\n\n");
}

/// A chat chunk with one choice, serialized from borrowed parts (same bytes as
/// [`ChatCompletionChunk`] without per-token copies of the id and model).
#[derive(Serialize)]
struct ChatChunkRef<'a> {
    id: &'a str,
    choices: [ChatChoiceRef<'a>; 1],
    created: u64,
    model: &'a str,
    object: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    nvext: Option<NvExtResponse>,
}

#[derive(Serialize)]
struct ChatChoiceRef<'a> {
    index: u32,
    delta: ChatDeltaRef<'a>,
    finish_reason: Option<FinishReason>,
    logprobs: Option<()>,
}

#[derive(Serialize)]
struct ChatDeltaRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
}

/// `/v1/chat/completions`.
pub(crate) struct ChatShape {
    head: ResponseHead,
    role_sent: Vec<u32>,
    choices: BTreeMap<u32, (String, Option<FinishReason>)>,
    nvext: FirstChoiceNvExt,
    /// The bytes of a content chunk up to its choice index (`data: {"id":…,"choices":[{"index":`).
    content_prefix: Vec<u8>,
    /// The bytes of a content chunk after its delta (`,"finish_reason":null,…}\n\n`).
    content_suffix: Vec<u8>,
}

impl ChatShape {
    pub(crate) fn new(head: ResponseHead) -> Self {
        // The frame of a content chunk is the same for every token of a response: render it
        // once around markers and keep the two halves, so each token only writes its index
        // and escaped text (same bytes as serializing `ChatChunkRef`).
        let mut frame = Vec::new();
        push_data(&mut frame, &Self::chunk(&head, 0, Some(""), None, None));
        let marker = br#"{"index":0,"delta":{"content":""}"#;
        let at = frame
            .windows(marker.len())
            .position(|w| w == marker)
            .expect("a content chunk contains its choice");
        let content_prefix = frame[..at + br#"{"index":"#.len()].to_vec();
        let content_suffix = frame[at + marker.len()..].to_vec();
        Self {
            head,
            role_sent: Vec::new(),
            choices: BTreeMap::new(),
            nvext: FirstChoiceNvExt::default(),
            content_prefix,
            content_suffix,
        }
    }

    /// Appends a content chunk without a role (every token after a choice's first).
    fn push_content(&self, out: &mut Vec<u8>, index: u32, text: &str) {
        out.extend_from_slice(&self.content_prefix);
        match u8::try_from(index) {
            // Nearly every chunk belongs to choice 0..9: skip the formatting machinery.
            Ok(digit @ 0..=9) => out.push(b'0' + digit),
            _ => write!(out, "{index}").expect("writing to memory cannot fail"),
        }
        out.extend_from_slice(br#","delta":{"content":"#);
        serde_json::to_writer(&mut *out, text).expect("strings serialize to memory");
        out.push(b'}');
        out.extend_from_slice(&self.content_suffix);
    }

    /// `Some(Assistant)` the first time a choice shows up.
    fn role(&mut self, index: u32) -> Option<Role> {
        if self.role_sent.contains(&index) {
            None
        } else {
            self.role_sent.push(index);
            Some(Role::Assistant)
        }
    }

    fn chunk<'a>(
        head: &'a ResponseHead,
        index: u32,
        content: Option<&'a str>,
        role: Option<Role>,
        finish_reason: Option<FinishReason>,
    ) -> ChatChunkRef<'a> {
        ChatChunkRef {
            id: &head.id,
            choices: [ChatChoiceRef {
                index,
                delta: ChatDeltaRef { content, role },
                finish_reason,
                logprobs: None,
            }],
            created: head.created,
            model: &head.model,
            object: CHAT_COMPLETION_CHUNK_OBJECT,
            nvext: None,
        }
    }
}

impl Shape for ChatShape {
    fn stream_event(&mut self, event: &ChoiceEvent, out: &mut Vec<u8>) {
        match event {
            ChoiceEvent::Delta { index, text, .. } => {
                if text.is_empty() {
                    return;
                }
                match self.role(*index) {
                    None => self.push_content(out, *index, text),
                    role => push_data(
                        out,
                        &Self::chunk(&self.head, *index, Some(text), role, None),
                    ),
                }
            }
            ChoiceEvent::Finish(finish) => {
                let role = self.role(finish.index);
                let mut chunk =
                    Self::chunk(&self.head, finish.index, None, role, Some(finish.reason));
                chunk.nvext = self.head.extra.response(finish);
                push_data(out, &chunk);
            }
        }
    }

    fn stream_end(&mut self, usage: &UsageTotals, out: &mut Vec<u8>) {
        if self.head.include_usage {
            let mut chunk = ChatCompletionChunk::new(
                self.head.id.as_str(),
                self.head.model.as_str(),
                self.head.created,
                Vec::new(),
            );
            chunk.usage = Some(usage.to_usage());
            push_data(out, &chunk);
        }
    }

    fn fold(&mut self, event: ChoiceEvent) {
        match event {
            ChoiceEvent::Delta { index, text, .. } => {
                self.choices.entry(index).or_default().0.push_str(&text);
            }
            ChoiceEvent::Finish(finish) => {
                self.nvext.offer(self.head.extra, &finish);
                self.choices.entry(finish.index).or_default().1 = Some(finish.reason);
            }
        }
    }

    fn unary_body(self, usage: &UsageTotals) -> Vec<u8> {
        let mut response =
            ChatCompletionResponse::new(self.head.id, self.head.model, self.head.created);
        response.choices = self
            .choices
            .into_iter()
            .map(|(index, (content, finish_reason))| ChatChoice {
                index,
                message: ChatResponseMessage {
                    content: Some(content),
                    ..ChatResponseMessage::default()
                },
                finish_reason,
                logprobs: None,
            })
            .collect();
        response.usage = Some(usage.to_usage());
        response.nvext = self.nvext.0.map(|(_, nvext)| nvext);
        serde_json::to_vec(&response).expect("responses serialize to memory")
    }
}

/// The unary body's `nvext`: the lowest-index choice's (one worker per choice).
#[derive(Default)]
struct FirstChoiceNvExt(Option<(u32, NvExtResponse)>);

impl FirstChoiceNvExt {
    fn offer(&mut self, extra: ExtraFields, finish: &FinishInfo) {
        if self
            .0
            .as_ref()
            .is_some_and(|(index, _)| *index < finish.index)
        {
            return;
        }
        if let Some(nvext) = extra.response(finish) {
            self.0 = Some((finish.index, nvext));
        }
    }
}

/// `/v1/completions`.
pub(crate) struct CompletionShape {
    head: ResponseHead,
    choices: BTreeMap<u32, CompletionChoice>,
    nvext: FirstChoiceNvExt,
}

impl CompletionShape {
    pub(crate) fn new(head: ResponseHead) -> Self {
        Self {
            head,
            choices: BTreeMap::new(),
            nvext: FirstChoiceNvExt::default(),
        }
    }

    fn chunk(&self, choices: Vec<CompletionChoice>) -> CompletionChunk {
        CompletionResponse::new(
            self.head.id.as_str(),
            self.head.model.as_str(),
            self.head.created,
            choices,
        )
    }
}

impl Shape for CompletionShape {
    fn stream_event(&mut self, event: &ChoiceEvent, out: &mut Vec<u8>) {
        let choice = match event {
            ChoiceEvent::Delta { index, text, .. } if !text.is_empty() => CompletionChoice {
                text: text.clone(),
                index: *index,
                ..CompletionChoice::default()
            },
            ChoiceEvent::Delta { .. } => return,
            ChoiceEvent::Finish(finish) => {
                let mut chunk = self.chunk(vec![CompletionChoice {
                    index: finish.index,
                    finish_reason: Some(finish.reason),
                    ..CompletionChoice::default()
                }]);
                chunk.nvext = self.head.extra.response(finish);
                push_data(out, &chunk);
                return;
            }
        };
        push_data(out, &self.chunk(vec![choice]));
    }

    fn stream_end(&mut self, usage: &UsageTotals, out: &mut Vec<u8>) {
        if self.head.include_usage {
            let mut chunk = self.chunk(Vec::new());
            chunk.usage = Some(usage.to_usage().into());
            push_data(out, &chunk);
        }
    }

    fn fold(&mut self, event: ChoiceEvent) {
        let (index, text, finish_reason) = match event {
            ChoiceEvent::Delta { index, text, .. } => (index, text, None),
            ChoiceEvent::Finish(finish) => {
                self.nvext.offer(self.head.extra, &finish);
                (finish.index, String::new(), Some(finish.reason))
            }
        };
        let choice = self
            .choices
            .entry(index)
            .or_insert_with(|| CompletionChoice {
                index,
                ..CompletionChoice::default()
            });
        choice.text.push_str(&text);
        if finish_reason.is_some() {
            choice.finish_reason = finish_reason;
        }
    }

    fn unary_body(mut self, usage: &UsageTotals) -> Vec<u8> {
        let choices = std::mem::take(&mut self.choices).into_values().collect();
        let mut response = self.chunk(choices);
        response.usage = Some(usage.to_usage().into());
        response.nvext = self.nvext.0.take().map(|(_, nvext)| nvext);
        serde_json::to_vec(&response).expect("responses serialize to memory")
    }
}

#[cfg(test)]
mod tests {
    use stator_protocols::openai::{ChatChunkChoice, ChatDelta};

    use super::*;

    fn head(include_usage: bool) -> ResponseHead {
        ResponseHead {
            id: "chatcmpl-1".into(),
            model: "m".into(),
            created: 7,
            include_usage,
            extra: ExtraFields::default(),
        }
    }

    fn finish(index: u32, prompt_tokens: u32) -> FinishInfo {
        FinishInfo {
            index,
            reason: FinishReason::Length,
            prompt_tokens,
            completion_tokens: 2,
            cached_tokens: None,
            report: None,
        }
    }

    #[test]
    fn borrowed_chat_chunks_match_the_protocol_types() {
        let mut shape = ChatShape::new(head(false));
        let mut out = Vec::new();
        let delta = |text: &str| ChoiceEvent::Delta {
            index: 0,
            text: text.into(),
            tokens: 1,
        };
        shape.stream_event(&delta(" Q"), &mut out);
        shape.stream_event(&delta("imes"), &mut out);
        shape.stream_event(&delta("\"é\n\u{1}\\/<"), &mut out);
        shape.stream_event(&ChoiceEvent::Finish(finish(0, 3)), &mut out);
        let choice = |content: Option<&str>, role, finish_reason| ChatChunkChoice {
            index: 0,
            delta: ChatDelta {
                content: content.map(str::to_owned),
                role,
                ..ChatDelta::default()
            },
            finish_reason,
            logprobs: None,
        };
        let expected = [
            choice(Some(" Q"), Some(Role::Assistant), None),
            choice(Some("imes"), None, None),
            choice(Some("\"é\n\u{1}\\/<"), None, None),
            choice(None, None, Some(FinishReason::Length)),
        ]
        .into_iter()
        .map(|c| {
            let chunk = ChatCompletionChunk::new("chatcmpl-1", "m", 7, vec![c]);
            format!("data: {}\n\n", serde_json::to_string(&chunk).unwrap())
        })
        .collect::<Vec<_>>()
        .concat();
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn usage_chunk_and_unary_fold() {
        let mut shape = ChatShape::new(head(true));
        let mut usage = UsageTotals::default();
        for (index, text) in [(1, "b"), (0, "a"), (1, "c")] {
            shape.fold(ChoiceEvent::Delta {
                index,
                text: text.into(),
                tokens: 1,
            });
        }
        for f in [finish(0, 5), finish(1, 0)] {
            usage.add(&f);
            shape.fold(ChoiceEvent::Finish(f));
        }
        let mut out = Vec::new();
        shape.stream_end(&usage, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "data: {\"id\":\"chatcmpl-1\",\"choices\":[],\"created\":7,\"model\":\"m\",\"object\":\"chat.completion.chunk\",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":4,\"total_tokens\":9}}\n\n"
        );
        let body: ChatCompletionResponse =
            serde_json::from_slice(&shape.unary_body(&usage)).unwrap();
        let texts: Vec<_> = body
            .choices
            .iter()
            .map(|c| (c.index, c.message.content.clone().unwrap()))
            .collect();
        assert_eq!(texts, [(0, "a".to_owned()), (1, "bc".to_owned())]);
    }

    #[test]
    fn completion_chunks_have_the_reference_shape() {
        let mut shape = CompletionShape::new(ResponseHead {
            id: "cmpl-1".into(),
            ..head(true)
        });
        let mut usage = UsageTotals::default();
        let mut out = Vec::new();
        shape.stream_event(
            &ChoiceEvent::Delta {
                index: 0,
                text: ".x".into(),
                tokens: 1,
            },
            &mut out,
        );
        let mut f = finish(0, 1);
        f.cached_tokens = Some(0);
        usage.add(&f);
        shape.stream_event(&ChoiceEvent::Finish(f), &mut out);
        shape.stream_end(&usage, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                "data: {\"id\":\"cmpl-1\",\"choices\":[{\"text\":\".x\",\"index\":0}],\"created\":7,\"model\":\"m\",\"system_fingerprint\":null,\"object\":\"text_completion\",\"usage\":null}\n\n",
                "data: {\"id\":\"cmpl-1\",\"choices\":[{\"text\":\"\",\"index\":0,\"finish_reason\":\"length\"}],\"created\":7,\"model\":\"m\",\"system_fingerprint\":null,\"object\":\"text_completion\",\"usage\":null}\n\n",
                "data: {\"id\":\"cmpl-1\",\"choices\":[],\"created\":7,\"model\":\"m\",\"system_fingerprint\":null,\"object\":\"text_completion\",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3,\"prompt_tokens_details\":{\"audio_tokens\":null,\"cached_tokens\":0}}}\n\n",
            )
        );
    }
}
