//! OpenAI requests → the worker requests of their choices.

use serde_json::Value;
use stator_protocols::nvext::NvExt;
use stator_protocols::openai::{
    ChatCompletionRequest, CommonExt, CompletionRequest, PassthroughExt, PromptItem, ToolChoice,
    ToolChoiceMode,
};
use stator_protocols::worker::{
    OutputOptions, PreprocessedRequest, RoutingHints, SamplingOptions, StopConditions,
};

use super::engine::ModelPipeline;
use super::error::PipelineError;
use crate::backend::DetokenizeOptions;
use crate::preprocess::StopRequest;

/// How many prompt tokens seed the detokenizer (enough for any leading-space merge).
const PROMPT_TAIL_FOR_DECODER: usize = 8;

/// One worker request of a response: the choice it fills and what the worker gets.
#[derive(Debug, Clone)]
pub struct ChoiceRequest {
    /// The choice index in the response.
    pub index: u32,
    /// Whether this request's prompt counts in `usage.prompt_tokens` (the first choice of
    /// each prompt; the others repeat it).
    pub counts_prompt: bool,
    /// What is sent to the worker (boxed: it is ~2 KB and every future on the way to the
    /// request plane would otherwise carry, and move, a copy of it).
    pub request: Box<PreprocessedRequest>,
    /// How the worker's tokens are turned into text.
    pub(crate) detokenize: DetokenizeOptions,
}

/// The request fields every prompt of a request shares.
struct Shared<'a> {
    max_tokens: Option<u32>,
    stop: Vec<String>,
    n: u8,
    common: &'a CommonExt,
    passthrough: &'a PassthroughExt,
    nvext: Option<&'a NvExt>,
    stop_conditions: StopConditions,
    sampling: SamplingOptions,
    output: OutputOptions,
    routing: Option<RoutingHints>,
}

impl ModelPipeline {
    /// Renders, tokenizes and budgets a chat request; one [`ChoiceRequest`] per choice.
    pub fn prepare_chat(
        &self,
        req: &ChatCompletionRequest,
    ) -> Result<Vec<ChoiceRequest>, PipelineError> {
        let nvext = req.nvext.as_ref();
        let token_ids = if let Some(tokens) = nvext.and_then(|e| e.token_data.clone()) {
            tokens
        } else {
            let messages = serde_json::to_value(&req.inner.messages)
                .map_err(|e| PipelineError::Internal(e.to_string()))?;
            let prompt = if nvext.and_then(|e| e.use_raw_prompt) == Some(true) {
                raw_prompt(&messages)
            } else {
                let drop_tools = matches!(
                    req.inner.tool_choice,
                    Some(ToolChoice::Mode(ToolChoiceMode::None))
                );
                let tools = match (&req.inner.tools, drop_tools) {
                    (Some(tools), false) if !tools.is_empty() => Some(
                        serde_json::to_value(tools)
                            .map_err(|e| PipelineError::Internal(e.to_string()))?,
                    ),
                    _ => None,
                };
                self.preprocessor().render_chat(
                    &messages,
                    tools.as_ref(),
                    req.common.add_generation_prompt.unwrap_or(true),
                    req.chat_template_args.as_ref(),
                )?
            };
            self.preprocessor().tokenize(&prompt, false)?
        };
        let shared = Shared {
            max_tokens: req.max_tokens(),
            stop: req.stop_strings(),
            n: req.n(),
            common: &req.common,
            passthrough: &req.passthrough,
            nvext,
            stop_conditions: req.stop_conditions(),
            sampling: req.sampling_options(),
            output: req.output_options(),
            routing: req.routing_hints(),
        };
        self.choices_for(&shared, token_ids, 0)
    }

    /// Tokenizes and budgets every prompt of a completions request; choices are numbered
    /// prompt by prompt, `n` per prompt.
    pub fn prepare_completion(
        &self,
        req: &CompletionRequest,
    ) -> Result<Vec<ChoiceRequest>, PipelineError> {
        let shared = Shared {
            max_tokens: req.inner.max_tokens,
            stop: req.stop_strings(),
            n: req.n(),
            common: &req.common,
            passthrough: &req.passthrough,
            nvext: req.nvext.as_ref(),
            stop_conditions: req.stop_conditions(),
            sampling: req.sampling_options(),
            output: req.output_options(),
            routing: req.routing_hints(),
        };
        let mut choices = Vec::new();
        for item in req.inner.prompt.items() {
            let token_ids = match item {
                PromptItem::Text(text) => self.preprocessor().tokenize(text, true)?,
                PromptItem::Tokens(ids) => ids.to_vec(),
            };
            let first = u32::try_from(choices.len()).unwrap_or(u32::MAX);
            choices.extend(self.choices_for(&shared, token_ids, first)?);
        }
        Ok(choices)
    }

    /// The `n` worker requests of one prompt, numbered from `first_index`.
    fn choices_for(
        &self,
        shared: &Shared<'_>,
        token_ids: Vec<u32>,
        first_index: u32,
    ) -> Result<Vec<ChoiceRequest>, PipelineError> {
        let pre = self.preprocessor();
        let vocab = self.vocab_size();
        if let Some(&bad) = token_ids.iter().find(|&&id| id >= vocab) {
            tracing::debug!(token = bad, "prompt token id outside the vocabulary");
            return Err(PipelineError::InvalidRequest("Invalid request".to_owned()));
        }
        let stop_token_ids = shared.passthrough.stop_token_ids.as_deref().unwrap_or(&[]);
        let ignore_eos = shared.common.ignore_eos.unwrap_or(false);
        let stop = pre.stop_conditions(
            &StopRequest {
                max_tokens: shared.max_tokens,
                min_tokens: shared.common.min_tokens,
                stop: &shared.stop,
                stop_token_ids,
                ignore_eos,
            },
            token_ids.len(),
        )?;
        let mut stop_conditions = shared.stop_conditions.clone();
        stop_conditions.max_tokens = stop.max_tokens;
        stop_conditions.stop_token_ids_hidden = Some(stop.stop_token_ids_hidden.clone());
        let annotations = shared
            .nvext
            .and_then(|e| e.annotations.clone())
            .unwrap_or_default();
        let tail = token_ids.len().saturating_sub(PROMPT_TAIL_FOR_DECODER);
        let detokenize = DetokenizeOptions {
            prompt_token_ids: token_ids[tail..].to_vec(),
            stop,
            include_stop_str_in_output: shared.common.include_stop_str_in_output == Some(true),
            skip_special_tokens: shared.common.skip_special_tokens.unwrap_or(true),
        };
        let mut sampling = shared.sampling.clone();
        let n = u32::from(shared.n.max(1));
        if n > 1 {
            // Each worker request produces one choice.
            sampling.n = None;
        }
        let request = PreprocessedRequest {
            model: self.model().to_owned(),
            token_ids,
            stop_conditions,
            sampling_options: sampling,
            output_options: shared.output.clone(),
            eos_token_ids: pre.eos_token_ids().to_vec(),
            mdc_sum: Some(pre.mdc_sum().to_owned()),
            annotations,
            routing: shared.routing.clone(),
            ..PreprocessedRequest::default()
        };
        // The first choice takes the request itself; only further choices copy it.
        let copies: Vec<PreprocessedRequest> = (1..n).map(|_| request.clone()).collect();
        Ok(std::iter::once(request)
            .chain(copies)
            .zip(0..n)
            .map(|(mut request, i)| {
                if let Some(seed) = request.sampling_options.seed {
                    request.sampling_options.seed = Some(seed.wrapping_add(i64::from(i)));
                }
                ChoiceRequest {
                    index: first_index + i,
                    counts_prompt: i == 0,
                    request: Box::new(request),
                    detokenize: detokenize.clone(),
                }
            })
            .collect())
    }
}

/// `nvext.use_raw_prompt`: the messages' text joined without a template.
fn raw_prompt(messages: &Value) -> String {
    let mut prompt = String::new();
    for message in messages.as_array().into_iter().flatten() {
        match message.get("content") {
            Some(Value::String(text)) => prompt.push_str(text),
            Some(Value::Array(parts)) => {
                for text in parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                {
                    prompt.push_str(text);
                }
            }
            _ => {}
        }
    }
    prompt
}
