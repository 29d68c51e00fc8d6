//! [`ModelRuntimeConfig`]: what the engine behind a card reports about itself.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Engine facts published in the card's `runtime_config` (Dynamo's field names and order).
///
/// Fields Dynamo always writes are always serialized (as `null` when unknown); the optional
/// ones it omits when unset are omitted here too. Missing fields deserialize to defaults, so
/// cards from older or newer workers still load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelRuntimeConfig {
    /// The context length the engine enforces (`0` or `null`: none published).
    pub context_length: Option<u32>,
    /// KV-cache capacity in blocks.
    pub total_kv_blocks: Option<u64>,
    /// Maximum concurrently running sequences.
    pub max_num_seqs: Option<u64>,
    /// Maximum tokens per scheduler batch.
    pub max_num_batched_tokens: Option<u64>,
    /// The tool-call parser the frontend should run on this model's output.
    pub tool_call_parser: Option<String>,
    /// The reasoning parser the frontend should run on this model's output.
    pub reasoning_parser: Option<String>,
    /// How tool-call arguments are returned (`json_string`).
    pub tool_call_arguments_format: String,
    /// Structural-tag constrained decoding mode (`off`).
    pub structural_tag_mode: String,
    /// Structural-tag scope (`auto`).
    pub structural_tag_scope: String,
    /// Structural-tag schema source (`auto`).
    pub structural_tag_schema: String,
    /// Whether tools are dropped from the prompt when `tool_choice` is `none`.
    pub exclude_tools_when_tool_choice_none: bool,
    /// First data-parallel rank served by this worker.
    pub data_parallel_start_rank: u32,
    /// Number of data-parallel ranks served by this worker.
    pub data_parallel_size: u32,
    /// Whether the worker keeps a local KV indexer the router can query.
    pub enable_local_indexer: bool,
    /// Whether the worker publishes KV events.
    pub kv_event_publishing_enabled: bool,
    /// Free-form engine data.
    pub runtime_data: Map<String, Value>,
    /// Whether EAGLE speculative decoding is on.
    pub enable_eagle: bool,
    /// Bootstrap address of a disaggregated prefill worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disaggregated_endpoint: Option<DisaggregatedEndpoint>,
    /// Worker taints for routing constraints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taints: Option<Value>,
    /// A routing id stable across restarts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stable_routing_id: Option<Value>,
    /// Topology domains for locality-aware routing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topology_domains: Option<Value>,
    /// KV-transfer domain for disaggregated serving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_transfer_domain: Option<Value>,
}

impl Default for ModelRuntimeConfig {
    fn default() -> Self {
        Self {
            context_length: None,
            total_kv_blocks: None,
            max_num_seqs: None,
            max_num_batched_tokens: None,
            tool_call_parser: None,
            reasoning_parser: None,
            tool_call_arguments_format: "json_string".to_owned(),
            structural_tag_mode: "off".to_owned(),
            structural_tag_scope: "auto".to_owned(),
            structural_tag_schema: "auto".to_owned(),
            exclude_tools_when_tool_choice_none: true,
            data_parallel_start_rank: 0,
            data_parallel_size: 1,
            enable_local_indexer: false,
            kv_event_publishing_enabled: false,
            runtime_data: Map::new(),
            enable_eagle: false,
            disaggregated_endpoint: None,
            taints: None,
            stable_routing_id: None,
            topology_domains: None,
            kv_transfer_domain: None,
        }
    }
}

/// Where a disaggregated prefill worker accepts KV bootstrap connections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisaggregatedEndpoint {
    /// Bootstrap host.
    pub bootstrap_host: Option<String>,
    /// Bootstrap port.
    pub bootstrap_port: Option<u16>,
}
