//! The frontend's command line: Dynamo's `python -m dynamo.frontend` flag names and `DYN_*`
//! environment twins for what Stator implements, plus the embedded-worker mode.

use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};
use stator_config::RuntimeArgs;
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
    /// Queue requests while every worker is busy, up to this load.
    #[arg(long, env = "DYN_ROUTER_QUEUE_THRESHOLD")]
    pub router_queue_threshold: Option<f64>,
}

impl KvRouterArgs {
    /// Whether KV events are followed.
    pub fn use_kv_events(&self) -> bool {
        !self.no_router_kv_events
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
    fn shipped_model_is_found_by_default() {
        let args = FrontendArgs::try_parse_from(["frontend", "--mocker-workers", "2"]).unwrap();
        assert!(args.embedded());
        let path = args.resolve_model_path().unwrap();
        assert!(path.join("tokenizer.json").is_file());
    }
}
