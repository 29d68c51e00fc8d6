//! The active requests of one worker and the load they put on it.

use std::time::Instant;

use rustc_hash::FxHashMap;
use stator_tokens::SequenceHash;

/// One request being tracked on a worker.
#[derive(Debug, Clone)]
struct TrackedRequest {
    /// Sequence hashes counted in the shared block set (empty when KV reuse is not assumed).
    shared_blocks: Vec<SequenceHash>,
    /// Blocks counted for this request alone (when KV reuse is not assumed).
    private_blocks: u64,
    /// Prefill tokens still counted; 0 once the first token arrived.
    prefill_tokens: u64,
    /// When the request was added (stale expiry).
    added_at: Instant,
}

/// The active requests of one (worker, DP rank): their prefill tokens until the first token
/// and their KV blocks until completion, with blocks shared by several requests counted once.
#[derive(Debug, Clone, Default)]
pub struct ActiveSequences {
    requests: FxHashMap<String, TrackedRequest>,
    block_refs: FxHashMap<SequenceHash, u32>,
    private_blocks: u64,
    prefill_tokens: u64,
}

impl ActiveSequences {
    /// Prompt tokens of requests still in prefill.
    pub fn active_prefill_tokens(&self) -> u64 {
        self.prefill_tokens
    }

    /// Distinct blocks held by the active requests.
    pub fn active_blocks(&self) -> u64 {
        self.block_refs.len() as u64 + self.private_blocks
    }

    /// Number of active requests.
    pub fn active_requests(&self) -> u64 {
        self.requests.len() as u64
    }

    /// Whether `request_id` is active here.
    pub fn contains(&self, request_id: &str) -> bool {
        self.requests.contains_key(request_id)
    }

    /// Hashes of the distinct shared blocks held here.
    pub(crate) fn active_hashes(&self) -> impl Iterator<Item = &SequenceHash> {
        self.block_refs.keys()
    }

    /// Start tracking a request; `false` (and no change) if the id is already active here.
    /// `on_first_ref` sees each shared block that becomes active here.
    pub(crate) fn add(
        &mut self,
        request_id: String,
        blocks: &[SequenceHash],
        prefill_tokens: u64,
        assume_kv_reuse: bool,
        now: Instant,
        mut on_first_ref: impl FnMut(SequenceHash),
    ) -> bool {
        if self.requests.contains_key(&request_id) {
            return false;
        }
        let (shared_blocks, private_blocks) = if assume_kv_reuse {
            for hash in blocks {
                let count = self.block_refs.entry(*hash).or_insert(0);
                *count += 1;
                if *count == 1 {
                    on_first_ref(*hash);
                }
            }
            (blocks.to_vec(), 0)
        } else {
            (Vec::new(), blocks.len() as u64)
        };
        self.private_blocks += private_blocks;
        self.prefill_tokens += prefill_tokens;
        self.requests.insert(
            request_id,
            TrackedRequest {
                shared_blocks,
                private_blocks,
                prefill_tokens,
                added_at: now,
            },
        );
        true
    }

    /// Stop counting a request's prefill tokens (its first token arrived).
    pub(crate) fn mark_prefill_completed(&mut self, request_id: &str) -> bool {
        let Some(request) = self.requests.get_mut(request_id) else {
            return false;
        };
        self.prefill_tokens -= request.prefill_tokens;
        request.prefill_tokens = 0;
        true
    }

    /// Forget a request and release its blocks; `on_last_ref` sees each shared block that
    /// is no longer active here.
    pub(crate) fn free(
        &mut self,
        request_id: &str,
        mut on_last_ref: impl FnMut(SequenceHash),
    ) -> bool {
        let Some(request) = self.requests.remove(request_id) else {
            return false;
        };
        self.prefill_tokens -= request.prefill_tokens;
        self.private_blocks -= request.private_blocks;
        for hash in &request.shared_blocks {
            if let Some(count) = self.block_refs.get_mut(hash) {
                *count -= 1;
                if *count == 0 {
                    self.block_refs.remove(hash);
                    on_last_ref(*hash);
                }
            }
        }
        true
    }

    /// Ids of requests added before `cutoff`.
    pub(crate) fn added_before(&self, cutoff: Instant) -> Vec<String> {
        self.requests
            .iter()
            .filter(|(_, request)| request.added_at < cutoff)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Ids of every active request.
    pub(crate) fn request_ids(&self) -> impl Iterator<Item = &String> {
        self.requests.keys()
    }
}
