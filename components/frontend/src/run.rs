//! Starting and stopping the frontend: runtime, embedded workers, model manager, HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use stator_llm::http::{DEFAULT_METRICS_PREFIX, HttpConfig, HttpService};
use stator_llm::model_manager::{KvSelectorFactory, ManagerConfig, ModelManager, RouterChoice};
use stator_protocols::openai::ValidationOptions;
use stator_runtime::discovery::MemStore;
use stator_runtime::event_plane::LocalBus;
use stator_runtime::{DiscoveryBackend, DistributedRuntime, RouterMode, RuntimeConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use worker::{EngineKind, Plumbing, WorkerArgs, WorkerGroup, run_workers};

use crate::args::{FrontendArgs, RouterModeArg};

/// A running frontend.
pub struct Frontend {
    drt: DistributedRuntime,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), stator_llm::http::HttpError>>,
    workers: Vec<WorkerGroup>,
}

/// Maps the shared runtime flags onto the runtime's settings; embedded workers force
/// in-process discovery on loopback.
fn runtime_config(args: &FrontendArgs) -> anyhow::Result<RuntimeConfig> {
    let mut config = RuntimeConfig::from_shared(&args.runtime.to_config())?;
    if args.embedded() {
        config.discovery_backend = DiscoveryBackend::Mem;
        let loopback = Some("127.0.0.1".to_owned());
        let plane = &mut config.request_plane;
        plane.rpc_host = plane.rpc_host.take().or(loopback.clone());
        plane.response_host = plane.response_host.take().or(loopback);
    }
    Ok(config)
}

/// The router choice the flags ask for.
fn router_choice(args: &FrontendArgs) -> RouterChoice {
    let default = if args.mocker_workers > 0 {
        RouterModeArg::Kv
    } else {
        RouterModeArg::RoundRobin
    };
    match args.router_mode.unwrap_or(default) {
        RouterModeArg::RoundRobin => RouterChoice::Push(RouterMode::RoundRobin),
        RouterModeArg::Random => RouterChoice::Push(RouterMode::Random),
        RouterModeArg::PowerOfTwo => RouterChoice::Push(RouterMode::PowerOfTwo),
        RouterModeArg::LeastLoaded => RouterChoice::Push(RouterMode::LeastLoaded),
        RouterModeArg::Direct => RouterChoice::Direct,
        RouterModeArg::Kv => {
            RouterChoice::Selector(Arc::new(KvSelectorFactory::new(args.kv.to_config())))
        }
    }
}

/// Runs the frontend `args` asks for until SIGINT/SIGTERM or until its discovery
/// registration is lost (etcd lease expiry), then shuts it down gracefully. The `frontend`
/// binary is this function.
pub async fn serve(args: &FrontendArgs) -> anyhow::Result<()> {
    let frontend = Box::pin(Frontend::start(args)).await?;
    let lost = tokio::select! {
        signal = worker::shutdown_signal() => {
            signal?;
            false
        }
        () = frontend.registration_lost() => true,
    };
    tracing::info!("shutting down");
    frontend.shutdown().await?;
    if lost {
        anyhow::bail!("discovery registration lost (etcd lease expired or revoked)");
    }
    Ok(())
}

/// The `frontend` binary: logging to stderr (`DYN_LOG`), parse the command line, serve until
/// SIGINT/SIGTERM or lease loss.
pub fn main() -> std::process::ExitCode {
    crate::allocator::tune();
    worker::entry::init_logging();
    let args = FrontendArgs::parse();
    worker::entry::block_on_main(args.runtime.threads(), serve(&args))
}

/// Starts the embedded workers of `args` sharing `store` and `bus`.
async fn start_workers(
    args: &FrontendArgs,
    store: &MemStore,
    bus: &LocalBus,
) -> anyhow::Result<Vec<WorkerGroup>> {
    let model_path = args
        .resolve_model_path()
        .context("cannot find the model directory: pass --model-path")?;
    let plumbing = Plumbing::InProcess {
        store: store.clone(),
        bus: bus.clone(),
    };
    let mut groups = Vec::new();
    for (engine, count) in [
        (EngineKind::Mocker, args.mocker_workers),
        (EngineKind::Echo, args.echo_workers),
    ] {
        if count == 0 {
            continue;
        }
        let mut argv = vec![
            "worker".to_owned(),
            "--model-path".to_owned(),
            model_path.to_string_lossy().into_owned(),
            "--num-workers".to_owned(),
            count.to_string(),
            "--discovery-backend".to_owned(),
            "mem".to_owned(),
            "--tcp-rpc-host".to_owned(),
            "127.0.0.1".to_owned(),
            "--tcp-response-stream-host".to_owned(),
            "127.0.0.1".to_owned(),
        ];
        if let Some(name) = &args.model_name {
            argv.extend(["--model-name".to_owned(), name.clone()]);
        }
        let mut worker_args = WorkerArgs::try_parse_from(argv)?;
        worker_args.engine = engine;
        worker_args.mocker = args.mocker.clone();
        groups.push(run_workers(&worker_args, &plumbing).await?);
    }
    Ok(groups)
}

impl Frontend {
    /// Starts everything `args` asks for and begins serving HTTP.
    pub async fn start(args: &FrontendArgs) -> anyhow::Result<Self> {
        let routing = router_choice(args);
        let config = runtime_config(args)?;
        let (drt, workers) = if args.embedded() {
            let (store, bus) = (MemStore::new(), LocalBus::new());
            let workers = start_workers(args, &store, &bus).await?;
            (
                DistributedRuntime::in_process(&store, &bus, config).await?,
                workers,
            )
        } else {
            (DistributedRuntime::new(config).await?, Vec::new())
        };
        let card_cache_dir = args
            .card_cache_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("stator-card-cache"));
        let manager = ModelManager::start(
            drt.clone(),
            ManagerConfig {
                namespace: args.namespace.clone(),
                routing,
                kv_cache_block_size: args.kv_cache_block_size,
                card_cache_dir,
            },
        )
        .await?;
        let http = HttpService::new(
            manager,
            &HttpConfig {
                body_limit_mb: args.http_body_limit_mb,
                metrics_prefix: args
                    .metrics_prefix
                    .clone()
                    .unwrap_or_else(|| DEFAULT_METRICS_PREFIX.to_owned()),
                validation: ValidationOptions {
                    ignore_unsupported_fields: args.ignore_unsupported_fields,
                },
            },
        )?;
        let listener = tokio::net::TcpListener::bind((args.http_host.as_str(), args.http_port))
            .await
            .with_context(|| format!("cannot bind {}:{}", args.http_host, args.http_port))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            http.serve(listener, async move {
                let _ = stopped.await;
            })
            .await
        });
        tracing::info!(%addr, "frontend listening");
        Ok(Self {
            drt,
            addr,
            stop,
            server,
            workers,
        })
    }

    /// The bound HTTP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resolves when the frontend's discovery registration is lost for good (etcd lease
    /// expired); the process should then shut down.
    pub async fn registration_lost(&self) {
        self.drt.registration_lost().cancelled().await;
    }

    /// Stops accepting requests, lets in-flight ones finish, then stops the embedded workers
    /// and the runtime.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.server.await??;
        for group in self.workers {
            group.shutdown().await;
        }
        self.drt.shutdown().await;
        Ok(())
    }
}
