//! The worker's command line: engine choice, model, endpoint, mocker knobs (Dynamo's
//! `python -m dynamo.mocker` names) and the shared runtime flags of `stator-config`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};
use stator_config::RuntimeArgs;
use stator_mocker::MockerConfig;
use stator_runtime::RuntimeConfig;
use stator_runtime::names::EndpointId;

use crate::error::WorkerError;

/// Dynamo's default endpoint of an aggregated worker.
pub const DEFAULT_ENDPOINT: &str = "dyn://dynamo.backend.generate";

/// Which engine a worker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum EngineKind {
    /// Streams the prompt's tokens back (deterministic, for tests and overhead benchmarks).
    Echo,
    /// The simulated vLLM-style engine with prefix caching, KV events and load metrics.
    #[default]
    Mocker,
}

/// `worker`: serves an engine on a Dynamo-compatible endpoint and publishes its model card.
#[derive(Debug, Clone, Parser)]
#[command(name = "worker", version, about)]
pub struct WorkerArgs {
    /// Engine to serve.
    #[arg(long, value_enum, default_value_t)]
    pub engine: EngineKind,
    /// Model directory (config.json, tokenizer.json, tokenizer_config.json, ...).
    #[arg(long, env = "DYN_MODEL_PATH")]
    pub model_path: PathBuf,
    /// Served model name [default: the model directory's name].
    #[arg(long, env = "DYN_MODEL_NAME")]
    pub model_name: Option<String>,
    /// Endpoint to serve, `dyn://namespace.component.endpoint`.
    #[arg(long, default_value = DEFAULT_ENDPOINT)]
    pub endpoint: String,
    /// Workers in this process, each with its own runtime, instance id and registration.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub num_workers: u32,
    /// Context length the frontend enforces (prompt + output) [default: none published].
    #[arg(long, visible_alias = "max-model-len")]
    pub context_length: Option<u32>,
    /// With a system status server (`--system-port`): publish the card's files as URLs on it
    /// (`/v1/metadata/…`) so frontends on other machines can fetch them; otherwise the card
    /// names local paths (shared storage).
    #[arg(
        long,
        env = "DYN_SELF_HOST_METADATA",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub self_host_metadata: bool,
    /// Delay between echoed tokens in milliseconds (echo engine only).
    #[arg(long, env = "DYN_TOKEN_ECHO_DELAY_MS", default_value_t = 0)]
    pub echo_delay_ms: u64,
    /// Mocker engine settings.
    #[command(flatten)]
    pub mocker: MockerArgs,
    /// Discovery, request plane, event plane and status server settings.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// The mocker's engine flags, named as in `python -m dynamo.mocker`.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct MockerArgs {
    /// KV blocks in the simulated GPU cache.
    #[arg(long, default_value_t = 16_384)]
    pub num_gpu_blocks_override: usize,
    /// Tokens per KV block (published as the card's `kv_cache_block_size`).
    #[arg(long, default_value_t = 64)]
    pub block_size: usize,
    /// Most sequences running at once.
    #[arg(long, default_value_t = 256)]
    pub max_num_seqs: usize,
    /// Most tokens in one forward pass.
    #[arg(long, default_value_t = 8192)]
    pub max_num_batched_tokens: usize,
    /// Cache and reuse prompt prefixes and publish KV events (default on).
    #[arg(long, overrides_with = "no_enable_prefix_caching")]
    pub enable_prefix_caching: bool,
    /// Turn prefix caching off.
    #[arg(long, overrides_with = "enable_prefix_caching")]
    pub no_enable_prefix_caching: bool,
    /// Split long prompts over several passes (default on).
    #[arg(long, overrides_with = "no_enable_chunked_prefill")]
    pub enable_chunked_prefill: bool,
    /// Turn chunked prefill off.
    #[arg(long, overrides_with = "enable_chunked_prefill")]
    pub no_enable_chunked_prefill: bool,
    /// Divides every simulated latency; 0 means no delay at all.
    #[arg(long, default_value_t = 1.0)]
    pub speedup_ratio: f64,
    /// Further divides the decode part of every pass.
    #[arg(long, default_value_t = 1.0)]
    pub decode_speedup_ratio: f64,
    /// Data-parallel ranks, one simulated engine each (a request's `routing.dp_rank` picks
    /// one; otherwise the least busy serves it).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub data_parallel_size: u32,
}

impl MockerArgs {
    /// Whether prefix caching (and so KV event publishing) is on.
    pub fn prefix_caching(&self) -> bool {
        !self.no_enable_prefix_caching
    }

    /// The simulator configuration these flags describe (validated).
    pub fn to_config(&self) -> Result<MockerConfig, WorkerError> {
        let config = MockerConfig {
            block_size: self.block_size,
            num_gpu_blocks: self.num_gpu_blocks_override,
            max_num_seqs: self.max_num_seqs,
            max_num_batched_tokens: self.max_num_batched_tokens,
            enable_prefix_caching: self.prefix_caching(),
            enable_chunked_prefill: !self.no_enable_chunked_prefill,
            speedup_ratio: self.speedup_ratio,
            decode_speedup_ratio: self.decode_speedup_ratio,
            dp_size: self.data_parallel_size,
            ..MockerConfig::default()
        };
        config
            .validate()
            .map_err(|e| WorkerError::Config(e.to_string()))?;
        Ok(config)
    }
}

impl WorkerArgs {
    /// The endpoint address parsed from `--endpoint`.
    pub fn endpoint_id(&self) -> Result<EndpointId, WorkerError> {
        EndpointId::parse(&self.endpoint)
            .map_err(|e| WorkerError::Config(format!("--endpoint {:?}: {e}", self.endpoint)))
    }

    /// `--echo-delay-ms` as a duration.
    pub fn echo_delay(&self) -> Duration {
        Duration::from_millis(self.echo_delay_ms)
    }

    /// The runtime settings these flags (and their `DYN_*` twins) resolve to.
    pub fn runtime_config(&self) -> Result<RuntimeConfig, WorkerError> {
        RuntimeConfig::from_shared(&self.runtime.to_config())
            .map_err(|e| WorkerError::Config(e.to_string()))
    }
}

/// The served model name: `--model-name`, else the model directory's last component.
pub fn default_model_name(model_path: &std::path::Path) -> String {
    model_path
        .file_name()
        .map_or_else(|| model_path.to_string_lossy(), |n| n.to_string_lossy())
        .into_owned()
}

#[cfg(test)]
mod tests {
    use stator_runtime::DiscoveryBackend;
    use stator_runtime::EventPlaneKind;
    use stator_runtime::request_plane::RequestPlaneKind;
    use stator_runtime::wire::Codec;

    use super::*;

    fn parse(extra: &[&str]) -> WorkerArgs {
        let mut argv = vec!["worker", "--model-path", "models/qwen2.5-0.5b-mock"];
        argv.extend_from_slice(extra);
        WorkerArgs::try_parse_from(argv).expect("valid command line")
    }

    #[test]
    fn defaults_follow_dynamo_mocker() {
        let args = parse(&[]);
        assert_eq!(args.engine, EngineKind::Mocker);
        assert_eq!(args.endpoint, DEFAULT_ENDPOINT);
        let config = args.mocker.to_config().unwrap();
        assert_eq!(config, MockerConfig::default());
        assert_eq!(default_model_name(&args.model_path), "qwen2.5-0.5b-mock");
        assert_eq!(
            args.endpoint_id().unwrap().to_string(),
            "dynamo/backend/generate"
        );
    }

    #[test]
    fn negated_toggles_and_last_one_wins() {
        let args = parse(&["--no-enable-prefix-caching", "--no-enable-chunked-prefill"]);
        let config = args.mocker.to_config().unwrap();
        assert!(!config.enable_prefix_caching && !config.enable_chunked_prefill);
        let args = parse(&["--no-enable-prefix-caching", "--enable-prefix-caching"]);
        assert!(args.mocker.prefix_caching());
    }

    #[test]
    fn engine_shape_flags_reach_the_simulator() {
        let args = parse(&[
            "--engine",
            "echo",
            "--num-gpu-blocks-override",
            "128",
            "--block-size",
            "16",
            "--max-num-seqs",
            "4",
            "--max-num-batched-tokens",
            "512",
            "--speedup-ratio",
            "0",
            "--max-model-len",
            "4096",
            "--num-workers",
            "3",
            "--data-parallel-size",
            "2",
        ]);
        assert_eq!(args.engine, EngineKind::Echo);
        assert_eq!((args.context_length, args.num_workers), (Some(4096), 3));
        let config = args.mocker.to_config().unwrap();
        assert_eq!(
            (
                config.num_gpu_blocks,
                config.block_size,
                config.max_num_seqs
            ),
            (128, 16, 4)
        );
        assert_eq!((config.max_num_batched_tokens, config.dp_size), (512, 2));
        assert!(config.speedup_ratio.abs() < f64::EPSILON);
    }

    #[test]
    fn bad_values_are_refused() {
        let mut argv = vec!["worker", "--model-path", "m", "--num-workers", "0"];
        assert!(WorkerArgs::try_parse_from(&argv).is_err());
        argv.truncate(3);
        assert!(WorkerArgs::try_parse_from(&argv).is_ok());
        assert!(parse(&["--block-size", "0"]).mocker.to_config().is_err());
        assert!(
            parse(&["--endpoint", "dyn://Bad Name.x.y"])
                .endpoint_id()
                .is_err()
        );
        let k8s = parse(&["--discovery-backend", "kubernetes"]).runtime_config();
        assert!(matches!(k8s, Err(WorkerError::Config(_))));
    }

    #[test]
    fn cluster_planes_are_accepted() {
        let config = parse(&[
            "--discovery-backend",
            "etcd",
            "--request-plane",
            "nats",
            "--event-plane",
            "nats",
        ])
        .runtime_config()
        .unwrap();
        assert_eq!(config.discovery_backend, DiscoveryBackend::Etcd);
        assert_eq!(config.request_plane.kind, RequestPlaneKind::Nats);
        assert_eq!(config.event_plane, EventPlaneKind::Nats);
    }

    #[test]
    fn runtime_flags_map_onto_the_runtime_config() {
        let args = parse(&[
            "--discovery-backend",
            "mem",
            "--tcp-rpc-host",
            "127.0.0.1",
            "--request-plane-codec",
            "json",
            "--event-plane-host",
            "10.1.2.3",
            "--system-port",
            "0",
        ]);
        let config = args.runtime_config().unwrap();
        assert_eq!(config.discovery_backend, DiscoveryBackend::Mem);
        assert_eq!(config.request_plane.rpc_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(config.request_plane.codec, Codec::Json);
        assert_eq!(config.zmq.advertise_host, "10.1.2.3");
        assert_eq!(config.system_status.port, Some(0));
    }
}
