//! `nvext`: NVIDIA's request extension object, and the `nvext` object of responses.
//!
//! The request struct rejects unknown keys; the serde error lists the allowed set in
//! declaration order, which is Dynamo 1.6.1's order, so the 400 message is identical.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Annotation asking for the rendered prompt as an SSE `event: formatted_prompt`.
pub const ANNOTATION_FORMATTED_PROMPT: &str = "formatted_prompt";
/// Annotation asking for the prompt token ids as an SSE `event: token_ids`.
pub const ANNOTATION_TOKEN_IDS: &str = "token_ids";
/// Annotation asking for the request id as an SSE `event: request_id`.
pub const ANNOTATION_REQUEST_ID: &str = "request_id";
/// Annotation asking for the chosen worker as an SSE `event: worker_id`.
pub const ANNOTATION_WORKER_ID: &str = "worker_id";
/// Annotation turning the request into a route-only query (no generation).
pub const ANNOTATION_QUERY_INSTANCE_ID: &str = "query_instance_id";

/// Request `nvext` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvExt {
    /// Force greedy sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greed_sampling: Option<bool>,
    /// Skip the chat template and use the raw prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_raw_prompt: Option<bool>,
    /// Out-of-band information to stream back as SSE events (see the `ANNOTATION_*` names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<String>>,
    /// Pin the request to this worker instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_instance_id: Option<u64>,
    /// Pre-tokenized prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_data: Option<Vec<u32>>,
    /// Reasoning budget in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_thinking_tokens: Option<u32>,
    /// KV-hash salt / cache namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_salt: Option<String>,
    /// Extra response fields to include in the response `nvext` (`worker_id`, `timing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_fields: Option<Vec<String>>,
    /// Out-of-band upload target for large metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_upload: Option<MetadataUpload>,
    /// Pin the prefill leg to this worker (disaggregated serving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_worker_id: Option<u64>,
    /// Pin the decode leg to this worker (disaggregated serving).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_worker_id: Option<u64>,
    /// Pin the data-parallel rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp_rank: Option<u32>,
    /// Pin the prefill leg's data-parallel rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_dp_rank: Option<u32>,
    /// Scheduling hints from agentic clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_hints: Option<AgentHints>,
    /// Client-side timestamp of the request in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timestamp_ms: Option<f64>,
    /// Worker taint filter and preferences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_constraints: Option<RoutingConstraints>,
    /// Latency targets for the router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterHints>,
}

impl NvExt {
    /// Whether `annotations` contains `name`.
    pub fn has_annotation(&self, name: &str) -> bool {
        self.annotations
            .as_deref()
            .is_some_and(|a| a.iter().any(|x| x == name))
    }

    /// Whether `extra_fields` contains `name`.
    pub fn wants_extra_field(&self, name: &str) -> bool {
        self.extra_fields
            .as_deref()
            .is_some_and(|a| a.iter().any(|x| x == name))
    }
}

/// `nvext.metadata_upload`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataUpload {
    /// Where to upload.
    pub url: String,
}

/// `nvext.agent_hints`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentHints {
    /// Queue priority (higher jumps ahead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Strict priority class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict_priority: Option<u32>,
    /// Expected output sequence length in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub osl: Option<u32>,
    /// Warm the cache with a prefill ahead of the real request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speculative_prefill: Option<bool>,
    /// Deprecated latency sensitivity weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_sensitivity: Option<f64>,
}

/// `nvext.routing_constraints`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RoutingConstraints {
    /// A worker must carry all of these taints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_taints: Option<Vec<String>>,
    /// Preference weight per taint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_taints: Option<BTreeMap<String, f32>>,
}

/// `nvext.router`: latency targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouterHints {
    /// Time-to-first-token target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_target: Option<f64>,
    /// Inter-token-latency target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_target: Option<f64>,
}

/// Response `nvext` object (`extra_fields` results and engine data).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvExtResponse {
    /// Which workers served the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<WorkerIdInfo>,
    /// Request timing breakdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimingInfo>,
    /// Prompt token ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<Vec<u32>>,
    /// Opaque engine data forwarded from the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_data: Option<Value>,
}

/// Response `nvext.worker_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerIdInfo {
    /// Instance that ran the prefill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_worker_id: Option<u64>,
    /// Instance that ran the decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_worker_id: Option<u64>,
    /// Prefill data-parallel rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_dp_rank: Option<u32>,
    /// Decode data-parallel rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode_dp_rank: Option<u32>,
}

/// Response `nvext.timing` (milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TimingInfo {
    /// Wall-clock time the frontend received the request (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_received_ms: Option<u64>,
    /// Time spent queued before prefill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_wait_time_ms: Option<f64>,
    /// Time spent in prefill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefill_time_ms: Option<f64>,
    /// Time to first token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<f64>,
    /// Total request time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_time_ms: Option<f64>,
    /// Fraction of the prompt served from the KV cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_hit_rate: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_lists_the_allowed_set_in_dynamo_order() {
        let err = serde_json::from_str::<NvExt>(r#"{"ignore_eos": true}"#).unwrap_err();
        let expected = "unknown field `ignore_eos`, expected one of `greed_sampling`, \
            `use_raw_prompt`, `annotations`, `backend_instance_id`, `token_data`, \
            `max_thinking_tokens`, `cache_salt`, `extra_fields`, `metadata_upload`, \
            `prefill_worker_id`, `decode_worker_id`, `dp_rank`, `prefill_dp_rank`, \
            `agent_hints`, `request_timestamp_ms`, `routing_constraints`, `router` \
            at line 1 column 13";
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn annotations_and_hints_parse() {
        let ext: NvExt = serde_json::from_str(
            r#"{"annotations":["formatted_prompt"],"agent_hints":{"osl":10,"priority":2},
                "extra_fields":["timing"],"router":{"ttft_target":200}}"#,
        )
        .unwrap();
        assert!(ext.has_annotation(ANNOTATION_FORMATTED_PROMPT));
        assert!(!ext.has_annotation(ANNOTATION_TOKEN_IDS));
        assert!(ext.wants_extra_field("timing"));
        let hints = ext.agent_hints.unwrap();
        assert_eq!((hints.osl, hints.priority), (Some(10), Some(2)));
        assert_eq!(ext.router.unwrap().ttft_target, Some(200.0));
    }
}
