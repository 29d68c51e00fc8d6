//! Starting and stopping workers: one [`Worker`] per runtime, several per process in a
//! [`WorkerGroup`], wired to discovery and the event plane through a [`Plumbing`].
//!
//! Start order (as Dynamo's endpoint entrypoint): engine and event publishers first, then the
//! model card's `Model` record, then the endpoint (which publishes its `Endpoint` record).
//! Shutdown runs the other way round: the card goes first so no frontend routes new work
//! here, then the endpoint is withdrawn and drained, then the publishers and the runtime stop.

use std::sync::Arc;
use std::time::Duration;

use stator_llm::model_card::ModelDeploymentCard;
use stator_mocker::{MockerConfig, MockerHandle, Simulator};
use stator_runtime::discovery::{EventScope, MemStore, RecordId};
use stator_runtime::event_plane::LocalBus;
use stator_runtime::names::EndpointId;
use stator_runtime::{
    DiscoveryBackend, DistributedRuntime, Endpoint, InstanceId, RuntimeConfig, ServedEndpoint,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::args::{EngineKind, WorkerArgs, default_model_name};
use crate::engines::{EchoEngine, LlmEngine, MockerEngine};
use crate::error::WorkerError;
use crate::publish::{
    CardSettings, KV_EVENTS_TOPIC, KV_METRICS_TOPIC, LOAD_REFRESH, build_card, forward_kv_events,
    kv_event_source, model_record, publish_load,
};

/// How the workers of a process reach discovery and the event plane.
#[derive(Clone)]
pub enum Plumbing {
    /// Each worker opens the discovery backend and event plane of its [`RuntimeConfig`]
    /// (file or etcd discovery across processes, ZMQ or NATS events). With `mem` every
    /// worker would get a private store: use [`Plumbing::InProcess`] for that.
    Standalone,
    /// Workers share an in-process discovery store and event bus, with each other and with
    /// an embedding frontend (mem discovery).
    InProcess {
        /// The shared discovery store.
        store: MemStore,
        /// The shared event bus.
        bus: LocalBus,
    },
}

impl Plumbing {
    /// What the command line asks for: in-process for `mem` discovery (the workers of this
    /// process share one store), standalone otherwise.
    pub fn for_args(args: &WorkerArgs) -> Result<Self, WorkerError> {
        Ok(match args.runtime_config()?.discovery_backend {
            DiscoveryBackend::Mem => Self::InProcess {
                store: MemStore::new(),
                bus: LocalBus::new(),
            },
            DiscoveryBackend::File | DiscoveryBackend::Etcd => Self::Standalone,
        })
    }

    /// A runtime for one worker.
    pub async fn open(&self, config: RuntimeConfig) -> Result<DistributedRuntime, WorkerError> {
        Ok(match self {
            Self::Standalone => DistributedRuntime::new(config).await?,
            Self::InProcess { store, bus } => {
                DistributedRuntime::in_process(store, bus, config).await?
            }
        })
    }
}

/// Everything a worker needs, resolved once from the command line and shared by the workers
/// of a process.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The engine to serve.
    pub engine: EngineKind,
    /// The endpoint to serve it on.
    pub endpoint: EndpointId,
    /// The card to publish.
    pub card: ModelDeploymentCard,
    /// The simulator settings (mocker engine).
    pub mocker: MockerConfig,
    /// Delay between echoed tokens (echo engine).
    pub echo_delay: Duration,
    /// Runtime settings of each worker's runtime.
    pub runtime: RuntimeConfig,
    /// Serve the card's files from the first worker's status server (when it runs).
    pub self_host_metadata: bool,
}

impl WorkerSpec {
    /// Resolves `args`: parses the endpoint, validates the mocker settings and builds the card.
    pub fn from_args(args: &WorkerArgs) -> Result<Self, WorkerError> {
        let mocker = args.mocker.to_config()?;
        let settings = CardSettings {
            model_name: args
                .model_name
                .clone()
                .unwrap_or_else(|| default_model_name(&args.model_path)),
            block_size: mocker.block_size as u32,
            context_length: args.context_length,
            mocker: (args.engine == EngineKind::Mocker).then(|| mocker.clone()),
        };
        Ok(Self {
            engine: args.engine,
            endpoint: args.endpoint_id()?,
            card: build_card(&args.model_path, &settings)?,
            mocker,
            echo_delay: args.echo_delay(),
            runtime: args.runtime_config()?,
            self_host_metadata: args.self_host_metadata,
        })
    }

    /// Rewrites the card's local files into URLs on `drt`'s status server and serves them
    /// there (Dynamo's self-hosted metadata); no change when self-hosting is off or the
    /// runtime has no status server.
    pub fn self_host_card(&mut self, drt: &DistributedRuntime) {
        if !self.self_host_metadata {
            return;
        }
        let Some(authority) = drt.system_status_authority() else {
            return;
        };
        let routes = self.card.self_host(
            &authority,
            &self.endpoint.namespace,
            &self.endpoint.component,
            &self.endpoint.name,
            "_base",
        );
        for (route, path) in &routes {
            drt.metadata_files().insert(route.clone(), path.clone());
        }
        tracing::info!(
            %authority,
            files = routes.len(),
            "model card files self-hosted on the system status server"
        );
    }
}

/// One running worker: its runtime, served endpoint, card record and publishers.
pub struct Worker {
    drt: DistributedRuntime,
    served: ServedEndpoint,
    model: RecordId,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Worker {
    /// Starts a worker for `spec` on `drt` (events go out on the runtime's event plane).
    pub async fn start(spec: &WorkerSpec, drt: DistributedRuntime) -> Result<Self, WorkerError> {
        let instance_id = drt.instance_id();
        let cancel = CancellationToken::new();
        let (engine, tasks) = match spec.engine {
            EngineKind::Echo => (
                Arc::new(EchoEngine::new(spec.echo_delay)) as LlmEngine,
                Vec::new(),
            ),
            EngineKind::Mocker => start_mocker(spec, &drt, &cancel).await?,
        };
        let record = model_record(&spec.card, &spec.endpoint, instance_id)?;
        let model = record.id();
        let served = async {
            drt.discovery().register(record).await?;
            let endpoint = Endpoint::from_id(&drt, spec.endpoint.clone())?;
            Ok::<_, WorkerError>(endpoint.serve(engine).await?)
        }
        .await;
        let served = match served {
            Ok(served) => served,
            Err(e) => {
                cancel.cancel();
                drt.shutdown().await;
                return Err(e);
            }
        };
        tracing::info!(
            instance = %instance_id,
            endpoint = %spec.endpoint,
            model = %spec.card.display_name,
            engine = ?spec.engine,
            "worker ready"
        );
        Ok(Self {
            drt,
            served,
            model,
            cancel,
            tasks,
        })
    }

    /// The worker's instance id (of its endpoint, card and KV events).
    pub fn instance_id(&self) -> InstanceId {
        self.drt.instance_id()
    }

    /// The worker's runtime.
    pub fn runtime(&self) -> &DistributedRuntime {
        &self.drt
    }

    /// Graceful stop: unregister the card, withdraw and drain the endpoint, stop publishing,
    /// shut the runtime down. Returns whether every in-flight request finished in time.
    pub async fn shutdown(self) -> bool {
        if let Err(e) = self.drt.discovery().unregister(&self.model).await {
            tracing::warn!(error = %e, "cannot unregister the model card");
        }
        let drained = self
            .served
            .stop(self.drt.config().graceful_shutdown_timeout)
            .await;
        self.cancel.cancel();
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "event publishing task failed");
            }
        }
        let stopped = self.drt.shutdown().await;
        tracing::info!(instance = %self.drt.instance_id(), drained, "worker stopped");
        drained && stopped
    }
}

/// Starts one simulator thread per DP rank, a KV-event publisher (and its discovery
/// source record) per rank, and the load publisher.
async fn start_mocker(
    spec: &WorkerSpec,
    drt: &DistributedRuntime,
    cancel: &CancellationToken,
) -> Result<(LlmEngine, Vec<JoinHandle<()>>), WorkerError> {
    let instance_id = drt.instance_id();
    let events = drt.event_plane();
    let scope = EventScope::Endpoint {
        endpoint: spec.endpoint.clone(),
    };
    let mut handles = Vec::new();
    let mut tasks = Vec::new();
    for rank in 0..spec.mocker.dp_size.max(1) {
        let simulator = Simulator::with_dp_rank(spec.mocker.clone(), instance_id.0, rank)
            .map_err(|e| WorkerError::Config(e.to_string()))?;
        let (handle, rank_events) = MockerHandle::spawn(simulator)?;
        handles.push(handle);
        if !spec.mocker.enable_prefix_caching {
            continue;
        }
        let publisher = events.publisher(scope.clone(), KV_EVENTS_TOPIC).await?;
        let source = kv_event_source(
            &spec.endpoint,
            instance_id.0,
            rank,
            publisher.publisher_id(),
        );
        let source_id = source.id();
        drt.discovery().register(source).await?;
        tasks.push(tokio::spawn(forward_kv_events(
            publisher,
            rank_events,
            Some((Arc::clone(drt.discovery()), source_id)),
            cancel.clone(),
        )));
    }
    let publisher = events.publisher(scope, KV_METRICS_TOPIC).await?;
    tasks.push(tokio::spawn(publish_load(
        publisher,
        handles.iter().map(MockerHandle::load).collect(),
        LOAD_REFRESH,
        cancel.clone(),
    )));
    Ok((Arc::new(MockerEngine::new(handles)) as LlmEngine, tasks))
}

/// The workers of one process.
pub struct WorkerGroup {
    workers: Vec<Worker>,
}

impl WorkerGroup {
    /// The running workers.
    pub fn workers(&self) -> &[Worker] {
        &self.workers
    }

    /// Their instance ids.
    pub fn instance_ids(&self) -> Vec<InstanceId> {
        self.workers.iter().map(Worker::instance_id).collect()
    }

    /// The system status server's address, when `DYN_SYSTEM_PORT` / `--system-port` enabled
    /// it (it runs in the first worker's runtime).
    pub fn status_addr(&self) -> Option<std::net::SocketAddr> {
        self.workers
            .first()
            .and_then(|w| w.runtime().system_status_addr())
    }

    /// Resolves when any worker's discovery registration is lost for good (its etcd lease
    /// expired): the process must then shut down, see
    /// [`DistributedRuntime::registration_lost`].
    pub async fn registration_lost(&self) {
        let lost = self.workers.iter().map(|w| w.runtime().registration_lost());
        let waits: Vec<_> = lost
            .map(|token| Box::pin(token.cancelled_owned()))
            .collect();
        if waits.is_empty() {
            std::future::pending::<()>().await;
        }
        futures::future::select_all(waits).await;
    }

    /// Stops every worker (each unregisters its card, then withdraws and drains its endpoint).
    /// Returns whether every in-flight request finished in time.
    pub async fn shutdown(self) -> bool {
        let stops = self.workers.into_iter().map(Worker::shutdown);
        futures::future::join_all(stops)
            .await
            .into_iter()
            .all(|drained| drained)
    }
}

/// Starts `args.num_workers` workers, each with its own runtime and instance id, through
/// `plumbing`. Only the first runtime runs the system status server (one port per process),
/// which also serves the card's files when self-hosting is on. On any failure the workers
/// already started are shut down again.
pub async fn run_workers(
    args: &WorkerArgs,
    plumbing: &Plumbing,
) -> Result<WorkerGroup, WorkerError> {
    let mut spec = WorkerSpec::from_args(args)?;
    let mut workers: Vec<Worker> = Vec::new();
    for index in 0..args.num_workers {
        let mut runtime = spec.runtime.clone();
        if index > 0 {
            runtime.system_status.port = None;
        }
        let started = async {
            let drt = plumbing.open(runtime).await?;
            if index == 0 {
                // Every worker of the process publishes the same card, served by the first.
                spec.self_host_card(&drt);
            }
            Worker::start(&spec, drt).await
        }
        .await;
        match started {
            Ok(worker) => workers.push(worker),
            Err(e) => {
                WorkerGroup { workers }.shutdown().await;
                return Err(e);
            }
        }
    }
    Ok(WorkerGroup { workers })
}

/// Runs the workers `args` asks for until SIGINT/SIGTERM or until their discovery
/// registration is lost (etcd lease expiry), then shuts them down gracefully. The `worker`
/// binary is this function.
pub async fn serve(args: &WorkerArgs) -> Result<(), WorkerError> {
    let plumbing = Plumbing::for_args(args)?;
    let group = run_workers(args, &plumbing).await?;
    let lost = tokio::select! {
        signal = shutdown_signal() => {
            signal?;
            false
        }
        () = group.registration_lost() => true,
    };
    tracing::info!("shutting down");
    if !group.shutdown().await {
        tracing::warn!("some requests did not finish before the graceful-shutdown timeout");
    }
    if lost {
        return Err(WorkerError::RegistrationLost);
    }
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() -> std::io::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = terminate.recv() => Ok(()),
    }
}
