//! Request preprocessing that depends only on the model: prompt formatting with the chat
//! template, tokenization, stop conditions and the context budget. The protocol layer maps
//! OpenAI requests onto these plain inputs.

mod segments;
mod stop;

use std::sync::Arc;

use serde_json::{Map, Value};
use stator_tokenizers::{TokenId, Tokenizer};

pub use stop::{StopConditions, StopRequest, context_budget};

use segments::SegmentEncoder;

use crate::Error;
use crate::backend::{ByteLevel, DetokenizeOptions, Detokenizer};
use crate::model_card::{ModelDeploymentCard, TokenizerKind};
use crate::template::{ChatTemplate, ChatTemplateInput};

/// Renders chat messages into a prompt string with the model's chat template.
#[derive(Debug)]
pub struct PromptFormatter {
    template: ChatTemplate,
}

impl PromptFormatter {
    /// Wraps a compiled template.
    pub fn new(template: ChatTemplate) -> Self {
        Self { template }
    }

    /// The formatter of a card: its chat template with the special tokens of its
    /// `tokenizer_config.json`. `Ok(None)` when the model has no chat template.
    pub fn from_card(card: &ModelDeploymentCard) -> Result<Option<Self>, Error> {
        let Some(source) = card.chat_template_source()? else {
            return Ok(None);
        };
        let special = card
            .tokenizer_config_json()?
            .map(|config| crate::template::SpecialTokens::from_tokenizer_config(&config))
            .unwrap_or_default();
        Ok(Some(Self::new(ChatTemplate::new(&source, special)?)))
    }

    /// The compiled template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Renders `messages` (a JSON array). Message `content` given as a list of text parts
    /// (`[{"type": "text", "text": ...}, ...]`) is joined with `"\n"` first, since most
    /// templates concatenate `content` as a string; lists with other part types are passed
    /// through for templates that handle them.
    pub fn render(
        &self,
        messages: &Value,
        tools: Option<&Value>,
        add_generation_prompt: bool,
        chat_template_args: Option<&Map<String, Value>>,
    ) -> Result<String, Error> {
        let messages = flatten_text_parts(messages);
        self.template.render(&ChatTemplateInput {
            messages: &messages,
            tools,
            add_generation_prompt,
            chat_template_args,
        })
    }
}

/// Everything the frontend needs from a model card to preprocess requests for it.
pub struct ModelPreprocessor {
    formatter: Option<PromptFormatter>,
    tokenizer: Arc<dyn Tokenizer>,
    segments: Option<SegmentEncoder>,
    byte_level: Option<Arc<ByteLevel>>,
    eos_token_ids: Vec<TokenId>,
    context_length: Option<u32>,
    mdc_sum: String,
}

impl ModelPreprocessor {
    /// Loads the tokenizer, template and EOS ids of a card (all files checksum verified).
    /// The tokenizer is the fast byte-level BPE where it reproduces the model's
    /// `tokenizer.json` exactly, Hugging Face's otherwise ([`stator_tokenizers::load_bytes`]).
    pub fn from_card(card: &ModelDeploymentCard) -> Result<Self, Error> {
        let (tokenizer, segments, byte_level) = load_tokenizer(card)?;
        Ok(Self {
            formatter: PromptFormatter::from_card(card)?,
            tokenizer,
            segments,
            byte_level,
            eos_token_ids: card.eos_token_ids()?,
            context_length: card.enforced_context_length(),
            mdc_sum: card.mdc_sum(),
        })
    }

    /// The prompt formatter, if the model has a chat template.
    pub fn formatter(&self) -> Option<&PromptFormatter> {
        self.formatter.as_ref()
    }

    /// Renders a chat request's prompt ([`PromptFormatter::render`]).
    pub fn render_chat(
        &self,
        messages: &Value,
        tools: Option<&Value>,
        add_generation_prompt: bool,
        chat_template_args: Option<&Map<String, Value>>,
    ) -> Result<String, Error> {
        self.formatter
            .as_ref()
            .ok_or(Error::NoChatTemplate)?
            .render(messages, tools, add_generation_prompt, chat_template_args)
    }

    /// Tokenizes a prompt. Chat prompts are rendered with their special tokens already, so
    /// pass `add_special_tokens = false` for them and `true` for raw completion prompts.
    ///
    /// Without special tokens, long pieces between added tokens (a shared system prompt)
    /// come from a cache when the tokenizer allows it; the ids are the same either way.
    pub fn tokenize(&self, prompt: &str, add_special_tokens: bool) -> Result<Vec<TokenId>, Error> {
        match &self.segments {
            Some(segments) if !add_special_tokens => Ok(segments.encode(&*self.tokenizer, prompt)?),
            _ => Ok(self.tokenizer.encode(prompt, add_special_tokens)?),
        }
    }

    /// The stop conditions of a request whose prompt has `prompt_len` tokens.
    pub fn stop_conditions(
        &self,
        request: &StopRequest<'_>,
        prompt_len: usize,
    ) -> Result<StopConditions, Error> {
        StopConditions::assemble(
            request,
            &self.eos_token_ids,
            prompt_len,
            self.context_length,
        )
    }

    /// The shared tokenizer (also what the detokenizer uses).
    pub fn tokenizer(&self) -> &Arc<dyn Tokenizer> {
        &self.tokenizer
    }

    /// A detokenizer for one answer sequence: the byte-level one when the tokenizer is
    /// byte-level BPE, the windowed [`DecodeStream`](stator_tokenizers::DecodeStream) otherwise.
    pub fn detokenizer(&self, options: &DetokenizeOptions) -> Detokenizer {
        match &self.byte_level {
            Some(reading) => Detokenizer::byte_level(Arc::clone(reading), options),
            None => Detokenizer::new(Arc::clone(&self.tokenizer), options),
        }
    }

    /// The model's EOS ids (`eos_token_ids` of the wire request).
    pub fn eos_token_ids(&self) -> &[TokenId] {
        &self.eos_token_ids
    }

    /// The enforced context length, if the engine published one.
    pub fn context_length(&self) -> Option<u32> {
        self.context_length
    }

    /// The card's checksum (`mdc_sum` of the wire request).
    pub fn mdc_sum(&self) -> &str {
        &self.mdc_sum
    }
}

impl std::fmt::Debug for ModelPreprocessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelPreprocessor")
            .field("formatter", &self.formatter)
            .field("eos_token_ids", &self.eos_token_ids)
            .field("context_length", &self.context_length)
            .field("mdc_sum", &self.mdc_sum)
            .finish_non_exhaustive()
    }
}

/// The card's tokenizer through [`stator_tokenizers::load_bytes`], with its segment encoder
/// where one applies; cards without a `tokenizer.json` keep the card's own error.
/// The tokenizer, its segment encoder for prompts and its byte-level reading for answers
/// (each only where provably equal to the tokenizer's own encode / decode).
type LoadedTokenizer = (
    Arc<dyn Tokenizer>,
    Option<SegmentEncoder>,
    Option<Arc<ByteLevel>>,
);

fn load_tokenizer(card: &ModelDeploymentCard) -> Result<LoadedTokenizer, Error> {
    match &card.tokenizer {
        Some(TokenizerKind::HfTokenizerJson(file)) => {
            let bytes = file.read_verified()?;
            let tokenizer = stator_tokenizers::load_bytes(&bytes)?;
            let segments = SegmentEncoder::new(&*tokenizer, &bytes);
            let byte_level = ByteLevel::new(&*tokenizer, &bytes).map(Arc::new);
            tracing::debug!(
                segment_cache = segments.is_some(),
                byte_level = byte_level.is_some(),
                "tokenization"
            );
            Ok((tokenizer, segments, byte_level))
        }
        _ => Ok((Arc::new(card.load_tokenizer()?), None, None)),
    }
}

/// Joins text-only content part lists into plain strings.
fn flatten_text_parts(messages: &Value) -> Value {
    let mut messages = messages.clone();
    for message in messages.as_array_mut().into_iter().flatten() {
        let Some(content) = message.get_mut("content") else {
            continue;
        };
        let Some(parts) = content.as_array() else {
            continue;
        };
        let texts: Option<Vec<&str>> = parts
            .iter()
            .map(|part| match part.get("type").and_then(Value::as_str) {
                Some("text") => part.get("text").and_then(Value::as_str),
                _ => None,
            })
            .collect();
        if let Some(texts) = texts {
            *content = Value::String(texts.join("\n"));
        }
    }
    messages
}
