//! Worker selection: the KV router's cost function, busy detection and sampling.
//!
//! For each candidate (worker, DP rank), every term in blocks (Dynamo 1.6.1
//! `DefaultWorkerSelector`):
//!
//! ```text
//! credit   = overlap_score_credit / (1 + credit_decay · active_prefill_blocks / request_blocks)
//! prefill  = prefill_load_scale · max(0, (active_prefill_tokens + isl) / block_size − credit · overlap_blocks)
//! decode   = active_decode_blocks + new_decode_blocks        (the request's blocks not yet active there)
//! logit    = prefill + decode + decode_active_request_weight · active_requests
//! ```
//!
//! The prefill term divides tokens by the block size *before* the overlap (in blocks) is
//! subtracted, in floating point. Busy workers are skipped; the pick is the cheapest worker
//! (temperature 0) or a softmax sample (see [`sample_index`]). [`KvScheduler`] wires the
//! selector to load tracking and approximate-mode prediction.

mod sampling;
mod scheduler;

pub use sampling::sample_index;
pub use scheduler::{KvScheduler, ScheduleError, ScheduleRequest, WorkerCapacity};

use rand::Rng;

use crate::config::{BusyThresholds, KvRouterConfig};
use crate::protocols::{OverlapScores, WorkerWithDpRank};

/// A worker's load before the request is placed, plus the capacity facts busy detection needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerLoad {
    /// Prompt tokens of active requests that have not produced their first token yet.
    pub active_prefill_tokens: u64,
    /// Distinct KV blocks held by the worker's active requests.
    pub active_decode_blocks: u64,
    /// Requests active on the worker.
    pub active_requests: u64,
    /// Blocks the request would add to the worker's active set (its blocks not active there).
    pub new_decode_blocks: u64,
    /// The worker's KV cache capacity in blocks, when known (decode busy threshold).
    pub kv_total_blocks: Option<u64>,
    /// The worker's `max_num_batched_tokens`, when known (prefill busy fraction, queueing).
    pub max_num_batched_tokens: Option<u64>,
}

impl WorkerLoad {
    /// Decode blocks the worker would hold with the request added.
    pub fn potential_decode_blocks(&self) -> u64 {
        self.active_decode_blocks + self.new_decode_blocks
    }

    /// Prefill tokens the worker would have in flight with a request of `isl_tokens` added.
    pub fn potential_prefill_tokens(&self, isl_tokens: u64) -> u64 {
        self.active_prefill_tokens + isl_tokens
    }
}

/// What the selector needs to know about the request being routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestShape {
    /// Input sequence length in tokens.
    pub isl_tokens: u64,
    /// KV block size in tokens (0 is treated as 1).
    pub block_size: u32,
}

/// One candidate's cost breakdown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerCost {
    /// The candidate.
    pub worker: WorkerWithDpRank,
    /// Leading blocks of the request the worker already caches.
    pub overlap_blocks: u32,
    /// The prefill term (already scaled by `prefill_load_scale`).
    pub prefill_cost: f64,
    /// The decode term (potential decode blocks, 0 when active blocks are not tracked).
    pub decode_cost: f64,
    /// The full cost (lower is better).
    pub logit: f64,
    /// Whether a busy threshold excludes the worker.
    pub busy: bool,
}

/// The selector's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Selection {
    /// The chosen worker.
    pub worker: WorkerWithDpRank,
    /// Its overlap with the request in blocks.
    pub overlap_blocks: u32,
    /// Its cost.
    pub logit: f64,
}

/// Why no worker was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// The candidate list was empty.
    #[error("no workers available")]
    NoWorkers,
    /// Every candidate is over a busy threshold (Dynamo answers HTTP 529).
    #[error("all workers are busy")]
    AllWorkersBusy,
}

/// Scores candidates with the KV router cost function and picks one.
///
/// ```
/// use rand::{SeedableRng, rngs::StdRng};
/// use stator_kv_router::config::KvRouterConfig;
/// use stator_kv_router::protocols::{OverlapScores, WorkerWithDpRank};
/// use stator_kv_router::selector::{RequestShape, WorkerLoad, WorkerSelector};
///
/// let (a, b) = (WorkerWithDpRank::new(1, 0), WorkerWithDpRank::new(2, 0));
/// let mut overlaps = OverlapScores::default();
/// overlaps.scores.insert(b, 6); // b caches 6 of the request's 8 blocks
/// let request = RequestShape { isl_tokens: 128, block_size: 16 };
/// let load = WorkerLoad { new_decode_blocks: 8, ..WorkerLoad::default() };
/// let selector = WorkerSelector::new(KvRouterConfig::default());
/// let mut rng = StdRng::seed_from_u64(0);
/// let picked = selector.select(&request, &overlaps, &[(a, load), (b, load)], &mut rng).unwrap();
/// assert_eq!(picked.worker, b);
/// assert_eq!(picked.logit, 2.0 + 8.0); // (128/16 − 6) prefill + 8 decode blocks
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerSelector {
    config: KvRouterConfig,
}

impl WorkerSelector {
    /// A selector using `config`'s cost, busy and temperature knobs.
    pub fn new(config: KvRouterConfig) -> Self {
        Self { config }
    }

    /// The configuration in use.
    pub fn config(&self) -> &KvRouterConfig {
        &self.config
    }

    /// Change the busy thresholds at run time (the `/busy_threshold` admin route).
    pub fn set_busy_thresholds(&mut self, thresholds: BusyThresholds) {
        self.config.set_busy_thresholds(thresholds);
    }

    /// Whether `load` is over any configured busy threshold.
    ///
    /// Thresholds whose capacity fact is unknown (`kv_total_blocks`, `max_num_batched_tokens`)
    /// never mark a worker busy.
    pub fn is_busy(&self, load: &WorkerLoad) -> bool {
        let c = &self.config;
        let decode_busy = match (c.active_decode_blocks_threshold, load.kv_total_blocks) {
            (Some(frac), Some(total)) => load.active_decode_blocks as f64 > frac * total as f64,
            _ => false,
        };
        let tokens_busy = c
            .active_prefill_tokens_threshold
            .is_some_and(|limit| load.active_prefill_tokens > limit);
        let frac_busy = match (
            c.active_prefill_tokens_threshold_frac,
            load.max_num_batched_tokens,
        ) {
            (Some(frac), Some(batch)) => load.active_prefill_tokens as f64 > frac * batch as f64,
            _ => false,
        };
        decode_busy || tokens_busy || frac_busy
    }

    /// The cost of placing `request` on a worker with `load` that caches `overlap_blocks`.
    pub fn cost(
        &self,
        request: &RequestShape,
        worker: WorkerWithDpRank,
        overlap_blocks: u32,
        load: &WorkerLoad,
    ) -> WorkerCost {
        let c = &self.config;
        let block_size = f64::from(request.block_size.max(1));
        let active_prefill_tokens = if c.track_prefill_tokens {
            load.active_prefill_tokens
        } else {
            0
        };
        let request_blocks = request.isl_tokens as f64 / block_size;
        let active_prefill_blocks = active_prefill_tokens as f64 / block_size;
        let credit = if c.overlap_score_credit_decay > 0.0 && request_blocks > 0.0 {
            c.overlap_score_credit
                / (1.0 + c.overlap_score_credit_decay * active_prefill_blocks / request_blocks)
        } else {
            c.overlap_score_credit
        };
        let raw_prefill_blocks = active_prefill_blocks + request_blocks;
        let prefill_cost = c.prefill_load_scale
            * (raw_prefill_blocks - credit * f64::from(overlap_blocks)).max(0.0);
        let decode_cost = if c.track_active_blocks {
            load.potential_decode_blocks() as f64
        } else {
            0.0
        };
        let logit = prefill_cost
            + decode_cost
            + c.decode_active_request_weight * load.active_requests as f64;
        WorkerCost {
            worker,
            overlap_blocks,
            prefill_cost,
            decode_cost,
            logit,
            busy: self.is_busy(load),
        }
    }

    /// The cost of every candidate, in the order given.
    pub fn costs(
        &self,
        request: &RequestShape,
        overlaps: &OverlapScores,
        workers: &[(WorkerWithDpRank, WorkerLoad)],
    ) -> Vec<WorkerCost> {
        workers
            .iter()
            .map(|(worker, load)| self.cost(request, *worker, overlaps.depth(*worker), load))
            .collect()
    }

    /// Pick a worker among the candidates that are not busy.
    pub fn select<R: Rng + ?Sized>(
        &self,
        request: &RequestShape,
        overlaps: &OverlapScores,
        workers: &[(WorkerWithDpRank, WorkerLoad)],
        rng: &mut R,
    ) -> Result<Selection, SelectError> {
        if workers.is_empty() {
            return Err(SelectError::NoWorkers);
        }
        self.pick(self.costs(request, overlaps, workers), rng)
    }

    /// Pick among `costs` (as computed by [`WorkerSelector::costs`], possibly with `busy`
    /// adjusted by the caller) the candidates that are not busy.
    pub fn pick<R: Rng + ?Sized>(
        &self,
        costs: Vec<WorkerCost>,
        rng: &mut R,
    ) -> Result<Selection, SelectError> {
        let eligible: Vec<WorkerCost> = costs.into_iter().filter(|cost| !cost.busy).collect();
        let logits: Vec<f64> = eligible.iter().map(|cost| cost.logit).collect();
        let index = sample_index(&logits, self.config.temperature, rng)
            .ok_or(SelectError::AllWorkersBusy)?;
        let chosen = eligible[index];
        Ok(Selection {
            worker: chosen.worker,
            overlap_blocks: chosen.overlap_blocks,
            logit: chosen.logit,
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::float_cmp,
    reason = "the test costs are exact in binary floating point"
)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn w(id: u64) -> WorkerWithDpRank {
        WorkerWithDpRank::new(id, 0)
    }

    const REQ: RequestShape = RequestShape {
        isl_tokens: 100,
        block_size: 10,
    };

    #[test]
    fn cost_follows_the_reference_formula() {
        let selector = WorkerSelector::default();
        let load = WorkerLoad {
            active_prefill_tokens: 50,
            active_decode_blocks: 7,
            active_requests: 3,
            new_decode_blocks: 4,
            ..WorkerLoad::default()
        };
        let cost = selector.cost(&REQ, w(1), 6, &load);
        assert_eq!(cost.prefill_cost, (150.0 / 10.0) - 6.0);
        assert_eq!(cost.decode_cost, 11.0);
        assert_eq!(cost.logit, 9.0 + 11.0);
        // Overlap beyond the prefill clamps the prefill term at zero.
        assert_eq!(selector.cost(&REQ, w(1), 40, &load).prefill_cost, 0.0);
    }

    #[test]
    fn knobs_change_the_terms() {
        let config = KvRouterConfig {
            prefill_load_scale: 2.0,
            overlap_score_credit: 0.5,
            decode_active_request_weight: 1.5,
            track_active_blocks: false,
            track_prefill_tokens: false,
            ..KvRouterConfig::default()
        };
        let selector = WorkerSelector::new(config);
        let load = WorkerLoad {
            active_prefill_tokens: 1000,
            active_decode_blocks: 7,
            active_requests: 2,
            new_decode_blocks: 4,
            ..WorkerLoad::default()
        };
        let cost = selector.cost(&REQ, w(1), 4, &load);
        assert_eq!(cost.prefill_cost, 2.0 * (10.0 - 2.0));
        assert_eq!(cost.decode_cost, 0.0);
        assert_eq!(cost.logit, 16.0 + 3.0);
    }

    #[test]
    fn credit_decays_with_queued_prefill() {
        let config = KvRouterConfig {
            overlap_score_credit_decay: 1.0,
            ..KvRouterConfig::default()
        };
        let selector = WorkerSelector::new(config);
        let load = WorkerLoad {
            active_prefill_tokens: 100,
            ..WorkerLoad::default()
        };
        // credit = 1 / (1 + 10/10) = 0.5 → prefill = 20 − 0.5·8
        assert_eq!(selector.cost(&REQ, w(1), 8, &load).prefill_cost, 16.0);
    }

    #[test]
    fn busy_thresholds() {
        let config = KvRouterConfig {
            active_decode_blocks_threshold: Some(0.5),
            active_prefill_tokens_threshold: Some(1000),
            active_prefill_tokens_threshold_frac: Some(2.0),
            ..KvRouterConfig::default()
        };
        let selector = WorkerSelector::new(config);
        let idle = WorkerLoad {
            kv_total_blocks: Some(100),
            max_num_batched_tokens: Some(256),
            ..WorkerLoad::default()
        };
        assert!(!selector.is_busy(&idle));
        let decode_full = WorkerLoad {
            active_decode_blocks: 51,
            ..idle
        };
        assert!(selector.is_busy(&decode_full));
        let at_limit = WorkerLoad {
            active_decode_blocks: 50,
            active_prefill_tokens: 512,
            ..idle
        };
        assert!(!selector.is_busy(&at_limit));
        let frac_over = WorkerLoad {
            active_prefill_tokens: 513,
            ..idle
        };
        assert!(selector.is_busy(&frac_over));
        let unknown_capacity = WorkerLoad {
            active_decode_blocks: 10_000,
            active_prefill_tokens: 999,
            ..WorkerLoad::default()
        };
        assert!(!selector.is_busy(&unknown_capacity));
        let tokens_over = WorkerLoad {
            active_prefill_tokens: 1001,
            ..WorkerLoad::default()
        };
        assert!(selector.is_busy(&tokens_over));
    }

    #[test]
    fn select_skips_busy_and_reports_all_busy() {
        let config = KvRouterConfig {
            active_prefill_tokens_threshold: Some(10),
            ..KvRouterConfig::default()
        };
        let selector = WorkerSelector::new(config);
        let mut rng = StdRng::seed_from_u64(9);
        let busy = WorkerLoad {
            active_prefill_tokens: 11,
            ..WorkerLoad::default()
        };
        let mut overlaps = OverlapScores::default();
        overlaps.scores.insert(w(1), 10);
        let workers = [(w(1), busy), (w(2), WorkerLoad::default())];
        let picked = selector
            .select(&REQ, &overlaps, &workers, &mut rng)
            .unwrap();
        assert_eq!(picked.worker, w(2));
        assert_eq!(
            selector.select(&REQ, &overlaps, &[(w(1), busy)], &mut rng),
            Err(SelectError::AllWorkersBusy)
        );
        assert_eq!(
            selector.select(&REQ, &overlaps, &[], &mut rng),
            Err(SelectError::NoWorkers)
        );
    }
}
