//! The closed loop: `C` tasks, each sending its next request as soon as the previous one ended.
//!
//! Request bodies are built before the measured window so the window only holds HTTP work. A
//! row is a warm-up phase (not measured, it also opens the keep-alive connections) followed by
//! the measured phase, bracketed by CPU snapshots and an RSS sampler of the target process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::procstat::{CpuSnapshot, ProcTarget, RssSampler, rss_kib};
use crate::request::{HttpClient, RequestOutcome, send};
use crate::workload::Workload;

/// How often the target's RSS is sampled.
const RSS_INTERVAL: Duration = Duration::from_millis(150);

/// The load generator's client: keep-alive HTTP/1.1 with `TCP_NODELAY`, one connection per
/// closed-loop task, and a pool of up to `max_idle_per_host` for one-off requests.
pub fn http_client(max_idle_per_host: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    HttpClient::new(
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_per_host)
            .build(connector),
    )
}

/// One row of the benchmark: a concurrency level and how many requests to send.
#[derive(Debug, Clone)]
pub struct RowPlan {
    /// Endpoint, e.g. `http://127.0.0.1:8000/v1/chat/completions`.
    pub uri: Uri,
    /// Concurrent in-flight requests (closed loop).
    pub concurrency: usize,
    /// Measured requests.
    pub requests: usize,
    /// Unmeasured warm-up requests sent first (at the same concurrency).
    pub warmup: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Workload index of the first warm-up request (later rows continue after earlier ones).
    pub first_index: u64,
    /// Process whose CPU and RSS are measured (the frontend), if any.
    pub target_pid: Option<u32>,
    /// Worker processes whose summed CPU is measured (e.g. mocker processes).
    pub worker_pids: Vec<u32>,
}

/// Raw measurements of one row.
#[derive(Debug, Clone)]
pub struct RowMeasurement {
    /// Every measured request's outcome.
    pub outcomes: Vec<RequestOutcome>,
    /// Wall time of the measured phase.
    pub window: Duration,
    /// CPU counters at the start of the measured phase.
    pub cpu_start: CpuSnapshot,
    /// CPU counters at the end.
    pub cpu_end: CpuSnapshot,
    /// Largest `VmRSS` of the target during the measured phase, in KiB.
    pub target_rss_max_kib: Option<u64>,
    /// `VmRSS` of the target when the measured phase started, in KiB.
    pub target_rss_start_kib: Option<u64>,
}

/// Sends every body in `bodies` with `concurrency` closed-loop tasks; outcomes in body order.
pub async fn run_closed_loop(
    client: &HttpClient,
    uri: &Uri,
    bodies: Vec<Bytes>,
    concurrency: usize,
    timeout: Duration,
) -> Vec<RequestOutcome> {
    let total = bodies.len();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, total.max(1)) {
        let (client, uri, bodies, next) = (
            client.clone(),
            uri.clone(),
            Arc::clone(&bodies),
            Arc::clone(&next),
        );
        tasks.spawn(async move {
            let mut connection = client.take_connection();
            let mut done = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(index) else { break };
                done.push((
                    index,
                    send(&mut connection, &uri, body.clone(), timeout).await,
                ));
            }
            client.give_back(connection);
            done
        });
    }
    let mut all = Vec::with_capacity(total);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(done) => all.extend(done),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => {}
        }
    }
    all.sort_by_key(|(index, _)| *index);
    all.into_iter().map(|(_, outcome)| outcome).collect()
}

/// Runs one row: warm-up, then the measured phase with CPU/RSS sampling.
pub async fn run_row(client: &HttpClient, workload: &Workload, plan: &RowPlan) -> RowMeasurement {
    let bodies = |from: u64, count: usize| {
        (from..from + count as u64)
            .map(|i| workload.body(i))
            .collect::<Vec<_>>()
    };
    let warmup = bodies(plan.first_index, plan.warmup);
    let measured = bodies(plan.first_index + plan.warmup as u64, plan.requests);
    run_closed_loop(client, &plan.uri, warmup, plan.concurrency, plan.timeout).await;

    let rss = plan
        .target_pid
        .map(|pid| RssSampler::start(ProcTarget::Pid(pid), RSS_INTERVAL));
    let target_rss_start_kib = plan
        .target_pid
        .and_then(|pid| rss_kib(ProcTarget::Pid(pid)).ok());
    let cpu_start = CpuSnapshot::take(plan.target_pid, &plan.worker_pids);
    let started = Instant::now();
    let outcomes =
        run_closed_loop(client, &plan.uri, measured, plan.concurrency, plan.timeout).await;
    let window = started.elapsed();
    let cpu_end = CpuSnapshot::take(plan.target_pid, &plan.worker_pids);
    let target_rss_max_kib = match rss {
        // Joining the sampler thread blocks briefly; keep it off the async workers.
        Some(sampler) => tokio::task::spawn_blocking(move || sampler.finish())
            .await
            .ok()
            .flatten(),
        None => None,
    };
    RowMeasurement {
        outcomes,
        window,
        cpu_start,
        cpu_end,
        target_rss_max_kib,
        target_rss_start_kib,
    }
}
