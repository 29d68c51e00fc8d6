//! The steppable simulated engine: submit requests, run forward passes, inspect the cache.

use std::collections::VecDeque;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rustc_hash::FxHashSet;
use stator_kv_router::protocols::{DpRank, KvCacheEvent, RouterEvent, WorkerId};
use stator_tokens::SequenceHash;

use crate::config::MockerConfig;
use crate::error::MockerError;
use crate::kv::{BlockManager, BlockUsage};
use crate::output::{FinishedRequest, LoadMetrics};
use crate::request::{FinishReason, MockRequest, RequestId};
use crate::sequence::Sequence;

/// One simulated vLLM-style engine (one DP rank of one worker).
///
/// A deterministic state machine: [`add_request`](Self::add_request) queues work,
/// each [`step`](Self::step) runs one forward pass and reports its tokens, finished requests,
/// KV events and simulated duration. Sleeping for that duration (divided already by
/// `speedup_ratio`) is the caller's business, so the simulator runs as fast as the CPU allows
/// in tests and replays.
#[derive(Debug)]
pub struct Simulator {
    pub(crate) config: MockerConfig,
    pub(crate) worker_id: WorkerId,
    pub(crate) dp_rank: DpRank,
    pub(crate) kv: BlockManager,
    pub(crate) waiting: VecDeque<Sequence>,
    pub(crate) running: Vec<Sequence>,
    pub(crate) live: FxHashSet<RequestId>,
    pub(crate) rng: StdRng,
    next_event_id: u64,
}

impl Simulator {
    /// A simulator for DP rank 0 of `worker_id`.
    pub fn new(config: MockerConfig, worker_id: WorkerId) -> Result<Self, MockerError> {
        Self::with_dp_rank(config, worker_id, 0)
    }

    /// A simulator for one DP rank of `worker_id` (its events carry `dp_rank`).
    pub fn with_dp_rank(
        config: MockerConfig,
        worker_id: WorkerId,
        dp_rank: DpRank,
    ) -> Result<Self, MockerError> {
        config.validate()?;
        let seed = config.seed
            ^ worker_id.rotate_left(21)
            ^ u64::from(dp_rank).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Ok(Self {
            kv: BlockManager::new(config.num_gpu_blocks, config.enable_prefix_caching),
            config,
            worker_id,
            dp_rank,
            waiting: VecDeque::new(),
            running: Vec::new(),
            live: FxHashSet::default(),
            rng: StdRng::seed_from_u64(seed),
            next_event_id: 0,
        })
    }

    /// Queue a request (it runs from the next [`step`](Self::step) on, FCFS). Refused as by
    /// [`MockerConfig::check_request`], or when its id is already live.
    pub fn add_request(&mut self, request: MockRequest) -> Result<(), MockerError> {
        let max_tokens = self.config.check_request(&request)?;
        if self.live.contains(&request.id) {
            return Err(MockerError::DuplicateRequest(request.id));
        }
        self.live.insert(request.id);
        self.waiting
            .push_back(Sequence::new(request, max_tokens, self.config.block_size));
        Ok(())
    }

    /// Stop a request now, freeing its blocks; `None` if it is not live. Its cached full
    /// blocks stay in the prefix cache (no event).
    pub fn cancel(&mut self, request_id: RequestId) -> Option<FinishedRequest> {
        let mut seq = if let Some(pos) = self.running.iter().position(|s| s.id == request_id) {
            self.running.remove(pos)
        } else {
            let pos = self.waiting.iter().position(|s| s.id == request_id)?;
            self.waiting.remove(pos)?
        };
        seq.release(&mut self.kv);
        Some(self.retire(&seq, FinishReason::Cancelled))
    }

    /// Cancel every request and drop the whole prefix cache; a `cleared` event (prefix
    /// caching only) is delivered by the next [`step`](Self::step) or
    /// [`drain_events`](Self::drain_events). Returns the cancelled requests.
    pub fn reset(&mut self) -> Vec<FinishedRequest> {
        let mut sequences: Vec<Sequence> = self.running.drain(..).collect();
        sequences.extend(self.waiting.drain(..));
        let mut cancelled = Vec::with_capacity(sequences.len());
        for mut seq in sequences {
            seq.release(&mut self.kv);
            cancelled.push(self.retire(&seq, FinishReason::Cancelled));
        }
        self.kv.clear();
        cancelled
    }

    /// Take the KV events not yet delivered (normally [`step`](Self::step) delivers them).
    pub fn drain_events(&mut self) -> Vec<RouterEvent> {
        self.kv
            .take_events()
            .into_iter()
            .map(|data| {
                let event_id = self.next_event_id;
                self.next_event_id += 1;
                RouterEvent::new(
                    self.worker_id,
                    KvCacheEvent {
                        event_id,
                        data,
                        dp_rank: self.dp_rank,
                    },
                )
            })
            .collect()
    }

    /// The configuration.
    pub fn config(&self) -> &MockerConfig {
        &self.config
    }

    /// The worker id events are published under.
    pub fn worker_id(&self) -> WorkerId {
        self.worker_id
    }

    /// The DP rank events are published under.
    pub fn dp_rank(&self) -> DpRank {
        self.dp_rank
    }

    /// Sequence hashes of every block in the prefix cache (active or inactive).
    pub fn cached_blocks(&self) -> FxHashSet<SequenceHash> {
        self.kv.cached_blocks()
    }

    /// How the KV blocks are used right now.
    pub fn block_usage(&self) -> BlockUsage {
        self.kv.usage()
    }

    /// Whether `request_id` is waiting or running.
    pub fn contains(&self, request_id: RequestId) -> bool {
        self.live.contains(&request_id)
    }

    /// Requests running.
    pub fn num_running(&self) -> usize {
        self.running.len()
    }

    /// Requests waiting (new or preempted).
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Whether there is nothing to run.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    /// Current load, for `kv_metrics`.
    pub fn load_metrics(&self) -> LoadMetrics {
        let used = self.kv.usage().in_use() as u64;
        let waiting: usize = self.waiting.iter().map(Sequence::len).sum();
        let prefilling: usize = self
            .running
            .iter()
            .filter(|s| s.is_prefilling())
            .map(|s| s.len() - s.num_computed)
            .sum();
        LoadMetrics {
            worker_id: self.worker_id,
            dp_rank: self.dp_rank,
            active_decode_blocks: used,
            active_prefill_tokens: (waiting + prefilling) as u64,
            kv_used_blocks: used,
            kv_total_blocks: self.config.num_gpu_blocks as u64,
            num_running: self.running.len(),
            num_waiting: self.waiting.len(),
        }
    }

    /// Forget a sequence that ended (its blocks are already released) and report its usage.
    pub(crate) fn retire(&mut self, seq: &Sequence, reason: FinishReason) -> FinishedRequest {
        self.live.remove(&seq.id);
        FinishedRequest {
            request_id: seq.id,
            reason,
            prompt_tokens: seq.prompt_len,
            output_tokens: seq.outputs(),
            cached_tokens: seq.cached_tokens.unwrap_or(0),
        }
    }

    /// Check that the block manager's counts equal what the sequences hold.
    #[cfg(test)]
    pub(crate) fn check_accounting(&self) -> Result<(), String> {
        let mut refs: rustc_hash::FxHashMap<SequenceHash, u32> = rustc_hash::FxHashMap::default();
        let mut private = 0;
        for seq in &self.running {
            for &hash in &seq.held {
                *refs.entry(hash).or_default() += 1;
            }
            private += seq.private;
            let expected = seq.num_computed.div_ceil(self.config.block_size);
            if seq.blocks_held() != expected {
                return Err(format!(
                    "{:?} holds {} blocks for {} computed tokens",
                    seq.id,
                    seq.blocks_held(),
                    seq.num_computed
                ));
            }
        }
        if let Some(seq) = self.waiting.iter().find(|s| s.blocks_held() > 0) {
            return Err(format!("waiting {:?} holds blocks", seq.id));
        }
        let usage = self.kv.usage();
        if usage.free + usage.private + usage.active + usage.inactive != usage.total {
            return Err(format!("blocks do not add up: {usage:?}"));
        }
        if usage.private != private {
            return Err(format!(
                "manager has {} private blocks, sequences {private}",
                usage.private
            ));
        }
        if usage.active != refs.len() {
            return Err(format!(
                "manager has {} active blocks, sequences reference {}",
                usage.active,
                refs.len()
            ));
        }
        for (hash, count) in refs {
            if self.kv.refcount(hash) != count {
                return Err(format!(
                    "{hash:?}: refcount {} but {count} holders",
                    self.kv.refcount(hash)
                ));
            }
        }
        Ok(())
    }
}
