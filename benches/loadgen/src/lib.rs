//! Closed-loop load generator for OpenAI-compatible streaming chat endpoints.
//!
//! `C` tokio tasks each own one keep-alive HTTP/1.1 connection (`TCP_NODELAY` on) and each
//! sends its next request as soon as the previous answer ended. Answers are parsed as SSE
//! incrementally, giving TTFT, per-request ITL, end-to-end latency and the server's usage
//! (prompt, cached and completion tokens). The frontend's CPU time and RSS are read from
//! `/proc` over the measured window, and so is the generator's own CPU, to show it is not the
//! bottleneck. The `loadgen` binary turns this into one markdown table row per concurrency.
//! All work runs on the tokio workers except `/proc` RSS sampling, which has its own thread.
//!
//! As a library it also serves end-to-end tests: [`Workload`] builds the shared-prefix
//! requests, [`run_closed_loop`] sends them, and each [`RequestOutcome`] carries the server's
//! cached-token count, so a test can compare prompt cache hits between router modes.
//! [`MockServer`] (also the `loadgen-mock` binary) serves a Dynamo-shaped stream, for tests and
//! for measuring the generator's own ceiling.
//!
//! ```
//! use stator_loadgen::{SseParser, StreamItem, classify};
//!
//! let mut parser = SseParser::new();
//! let mut events = Vec::new();
//! parser.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n", &mut events);
//! parser.push(b"\ndata: [DONE]\n\n", &mut events);
//! assert_eq!(classify(&events[0]), StreamItem::Chunk { has_content: true, usage: None });
//! assert_eq!(classify(&events[1]), StreamItem::Done);
//! ```

mod chunk;
mod connection;
mod engine;
mod mock;
mod models;
mod procstat;
mod report;
mod request;
mod sse;
mod stats;
mod workload;

pub use chunk::{StreamItem, Usage, classify};
pub use connection::Connection;
pub use engine::{RowMeasurement, RowPlan, http_client, run_closed_loop, run_row};
pub use mock::{MOCK_CACHED_TOKENS, MOCK_PROMPT_TOKENS, MockOptions, MockServer};
pub use models::{ModelsError, model_ids, wait_for_model};
pub use procstat::{
    CpuSnapshot, ProcError, ProcTarget, RssSampler, clock_ticks_per_second, cpu_seconds, rss_kib,
};
pub use report::RowReport;
pub use request::{HttpClient, RequestError, RequestOutcome, send};
pub use sse::{SseEvent, SseParser};
pub use stats::{Quantiles, percentile, percentile_sorted};
pub use workload::{Workload, WorkloadSpec};
