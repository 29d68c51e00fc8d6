//! The KV router's knobs ([`KvRouterConfig`]) with Dynamo 1.6.1's defaults.
//!
//! Field names drop Dynamo's `router_` prefix where the struct name already says it; the
//! matching frontend flag (`--router-…`, `DYN_ROUTER_…`) is named on each field.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the scheduler queue orders waiting requests (`--router-queue-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueuePolicy {
    /// First come, first served; `priority_jump` moves a request ahead by that many seconds.
    #[default]
    Fcfs,
    /// Weighted shortest processing time (Smith's rule): `(1 + priority_jump) / prefill tokens`.
    Wspt,
}

/// How approximate mode (no KV events) forgets predicted blocks
/// (`--router-approximate-cache-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApproxCachePolicy {
    /// Predicted blocks expire `router_ttl_secs` after they were last routed, and the per-worker
    /// LRU bound still applies.
    #[default]
    Ttl,
    /// Predicted blocks never expire by age; only the per-worker LRU bound evicts them.
    Lru,
}

/// The three busy thresholds, as the frontend's `/busy_threshold` admin route reads and
/// writes them at run time (same field names as its JSON body).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BusyThresholds {
    /// Busy above this fraction (0–1) of the worker's KV blocks in active use.
    pub active_decode_blocks_threshold: Option<f64>,
    /// Busy above this many active prefill tokens.
    pub active_prefill_tokens_threshold: Option<u64>,
    /// Busy above this fraction of the worker's `max_num_batched_tokens` in prefill.
    pub active_prefill_tokens_threshold_frac: Option<f64>,
}

/// Every knob of KV-aware routing: cost function, load tracking, busy detection, queueing
/// and approximate mode.
///
/// ```
/// use stator_kv_router::config::{KvRouterConfig, QueuePolicy};
///
/// let config = KvRouterConfig { temperature: 0.5, ..KvRouterConfig::default() };
/// assert_eq!(config.overlap_score_credit, 1.0);
/// assert_eq!(config.queue_policy, QueuePolicy::Fcfs);
/// assert_eq!(config.router_ttl_secs, 120.0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KvRouterConfig {
    /// Blocks of prefill credit per cached (overlapping) block
    /// (`--router-kv-overlap-score-credit`, default 1.0).
    pub overlap_score_credit: f64,
    /// Shrinks the overlap credit on workers with queued prefill work:
    /// `credit / (1 + decay · active_prefill_blocks / request_blocks)`
    /// (`--router-kv-overlap-score-credit-decay`, default 0.0 = no decay).
    pub overlap_score_credit_decay: f64,
    /// Weight of the prefill term in the cost (`--router-prefill-load-scale`, default 1.0).
    pub prefill_load_scale: f64,
    /// Cost per active request on a worker (`--router-decode-active-request-weight`, default 0.0).
    pub decode_active_request_weight: f64,
    /// Softmax temperature over normalized costs; 0 picks the cheapest worker
    /// (`--router-temperature`, default 0.0).
    pub temperature: f64,
    /// Learn cache contents from worker KV events; `false` selects approximate mode
    /// (`--router-kv-events`, default true).
    pub use_kv_events: bool,
    /// Approximate mode: seconds a predicted block lives after its last routing
    /// (`--router-ttl-secs`, default 120).
    pub router_ttl_secs: f64,
    /// With KV events on, also predict caches from routing decisions, forgetting them after
    /// this many seconds; each worker's overlap is then the larger of the two answers
    /// (`--router-predicted-ttl-secs`, default off).
    pub predicted_ttl_secs: Option<f64>,
    /// Approximate mode: how predicted blocks are forgotten
    /// (`--router-approximate-cache-policy`, default ttl).
    pub approx_cache_policy: ApproxCachePolicy,
    /// Approximate mode: most predicted blocks kept per worker before the least recently
    /// routed are evicted (default 65 536; a worker's advertised KV capacity lowers it).
    pub approx_max_blocks_per_worker: usize,
    /// Count the decode blocks of active requests in the cost
    /// (`--router-track-active-blocks`, default true).
    pub track_active_blocks: bool,
    /// Count the prefill tokens of requests that have not produced a first token
    /// (`--router-track-prefill-tokens`, default true).
    pub track_prefill_tokens: bool,
    /// Count a block shared by several active requests on a worker once
    /// (`--router-assume-kv-reuse`, default true); `false` counts each request's blocks apart.
    pub assume_kv_reuse: bool,
    /// A worker is busy when its active decode blocks exceed this fraction (0–1) of its KV
    /// capacity (`--active-decode-blocks-threshold`, default off).
    pub active_decode_blocks_threshold: Option<f64>,
    /// A worker is busy when its active prefill tokens exceed this many tokens
    /// (`--active-prefill-tokens-threshold`, default off).
    pub active_prefill_tokens_threshold: Option<u64>,
    /// A worker is busy when its active prefill tokens exceed this fraction of its
    /// `max_num_batched_tokens` (`--active-prefill-tokens-threshold-frac`, default off).
    pub active_prefill_tokens_threshold_frac: Option<f64>,
    /// Queue requests while every worker's active prefill tokens exceed this multiple of its
    /// `max_num_batched_tokens` (`--router-queue-threshold`, default off = never queue).
    pub queue_threshold: Option<f64>,
    /// Order of the scheduler queue (`--router-queue-policy`, default fcfs).
    pub queue_policy: QueuePolicy,
    /// Seconds after which an active request that was never freed is dropped from load
    /// tracking (Dynamo: 300 s).
    pub stale_request_ttl_secs: f64,
    /// Writer threads of the thread-pool indexer (`--router-event-threads`, default 4).
    pub event_threads: usize,
}

impl Default for KvRouterConfig {
    fn default() -> Self {
        Self {
            overlap_score_credit: 1.0,
            overlap_score_credit_decay: 0.0,
            prefill_load_scale: 1.0,
            decode_active_request_weight: 0.0,
            temperature: 0.0,
            use_kv_events: true,
            router_ttl_secs: 120.0,
            predicted_ttl_secs: None,
            approx_cache_policy: ApproxCachePolicy::Ttl,
            approx_max_blocks_per_worker: 65_536,
            track_active_blocks: true,
            track_prefill_tokens: true,
            assume_kv_reuse: true,
            active_decode_blocks_threshold: None,
            active_prefill_tokens_threshold: None,
            active_prefill_tokens_threshold_frac: None,
            queue_threshold: None,
            queue_policy: QueuePolicy::Fcfs,
            stale_request_ttl_secs: 300.0,
            event_threads: 4,
        }
    }
}

impl KvRouterConfig {
    /// The busy thresholds in effect.
    pub fn busy_thresholds(&self) -> BusyThresholds {
        BusyThresholds {
            active_decode_blocks_threshold: self.active_decode_blocks_threshold,
            active_prefill_tokens_threshold: self.active_prefill_tokens_threshold,
            active_prefill_tokens_threshold_frac: self.active_prefill_tokens_threshold_frac,
        }
    }

    /// Replace the busy thresholds (e.g. from a `/busy_threshold` update).
    pub fn set_busy_thresholds(&mut self, thresholds: BusyThresholds) {
        self.active_decode_blocks_threshold = thresholds.active_decode_blocks_threshold;
        self.active_prefill_tokens_threshold = thresholds.active_prefill_tokens_threshold;
        self.active_prefill_tokens_threshold_frac = thresholds.active_prefill_tokens_threshold_frac;
    }

    /// [`router_ttl_secs`](Self::router_ttl_secs) as a duration (negative or NaN → zero).
    pub fn router_ttl(&self) -> Duration {
        secs_to_duration(self.router_ttl_secs)
    }

    /// [`stale_request_ttl_secs`](Self::stale_request_ttl_secs) as a duration
    /// (negative or NaN → zero).
    pub fn stale_request_ttl(&self) -> Duration {
        secs_to_duration(self.stale_request_ttl_secs)
    }

    /// Apply the deprecated `--kv-overlap-score-weight w`: it sets `prefill_load_scale = w`,
    /// and `w == 0` also turns the overlap credit off (pure load balancing), as in Dynamo.
    pub fn apply_overlap_score_weight(&mut self, weight: f64) {
        self.prefill_load_scale = weight;
        if weight == 0.0 {
            self.overlap_score_credit = 0.0;
        }
    }
}

/// Seconds from a config file or flag as a duration: saturating, never panicking.
fn secs_to_duration(secs: f64) -> Duration {
    if secs.is_nan() || secs <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "config values round-trip exactly")]
mod tests {
    use super::*;

    #[test]
    fn serde_fills_defaults_and_uses_snake_case() {
        let config: KvRouterConfig =
            serde_json::from_str(r#"{"temperature": 0.3, "queue_policy": "wspt"}"#).unwrap();
        assert_eq!(config.temperature, 0.3);
        assert_eq!(config.queue_policy, QueuePolicy::Wspt);
        assert_eq!(config.router_ttl_secs, 120.0);
        assert!(config.use_kv_events);
        let back: KvRouterConfig =
            serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn zero_overlap_weight_disables_credit() {
        let mut config = KvRouterConfig::default();
        config.apply_overlap_score_weight(0.0);
        assert_eq!(config.prefill_load_scale, 0.0);
        assert_eq!(config.overlap_score_credit, 0.0);
        config.apply_overlap_score_weight(2.0);
        assert_eq!(config.prefill_load_scale, 2.0);
    }

    #[test]
    fn busy_thresholds_round_trip() {
        let mut config = KvRouterConfig::default();
        assert_eq!(config.busy_thresholds(), BusyThresholds::default());
        let update: BusyThresholds =
            serde_json::from_str(r#"{"active_decode_blocks_threshold": 0.85}"#).unwrap();
        config.set_busy_thresholds(update);
        assert_eq!(config.active_decode_blocks_threshold, Some(0.85));
        assert_eq!(config.busy_thresholds(), update);
    }

    #[test]
    fn durations_saturate() {
        let mut config = KvRouterConfig::default();
        assert_eq!(config.router_ttl(), Duration::from_mins(2));
        assert_eq!(config.stale_request_ttl(), Duration::from_mins(5));
        config.router_ttl_secs = -1.0;
        assert_eq!(config.router_ttl(), Duration::ZERO);
        config.router_ttl_secs = f64::NAN;
        assert_eq!(config.router_ttl(), Duration::ZERO);
        config.router_ttl_secs = f64::INFINITY;
        assert_eq!(config.router_ttl(), Duration::MAX);
    }
}
