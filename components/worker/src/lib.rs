//! The Stator worker: serves an engine (`echo` or the `mocker`) on a Dynamo-compatible
//! endpoint and publishes what frontends need to use it.
//!
//! A worker builds the model deployment card from a model directory, registers it in
//! discovery as a `Model` record, then serves its engine on the endpoint (the runtime
//! publishes the `Endpoint` record). A mocker worker also publishes its simulator's KV events
//! on `kv-events` and its load on `kv_metrics`. The `worker` binary is a thin shell over this
//! library, so a frontend can start workers in its own process ("embedded mode") with
//! [`run_workers`] and a shared in-process [`Plumbing`].
//!
//! ```
//! use clap::Parser;
//! use futures::StreamExt;
//! use stator_protocols::worker::{LLMEngineOutput, PreprocessedRequest};
//! use stator_protocols::worker::Annotated;
//! use stator_runtime::discovery::MemStore;
//! use stator_runtime::event_plane::LocalBus;
//! use stator_runtime::{AsyncEngine, DistributedRuntime, Endpoint, Request};
//! use worker::{Plumbing, WorkerArgs, run_workers};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/qwen2.5-0.5b-mock");
//! let args = WorkerArgs::try_parse_from([
//!     "worker", "--engine", "echo", "--model-path", model, "--discovery-backend", "mem",
//!     "--tcp-rpc-host", "127.0.0.1", "--tcp-response-stream-host", "127.0.0.1",
//! ])?;
//! // The frontend shares the store and bus with the workers it embeds.
//! let (store, bus) = (MemStore::new(), LocalBus::new());
//! let plumbing = Plumbing::InProcess { store: store.clone(), bus: bus.clone() };
//! let workers = run_workers(&args, &plumbing).await?;
//!
//! let client_drt = DistributedRuntime::in_process(&store, &bus, args.runtime_config()?).await?;
//! let endpoint = Endpoint::from_id(&client_drt, args.endpoint_id()?)?;
//! let client = endpoint.client::<PreprocessedRequest, Annotated<LLMEngineOutput>>().await?;
//! client.instances().wait_for_instances().await;
//! let request = PreprocessedRequest { token_ids: vec![7, 8, 9], ..Default::default() };
//! let items = client.generate(Request::new(request)).await?.try_collect_items().await?;
//! let echoed: Vec<u32> = items.iter().flat_map(|i| i.data.clone().unwrap().token_ids).collect();
//! assert_eq!(echoed, [7, 8, 9]);
//!
//! client_drt.shutdown().await;
//! workers.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod args;
pub mod engines;
pub mod entry;
mod error;
pub mod publish;
pub mod run;

pub use args::{EngineKind, MockerArgs, WorkerArgs};
pub use engines::{EchoEngine, EngineOutput, LlmEngine, MockerEngine};
pub use error::WorkerError;
pub use run::{Plumbing, Worker, WorkerGroup, WorkerSpec, run_workers, serve, shutdown_signal};
