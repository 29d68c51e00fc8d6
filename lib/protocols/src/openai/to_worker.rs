//! OpenAI request → the option blocks of a worker `PreprocessedRequest`.
//!
//! The preprocessor still owns what needs the model: token ids, EOS ids (appended to
//! `stop_token_ids_hidden` unless `ignore_eos`), the context-length default for `max_tokens`,
//! `mdc_sum` and annotations. Everything derivable from the request alone is here, so chat
//! and completions map the same way.

use super::chat::ChatCompletionRequest;
use super::common::Stop;
use super::completions::CompletionRequest;
use super::ext::{CommonExt, PassthroughExt};
use crate::nvext::NvExt;
use crate::worker::{
    GuidedDecodingOptions, OutputOptions, RoutingHints, SamplingOptions, StopConditions,
};

/// The request fields the option blocks are built from, borrowed from either request type.
struct Knobs<'a> {
    max_tokens: Option<u32>,
    stop: Option<&'a Stop>,
    n: Option<u8>,
    best_of: Option<u8>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<i64>,
    logprobs: Option<u32>,
    return_tokens_as_token_ids: Option<bool>,
    thinking_budget: Option<u32>,
    common: &'a CommonExt,
    passthrough: &'a PassthroughExt,
    nvext: Option<&'a NvExt>,
}

impl Knobs<'_> {
    fn stop_conditions(&self) -> StopConditions {
        StopConditions {
            max_tokens: self.max_tokens,
            stop: self.stop.map(Stop::to_vec),
            stop_token_ids: None,
            stop_token_ids_visible: None,
            stop_token_ids_hidden: self.passthrough.stop_token_ids.clone(),
            min_tokens: self.common.min_tokens,
            ignore_eos: self.common.ignore_eos,
            max_thinking_tokens: self
                .nvext
                .and_then(|e| e.max_thinking_tokens)
                .or(self.thinking_budget),
        }
    }

    fn sampling_options(&self) -> SamplingOptions {
        let greedy = self.nvext.and_then(|e| e.greed_sampling) == Some(true);
        let c = self.common;
        let guided = GuidedDecodingOptions {
            json: c.guided_json.clone(),
            regex: c.guided_regex.clone(),
            choice: c.guided_choice.clone(),
            grammar: c.guided_grammar.clone(),
            backend: c.guided_decoding_backend.clone(),
            whitespace_pattern: c.guided_whitespace_pattern.clone(),
            structural_tag: None,
        };
        let has_guide = guided.json.is_some()
            || guided.regex.is_some()
            || guided.choice.is_some()
            || guided.grammar.is_some();
        SamplingOptions {
            n: self.n,
            best_of: self.best_of,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            repetition_penalty: c.repetition_penalty,
            temperature: if greedy { Some(0.0) } else { self.temperature },
            top_p: self.top_p,
            top_k: c.top_k,
            min_p: c.min_p,
            use_beam_search: None,
            length_penalty: None,
            seed: self.seed,
            include_stop_str_in_output: c.include_stop_str_in_output,
            guided_decoding: has_guide.then_some(guided),
        }
    }

    fn output_options(&self) -> OutputOptions {
        OutputOptions {
            logprobs: self.logprobs,
            prompt_logprobs: self.common.prompt_logprobs,
            skip_special_tokens: self.common.skip_special_tokens,
            formatted_prompt: None,
            return_tokens_as_token_ids: self.return_tokens_as_token_ids,
        }
    }

    fn routing_hints(&self) -> Option<RoutingHints> {
        let ext = self.nvext;
        let hints = ext.and_then(|e| e.agent_hints.as_ref());
        let routing = RoutingHints {
            backend_instance_id: ext.and_then(|e| e.backend_instance_id),
            prefill_worker_id: ext.and_then(|e| e.prefill_worker_id),
            decode_worker_id: ext.and_then(|e| e.decode_worker_id),
            dp_rank: ext.and_then(|e| e.dp_rank),
            prefill_dp_rank: ext.and_then(|e| e.prefill_dp_rank),
            expected_output_tokens: hints.and_then(|h| h.osl),
            lora_name: None,
            cache_salt: ext
                .and_then(|e| e.cache_salt.clone())
                .or_else(|| self.passthrough.cache_salt.clone()),
            priority_jump: hints.and_then(|h| h.priority).map(f64::from),
            strict_priority: hints.and_then(|h| h.strict_priority),
            priority: hints.and_then(|h| h.priority),
            allowed_worker_ids: None,
            routing_constraints: ext.and_then(|e| e.routing_constraints.clone()),
        };
        (routing != RoutingHints::default()).then_some(routing)
    }
}

macro_rules! worker_option_methods {
    () => {
        /// Stop conditions without the model's EOS ids.
        pub fn stop_conditions(&self) -> StopConditions {
            self.knobs().stop_conditions()
        }

        /// Sampling options (`nvext.greed_sampling` forces temperature 0).
        pub fn sampling_options(&self) -> SamplingOptions {
            self.knobs().sampling_options()
        }

        /// Output options (`formatted_prompt` is left to the preprocessor).
        pub fn output_options(&self) -> OutputOptions {
            self.knobs().output_options()
        }

        /// Routing hints from `nvext`, or `None` when the request sets none.
        pub fn routing_hints(&self) -> Option<RoutingHints> {
            self.knobs().routing_hints()
        }
    };
}

impl ChatCompletionRequest {
    fn knobs(&self) -> Knobs<'_> {
        let r = &self.inner;
        Knobs {
            max_tokens: self.max_tokens(),
            stop: r.stop.as_ref(),
            n: r.n,
            best_of: None,
            presence_penalty: r.presence_penalty,
            frequency_penalty: r.frequency_penalty,
            temperature: r.temperature,
            top_p: r.top_p,
            seed: r.seed,
            logprobs: (r.logprobs == Some(true)).then(|| u32::from(r.top_logprobs.unwrap_or(0))),
            return_tokens_as_token_ids: self.return_tokens_as_token_ids,
            thinking_budget: self.thinking_token_budget,
            common: &self.common,
            passthrough: &self.passthrough,
            nvext: self.nvext.as_ref(),
        }
    }

    worker_option_methods!();
}

impl CompletionRequest {
    fn knobs(&self) -> Knobs<'_> {
        let r = &self.inner;
        Knobs {
            max_tokens: r.max_tokens,
            stop: r.stop.as_ref(),
            n: r.n,
            best_of: r.best_of,
            presence_penalty: r.presence_penalty,
            frequency_penalty: r.frequency_penalty,
            temperature: r.temperature,
            top_p: r.top_p,
            seed: r.seed,
            logprobs: r.logprobs.map(u32::from),
            return_tokens_as_token_ids: self.return_tokens_as_token_ids,
            thinking_budget: None,
            common: &self.common,
            passthrough: &self.passthrough,
            nvext: self.nvext.as_ref(),
        }
    }

    worker_option_methods!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::{Prompt, ValidationOptions, parse_request};

    #[test]
    fn observed_request_maps_to_the_observed_worker_blocks() {
        let body = br#"{"model":"qwen-mock","messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"temperature":0.5,"stop":["xyz"],"nvext":{"agent_hints":{"osl":10,"priority":2}}}"#;
        let req: ChatCompletionRequest =
            parse_request(body, &ValidationOptions::default()).unwrap();
        let stop = serde_json::to_value(req.stop_conditions()).unwrap();
        assert_eq!(
            stop,
            serde_json::json!({"max_tokens":3,"stop":["xyz"],"stop_token_ids":null,
                "stop_token_ids_visible":null,"stop_token_ids_hidden":null,"min_tokens":null,
                "ignore_eos":null,"max_thinking_tokens":null})
        );
        let sampling = req.sampling_options();
        assert_eq!(sampling.temperature, Some(0.5));
        assert_eq!(sampling.guided_decoding, None);
        assert_eq!(req.output_options(), OutputOptions::default());
        assert_eq!(
            serde_json::to_value(req.routing_hints()).unwrap(),
            serde_json::json!({"expected_output_tokens":10,"priority_jump":2.0,"priority":2})
        );
    }

    #[test]
    fn completions_map_logprobs_best_of_and_greedy() {
        let mut req = CompletionRequest::new("m", Prompt::Text("p".into()));
        req.inner.logprobs = Some(2);
        req.inner.best_of = Some(3);
        req.inner.temperature = Some(1.0);
        req.common.guided_regex = Some("a+".into());
        req.passthrough.stop_token_ids = Some(vec![7]);
        req.nvext = Some(NvExt {
            greed_sampling: Some(true),
            cache_salt: Some("salt".into()),
            ..NvExt::default()
        });
        assert_eq!(req.output_options().logprobs, Some(2));
        let sampling = req.sampling_options();
        assert_eq!(sampling.best_of, Some(3));
        assert_eq!(sampling.temperature, Some(0.0));
        assert_eq!(
            sampling.guided_decoding.unwrap().regex.as_deref(),
            Some("a+")
        );
        assert_eq!(req.stop_conditions().stop_token_ids_hidden, Some(vec![7]));
        assert_eq!(
            req.routing_hints().unwrap().cache_salt.as_deref(),
            Some("salt")
        );
        assert_eq!(
            CompletionRequest::new("m", Prompt::Text("p".into())).routing_hints(),
            None
        );
    }
}
