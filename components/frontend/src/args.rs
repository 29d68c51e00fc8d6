//! The frontend's command line: Dynamo's `python -m dynamo.frontend` flag names and `DYN_*`
//! environment twins for what Stator implements, plus the embedded-worker mode.

use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};
use stator_config::RuntimeArgs;
use stator_llm::kv_routing::{ApproxCachePolicy, KvRouterConfig, QueuePolicy};
use worker::MockerArgs;

/// Default port of the HTTP service.
pub const DEFAULT_HTTP_PORT: u16 = 8000;

/// The model directory embedded workers serve unless `--model-path` says otherwise.
pub const DEFAULT_MODEL_PATH: &str = "models/qwen2.5-0.5b-mock";

/// `--router-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RouterModeArg {
    /// Cycle through the instances.
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// The less loaded of two random instances.
    PowerOfTwo,
    /// The instance with the fewest requests in flight.
    LeastLoaded,
    /// The request names its worker (`nvext.backend_instance_id` or a header).
    Direct,
    /// KV-cache-aware routing.
    Kv,
}

/// KV router flags (used with `--router-mode kv`).
#[derive(Debug, Clone, PartialEq, Args)]
pub struct KvRouterArgs {
    /// Softmax temperature of worker selection (0 picks the lowest cost).
    #[arg(long, env = "DYN_ROUTER_TEMPERATURE", default_value_t = 0.0)]
    pub router_temperature: f64,
    /// Weight of cached prefix blocks against prefill load.
    #[arg(
        long,
        env = "DYN_ROUTER_KV_OVERLAP_SCORE_CREDIT",
        default_value_t = 1.0
    )]
    pub router_kv_overlap_score_credit: f64,
    /// Weight of prefill load in the cost.
    #[arg(long, env = "DYN_ROUTER_PREFILL_LOAD_SCALE", default_value_t = 1.0)]
    pub router_prefill_load_scale: f64,
    /// Follow the workers' KV events (default on).
    #[arg(long, overrides_with = "no_router_kv_events")]
    pub router_kv_events: bool,
    /// Predict cache contents from routing decisions instead of KV events.
    #[arg(long, overrides_with = "router_kv_events")]
    pub no_router_kv_events: bool,
    /// How long predicted blocks live without KV events, in seconds.
    #[arg(long, env = "DYN_ROUTER_TTL_SECS", default_value_t = 120.0)]
    pub router_ttl_secs: f64,
    /// A worker is busy above this fraction of its KV blocks in active decode.
    #[arg(long, env = "DYN_ACTIVE_DECODE_BLOCKS_THRESHOLD")]
    pub active_decode_blocks_threshold: Option<f64>,
    /// A worker is busy above this many tokens in active prefill.
    #[arg(long, env = "DYN_ACTIVE_PREFILL_TOKENS_THRESHOLD")]
    pub active_prefill_tokens_threshold: Option<u64>,
    /// A worker is busy above this fraction of its batch budget in active prefill.
    #[arg(long, env = "DYN_ACTIVE_PREFILL_TOKENS_THRESHOLD_FRAC")]
    pub active_prefill_tokens_threshold_frac: Option<f64>,
    /// Queue requests while every worker is busy, up to this load.
    #[arg(long, env = "DYN_ROUTER_QUEUE_THRESHOLD")]
    pub router_queue_threshold: Option<f64>,
    /// Order of queued requests.
    #[arg(long, env = "DYN_ROUTER_QUEUE_POLICY", value_enum, default_value_t = QueuePolicyArg::Fcfs)]
    pub router_queue_policy: QueuePolicyArg,
    /// Per-block decay of the overlap credit (0 = every cached block counts fully).
    #[arg(
        long,
        env = "DYN_ROUTER_KV_OVERLAP_SCORE_CREDIT_DECAY",
        default_value_t = 0.0
    )]
    pub router_kv_overlap_score_credit_decay: f64,
    /// Weight of a worker's active decode requests in the cost.
    #[arg(
        long,
        env = "DYN_ROUTER_DECODE_ACTIVE_REQUEST_WEIGHT",
        default_value_t = 0.0
    )]
    pub router_decode_active_request_weight: f64,
    /// Without KV events: how predicted blocks are forgotten.
    #[arg(long, env = "DYN_ROUTER_APPROXIMATE_CACHE_POLICY", value_enum, default_value_t = ApproxCachePolicyArg::Ttl)]
    pub router_approximate_cache_policy: ApproxCachePolicyArg,
    /// With KV events: how long a routing decision's predicted blocks count until the
    /// worker's own events confirm them, in seconds [default: off].
    #[arg(long, env = "DYN_ROUTER_PREDICTED_TTL_SECS")]
    pub router_predicted_ttl_secs: Option<f64>,
    /// Writer threads of the KV index (each worker's events stay on one thread); at most one
    /// per CPU the process may use.
    #[arg(long, env = "DYN_ROUTER_EVENT_THREADS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub router_event_threads: u16,
}

/// `--router-queue-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueuePolicyArg {
    /// First come, first served (priority hints move requests ahead).
    Fcfs,
    /// Weighted shortest processing time first.
    Wspt,
}

/// `--router-approximate-cache-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApproxCachePolicyArg {
    /// Predicted blocks expire `--router-ttl-secs` after their last routing.
    Ttl,
    /// Predicted blocks leave only under the per-worker LRU bound.
    Lru,
}

impl KvRouterArgs {
    /// Whether KV events are followed.
    pub fn use_kv_events(&self) -> bool {
        !self.no_router_kv_events
    }

    /// The KV router settings these flags resolve to (Dynamo's defaults elsewhere).
    pub fn to_config(&self) -> KvRouterConfig {
        KvRouterConfig {
            overlap_score_credit: self.router_kv_overlap_score_credit,
            overlap_score_credit_decay: self.router_kv_overlap_score_credit_decay,
            prefill_load_scale: self.router_prefill_load_scale,
            decode_active_request_weight: self.router_decode_active_request_weight,
            temperature: self.router_temperature,
            use_kv_events: self.use_kv_events(),
            router_ttl_secs: self.router_ttl_secs,
            predicted_ttl_secs: self.router_predicted_ttl_secs,
            approx_cache_policy: match self.router_approximate_cache_policy {
                ApproxCachePolicyArg::Ttl => ApproxCachePolicy::Ttl,
                ApproxCachePolicyArg::Lru => ApproxCachePolicy::Lru,
            },
            active_decode_blocks_threshold: self.active_decode_blocks_threshold,
            active_prefill_tokens_threshold: self.active_prefill_tokens_threshold,
            active_prefill_tokens_threshold_frac: self.active_prefill_tokens_threshold_frac,
            queue_threshold: self.router_queue_threshold,
            queue_policy: match self.router_queue_policy {
                QueuePolicyArg::Fcfs => QueuePolicy::Fcfs,
                QueuePolicyArg::Wspt => QueuePolicy::Wspt,
            },
            event_threads: usize::from(self.router_event_threads),
            ..KvRouterConfig::default()
        }
    }
}

/// `frontend`: the OpenAI-compatible HTTP frontend of Stator.
#[derive(Debug, Clone, Parser)]
#[command(name = "frontend", version, about)]
pub struct FrontendArgs {
    /// Address the HTTP service binds.
    #[arg(long, env = "DYN_HTTP_HOST", default_value = "0.0.0.0")]
    pub http_host: String,
    /// Port the HTTP service binds (0 picks a free one).
    #[arg(long, env = "DYN_HTTP_PORT", default_value_t = DEFAULT_HTTP_PORT)]
    pub http_port: u16,
    /// Largest accepted request body in MiB.
    #[arg(long, env = "DYN_HTTP_BODY_LIMIT_MB", default_value_t = stator_llm::http::DEFAULT_BODY_LIMIT_MB)]
    pub http_body_limit_mb: u64,
    /// Serve only models of this namespace [default: all].
    #[arg(long, env = "DYN_NAMESPACE")]
    pub namespace: Option<String>,
    /// How requests are routed to workers [default: round-robin; kv with embedded mockers].
    #[arg(long, env = "DYN_ROUTER_MODE", value_enum)]
    pub router_mode: Option<RouterModeArg>,
    /// Override the KV block size the workers' cards publish.
    #[arg(long, env = "DYN_KV_CACHE_BLOCK_SIZE")]
    pub kv_cache_block_size: Option<u32>,
    /// Metric name prefix [default: dynamo_frontend].
    #[arg(long, env = "DYN_METRICS_PREFIX")]
    pub metrics_prefix: Option<String>,
    /// Accept unknown top-level request fields instead of answering 400.
    #[arg(long, env = "DYN_IGNORE_OPENAI_FE_UNSUPPORTED_FIELDS")]
    pub ignore_unsupported_fields: bool,
    /// Where card files fetched from workers are cached [default: a temp directory].
    #[arg(long, env = "DYN_CARD_CACHE_DIR")]
    pub card_cache_dir: Option<PathBuf>,
    /// KV router settings.
    #[command(flatten)]
    pub kv: KvRouterArgs,
    /// Embedded mode: start this many mocker workers in this process (mem discovery).
    #[arg(long, env = "DYN_MOCKER_WORKERS", default_value_t = 0)]
    pub mocker_workers: u32,
    /// Embedded mode: start this many echo workers in this process (mem discovery).
    #[arg(long, default_value_t = 0)]
    pub echo_workers: u32,
    /// Model directory the embedded workers serve [default: models/qwen2.5-0.5b-mock under
    /// the workspace root or the current directory].
    #[arg(long, env = "DYN_MODEL_PATH")]
    pub model_path: Option<PathBuf>,
    /// Served model name of the embedded workers [default: the directory's name].
    #[arg(long, env = "DYN_MODEL_NAME")]
    pub model_name: Option<String>,
    /// Embedded mocker settings.
    #[command(flatten)]
    pub mocker: MockerArgs,
    /// Discovery, request plane, event plane and status server settings.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl FrontendArgs {
    /// Whether workers run in this process.
    pub fn embedded(&self) -> bool {
        self.mocker_workers > 0 || self.echo_workers > 0
    }

    /// The model directory for embedded workers: `--model-path`, else the shipped model
    /// found from the current directory or the workspace root.
    pub fn resolve_model_path(&self) -> Option<PathBuf> {
        if let Some(path) = &self.model_path {
            return Some(path.clone());
        }
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        [PathBuf::from("."), workspace]
            .into_iter()
            .map(|root| root.join(DEFAULT_MODEL_PATH))
            .find(|path| path.join("tokenizer.json").is_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamo_flag_names_parse() {
        let args = FrontendArgs::try_parse_from([
            "frontend",
            "--http-host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--router-mode",
            "power-of-two",
            "--namespace",
            "dynamo",
            "--kv-cache-block-size",
            "16",
            "--metrics-prefix",
            "stator",
            "--router-temperature",
            "0.5",
            "--no-router-kv-events",
            "--discovery-backend",
            "file",
        ])
        .unwrap();
        assert_eq!(args.http_port, 0);
        assert_eq!(args.router_mode, Some(RouterModeArg::PowerOfTwo));
        assert_eq!(args.kv_cache_block_size, Some(16));
        assert!(!args.kv.use_kv_events());
        assert!(!args.embedded());
    }

    #[test]
    fn kv_router_flags_reach_the_router_config() {
        let args = FrontendArgs::try_parse_from([
            "frontend",
            "--router-queue-policy",
            "wspt",
            "--router-queue-threshold",
            "0.5",
            "--active-prefill-tokens-threshold-frac",
            "0.8",
            "--router-event-threads",
            "2",
            "--router-predicted-ttl-secs",
            "3",
            "--router-approximate-cache-policy",
            "lru",
        ])
        .unwrap();
        let config = args.kv.to_config();
        assert_eq!(config.queue_policy, QueuePolicy::Wspt);
        assert_eq!(config.queue_threshold, Some(0.5));
        assert_eq!(config.active_prefill_tokens_threshold_frac, Some(0.8));
        assert_eq!(config.event_threads, 2);
        assert_eq!(config.predicted_ttl_secs, Some(3.0));
        assert_eq!(config.approx_cache_policy, ApproxCachePolicy::Lru);
        let defaults = FrontendArgs::try_parse_from(["frontend"])
            .unwrap()
            .kv
            .to_config();
        assert_eq!(defaults, KvRouterConfig::default());
        assert!(FrontendArgs::try_parse_from(["frontend", "--router-event-threads", "0"]).is_err());
    }

    #[test]
    fn shipped_model_is_found_by_default() {
        let args = FrontendArgs::try_parse_from(["frontend", "--mocker-workers", "2"]).unwrap();
        assert!(args.embedded());
        let path = args.resolve_model_path().unwrap();
        assert!(path.join("tokenizer.json").is_file());
    }
}
