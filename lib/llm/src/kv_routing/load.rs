//! The load a worker publishes on `kv_metrics` (Dynamo's `ActiveLoad`).

use serde::{Deserialize, Serialize};
use stator_kv_router::protocols::{DpRank, WorkerId};

/// One worker rank's load, as published on the `kv_metrics` topic (msgpack with field names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveLoad {
    /// The worker's instance id.
    pub worker_id: WorkerId,
    /// Its data-parallel rank.
    #[serde(default)]
    pub dp_rank: DpRank,
    /// KV blocks held by running sequences.
    #[serde(default)]
    pub active_decode_blocks: Option<u64>,
    /// Prompt tokens still to prefill.
    #[serde(default)]
    pub active_prefill_tokens: Option<u64>,
    /// KV blocks in use.
    #[serde(default)]
    pub kv_used_blocks: Option<u64>,
}
