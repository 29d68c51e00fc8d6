//! What the pipeline tells the router about a request, and what the router answers.

use stator_runtime::InstanceId;

/// Per-request routing inputs beyond the token ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvRoutingHints {
    /// `nvext.agent_hints.priority`: under the fcfs queue policy a request jumps this many
    /// seconds ahead; under wspt it weighs `1 + priority`. Only matters while requests queue.
    pub priority: Option<i32>,
    /// `nvext.agent_hints.strict_priority`: a higher class always leaves the queue first.
    pub strict_priority: Option<u32>,
    /// `cache_salt`: mixed into the block hashes, so only equally salted prompts share cache.
    pub cache_salt: Option<String>,
    /// LoRA adapter name: mixed into the block hashes like the salt.
    pub lora_name: Option<String>,
    /// `nvext.agent_hints.osl`: expected output tokens. Carried for output-block tracking,
    /// which the `stator-kv-router` cost function does not model yet; placement ignores it.
    pub expected_output_tokens: Option<u32>,
    /// `nvext.backend_instance_id`: serve on this instance only (busy thresholds do not apply).
    pub backend_instance_id: Option<InstanceId>,
    /// With `backend_instance_id`: only this data-parallel rank.
    pub dp_rank: Option<u32>,
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvDecision {
    /// The chosen worker instance.
    pub instance_id: InstanceId,
    /// Its data-parallel rank.
    pub dp_rank: u32,
    /// Leading prompt blocks the router believes that worker already caches.
    pub overlap_blocks: u32,
}
