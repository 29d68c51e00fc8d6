//! A simulated vLLM-style LLM engine for running Stator's control plane without a GPU.
//!
//! [`Simulator`] is a deterministic, steppable state machine: continuous batching bounded by
//! `max_num_seqs` and `max_num_batched_tokens`, chunked prefill, a prefix-caching KV block
//! manager ([`BlockManager`]) with an LRU pool of inactive cached blocks and LIFO preemption,
//! random output tokens, and Dynamo's polynomial timing model divided by `speedup_ratio`.
//! Each [`Simulator::step`] is one forward pass; it returns the tokens produced, the finished
//! requests with their usage (including prompt cache hits), the KV events (`stored` with parent
//! hash, `removed`, `cleared`) that exactly mirror the cache, and how long the pass would have
//! taken. Driving it in real time is up to the caller; the `driver` feature (on by default)
//! provides `MockerHandle`, which runs a simulator on its own thread, paced by the simulated
//! durations, behind `tokio::sync` channels.
//!
//! ```
//! use stator_mocker::{FinishReason, MockRequest, MockerConfig, RequestId, Simulator};
//!
//! let config = MockerConfig { block_size: 4, speedup_ratio: 0.0, ..MockerConfig::default() };
//! let mut sim = Simulator::new(config, 7)?;
//! sim.add_request(MockRequest::new(RequestId(1), (0..10).collect(), 3))?;
//!
//! let mut tokens = Vec::new();
//! let mut finished = Vec::new();
//! let mut events = Vec::new();
//! while !sim.is_idle() {
//!     let pass = sim.step();
//!     tokens.extend(pass.tokens.iter().map(|t| t.token_id));
//!     finished.extend(pass.finished);
//!     events.extend(pass.events);
//! }
//! assert_eq!(tokens.len(), 3);
//! assert_eq!(finished[0].reason, FinishReason::Length);
//! // Ten prompt tokens plus the two output tokens fed back filled three blocks of four:
//! // they stay cached after the request ends, announced by `stored` events.
//! assert_eq!(sim.cached_blocks().len(), 3);
//! assert!(!events.is_empty());
//! # Ok::<(), stator_mocker::MockerError>(())
//! ```

mod config;
#[cfg(feature = "driver")]
pub mod driver;
mod error;
pub mod kv;
mod lru;
mod output;
mod request;
mod sampler;
mod scheduler;
mod sequence;
mod simulator;
pub mod timing;

#[cfg(test)]
mod proptests;

pub use config::MockerConfig;
#[cfg(feature = "driver")]
pub use driver::{MockerHandle, Submitted, Update};
pub use error::MockerError;
pub use kv::{BlockManager, BlockUsage, OutOfBlocks, PrefixMatch};
pub use output::{FinishedRequest, LoadMetrics, StepOutput, TokenOutput};
pub use request::{FinishReason, MockRequest, RequestId};
pub use simulator::Simulator;
