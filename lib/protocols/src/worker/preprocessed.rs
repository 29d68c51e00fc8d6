//! `PreprocessedRequest`: the tokenized request the frontend sends a worker.
//!
//! Field names, nesting and null-vs-absent choices follow the request body observed from the
//! Dynamo 1.6.1 frontend: the three option structs always carry every key (`null` when
//! unset), `routing` carries only the hints that are set, and the optional extras are absent
//! unless used.

use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::nvext::RoutingConstraints;
use crate::openai::PromptTokensDetails;

/// When generation stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopConditions {
    /// Generation limit.
    pub max_tokens: Option<u32>,
    /// Stop strings (hidden from the output unless `include_stop_str_in_output`).
    pub stop: Option<Vec<String>>,
    /// Stop token ids.
    pub stop_token_ids: Option<Vec<u32>>,
    /// Stop token ids kept in the output.
    pub stop_token_ids_visible: Option<Vec<u32>>,
    /// Stop token ids removed from the output (the model's EOS ids go here).
    pub stop_token_ids_hidden: Option<Vec<u32>>,
    /// Minimum tokens before any stop condition applies.
    pub min_tokens: Option<u32>,
    /// Ignore EOS.
    pub ignore_eos: Option<bool>,
    /// Reasoning budget.
    pub max_thinking_tokens: Option<u32>,
}

/// Guided decoding constraints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GuidedDecodingOptions {
    /// JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// Regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Allowed outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<Vec<String>>,
    /// Context-free grammar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grammar: Option<String>,
    /// Backend name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Whitespace pattern for JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whitespace_pattern: Option<String>,
    /// Structural tag (engine-specific).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structural_tag: Option<Value>,
}

/// How to sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SamplingOptions {
    /// Choices to generate.
    pub n: Option<u8>,
    /// Candidates to generate server-side.
    pub best_of: Option<u8>,
    /// Presence penalty.
    pub presence_penalty: Option<f32>,
    /// Frequency penalty.
    pub frequency_penalty: Option<f32>,
    /// Repetition penalty.
    pub repetition_penalty: Option<f32>,
    /// Temperature.
    pub temperature: Option<f32>,
    /// Nucleus mass.
    pub top_p: Option<f32>,
    /// Top-k.
    pub top_k: Option<i32>,
    /// Min-p.
    pub min_p: Option<f32>,
    /// Beam search.
    pub use_beam_search: Option<bool>,
    /// Beam length penalty.
    pub length_penalty: Option<f32>,
    /// Seed.
    pub seed: Option<i64>,
    /// Keep matched stop strings in the output.
    pub include_stop_str_in_output: Option<bool>,
    /// Guided decoding.
    pub guided_decoding: Option<GuidedDecodingOptions>,
}

/// What to return besides tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputOptions {
    /// Log-probabilities per generated token.
    pub logprobs: Option<u32>,
    /// Log-probabilities per prompt token.
    pub prompt_logprobs: Option<u32>,
    /// Drop special tokens from text.
    pub skip_special_tokens: Option<bool>,
    /// Return the formatted prompt.
    pub formatted_prompt: Option<bool>,
    /// Return tokens as `token_id:<id>`.
    pub return_tokens_as_token_ids: Option<bool>,
}

/// Routing hints derived from `nvext`, headers and agent hints; only set keys are sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingHints {
    /// Pinned worker instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_instance_id: Option<u64>,
    /// Pinned prefill worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_worker_id: Option<u64>,
    /// Pinned decode worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_worker_id: Option<u64>,
    /// Pinned data-parallel rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_rank: Option<u32>,
    /// Pinned prefill data-parallel rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_dp_rank: Option<u32>,
    /// Expected output length (from `agent_hints.osl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_output_tokens: Option<u32>,
    /// LoRA adapter name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_name: Option<String>,
    /// KV-hash salt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_salt: Option<String>,
    /// Queue jump (from `agent_hints.priority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_jump: Option<f64>,
    /// Strict priority class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_priority: Option<u32>,
    /// Priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Only these workers may serve the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_worker_ids: Option<Vec<u64>>,
    /// Taint filter and preferences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_constraints: Option<RoutingConstraints>,
}

/// Result of a remote prefill, carried by the decode leg.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrefillResult {
    /// Engine-specific KV handoff parameters.
    pub disaggregated_params: Value,
    /// Cache accounting of the prefill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

/// Bootstrap rendezvous for engines that pull KV from the prefill worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapInfo {
    /// Prefill worker host.
    pub bootstrap_host: String,
    /// Prefill worker port.
    pub bootstrap_port: u16,
    /// Rendezvous room id.
    pub bootstrap_room: u64,
    /// Optional handoff id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_id: Option<Value>,
}

/// The request a worker engine receives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreprocessedRequest {
    /// Served model name.
    pub model: String,
    /// Prompt tokens (a list, or packed little-endian 32-bit bytes).
    #[serde(deserialize_with = "token_ids")]
    pub token_ids: Vec<u32>,
    /// Stop conditions.
    pub stop_conditions: StopConditions,
    /// Sampling options.
    pub sampling_options: SamplingOptions,
    /// Output options.
    pub output_options: OutputOptions,
    /// The model's EOS token ids.
    #[serde(default)]
    pub eos_token_ids: Vec<u32>,
    /// Checksum of the model card the frontend used.
    #[serde(default)]
    pub mdc_sum: Option<String>,
    /// Requested annotations.
    #[serde(default)]
    pub annotations: Vec<String>,
    /// Routing hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingHints>,
    /// Remote prefill result (decode leg of disaggregated serving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_result: Option<PrefillResult>,
    /// KV bootstrap rendezvous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap_info: Option<BootstrapInfo>,
    /// Passthrough request extras.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_args: Option<Value>,
    /// KV placement hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_hint: Option<Value>,
    /// The output must contain reasoning.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_reasoning: bool,
    /// Router latency hints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<Value>,
    /// Agent session context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_context: Option<Value>,
    /// Prompt embeddings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_embeds: Option<Value>,
    /// Multimodal inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_modal_data: Option<Value>,
    /// Multimodal input ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_modal_uuids: Option<Value>,
    /// Multimodal routing info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mm_routing_info: Option<Value>,
    /// Encoder worker result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_result: Option<Value>,
    /// Link to the request this one migrates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_link: Option<Value>,
    /// Multimodal processor options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mm_processor_kwargs: Option<Value>,
    /// Media decoding options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_io_kwargs: Option<Value>,
    /// Client timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timestamp_ms: Option<Value>,
    /// Per-request router configuration override (always sent, usually `null`).
    #[serde(default)]
    pub router_config_override: Option<Value>,
    /// Set on health-check canary requests only.
    #[serde(
        rename = "_HEALTH_CHECK",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check: Option<bool>,
}

fn token_ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u32>, D::Error> {
    deserializer.deserialize_any(TokenIdsVisitor)
}

struct TokenIdsVisitor;

impl<'de> Visitor<'de> for TokenIdsVisitor {
    type Value = Vec<u32>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of token ids or packed little-endian 32-bit token bytes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(t) = seq.next_element::<u32>()? {
            out.push(t);
        }
        Ok(out)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        if !v.len().is_multiple_of(4) {
            return Err(E::invalid_length(v.len(), &self));
        }
        Ok(v.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        self.visit_bytes(&v)
    }
}
