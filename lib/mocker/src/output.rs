//! What one simulated forward pass produces, and the load the simulator reports.

use std::time::Duration;

use stator_kv_router::protocols::{DpRank, RouterEvent, WorkerId};
use stator_tokens::Token;

use crate::request::{FinishReason, RequestId};

/// One output token of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenOutput {
    /// The request that produced it.
    pub request_id: RequestId,
    /// The token id.
    pub token_id: Token,
    /// Set when this is the request's last token.
    pub finish: Option<FinishReason>,
}

/// Usage of a request that ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedRequest {
    /// The request.
    pub request_id: RequestId,
    /// Why it ended.
    pub reason: FinishReason,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Output tokens produced (including a final EOS token).
    pub output_tokens: usize,
    /// Prompt tokens served from the prefix cache when the request was first scheduled
    /// (usage `prompt_tokens_details.cached_tokens`); 0 if it never was.
    pub cached_tokens: usize,
}

/// The result of one [`Simulator::step`](crate::Simulator::step): one forward pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepOutput {
    /// Tokens produced this pass, at most one per request, in scheduling order.
    pub tokens: Vec<TokenOutput>,
    /// Requests that finished this pass (their last token is in `tokens`).
    pub finished: Vec<FinishedRequest>,
    /// Requests preempted this pass (blocks freed; they will recompute).
    pub preempted: Vec<RequestId>,
    /// KV events for this pass, in the order the cache changed.
    pub events: Vec<RouterEvent>,
    /// Simulated duration of the pass (zero when nothing ran or `speedup_ratio` is 0).
    pub duration: Duration,
    /// New prompt tokens computed this pass (including recomputation after preemption).
    pub prefill_tokens: usize,
    /// Sequences that decoded one token this pass.
    pub decode_requests: usize,
}

impl StepOutput {
    /// Whether the pass did no work at all.
    pub fn is_empty(&self) -> bool {
        self.prefill_tokens == 0 && self.decode_requests == 0
    }
}

/// Load of one simulated engine, for the router's `kv_metrics` (`ActiveLoad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadMetrics {
    /// The worker.
    pub worker_id: WorkerId,
    /// Its DP rank.
    pub dp_rank: DpRank,
    /// KV blocks in use by running sequences (active shared blocks counted once, plus private
    /// blocks).
    pub active_decode_blocks: u64,
    /// Prompt tokens still to be prefilled: all tokens of waiting requests plus the
    /// uncomputed part of running requests that are prefilling.
    pub active_prefill_tokens: u64,
    /// KV blocks in use (same as `active_decode_blocks`; cached inactive blocks are free).
    pub kv_used_blocks: u64,
    /// KV blocks in the cache.
    pub kv_total_blocks: u64,
    /// Requests running.
    pub num_running: usize,
    /// Requests waiting (new or preempted).
    pub num_waiting: usize,
}

impl LoadMetrics {
    /// Fraction of the KV cache in use, `0..=1`.
    pub fn kv_usage(&self) -> f64 {
        if self.kv_total_blocks == 0 {
            0.0
        } else {
            self.kv_used_blocks as f64 / self.kv_total_blocks as f64
        }
    }
}

impl From<LoadMetrics> for stator_kv_router::protocols::ActiveLoad {
    fn from(load: LoadMetrics) -> Self {
        Self {
            worker_id: load.worker_id,
            dp_rank: load.dp_rank,
            active_decode_blocks: Some(load.active_decode_blocks),
            active_prefill_tokens: Some(load.active_prefill_tokens),
            kv_used_blocks: Some(load.kv_used_blocks),
        }
    }
}
