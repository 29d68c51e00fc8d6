//! Request-plane benchmark: round-trip latency and streaming throughput over loopback, with
//! the CPU time each side spends per request. Prints a markdown table.
//!
//! ```text
//! cargo run --release -p stator-runtime --example request_plane_bench
//! cargo run --release -p stator-runtime --example request_plane_bench -- \
//!     --request-plane nats --nats-server nats://127.0.0.1:4222
//! ```
//!
//! With `--request-plane nats` the request goes over NATS request-reply (a running
//! `nats-server` is needed) and the responses still stream back over the TCP call-home.
//!
//! On TCP the bench measures both response paths against the same server (`--responses
//! both`, the default): `inline` (Stator client and worker: the response stream comes back
//! on the request connection) and `call-home` (the client sends no inline header, so the
//! worker dials back as Dynamo does).
//!
//! The bench re-executes itself as the server (`--serve`) in a child process, so client and
//! server CPU are measured separately: each side reads its own `getrusage(RUSAGE_SELF)`
//! (user + system time); the server reports its figure through the request plane itself (a
//! `{"usage": true}` request), and that probe is excluded from the counted requests. Both
//! sides run inside spawned tasks on their runtime's worker threads, as a frontend's request
//! handlers do.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use stator_runtime::event_plane::NatsConfig;
use stator_runtime::request_plane::{
    EngineHandler, NatsRequestServer, NatsTarget, RequestHandler, RequestPlaneClient,
    RequestPlaneConfig, RequestPlaneKind, RequestPlaneServer, RequestTarget, TcpTarget,
};
use stator_runtime::wire::Codec;
use stator_runtime::{AsyncEngine, Request, ResponseStream, StatorError};

const PATH: &str = "be7c4/bench/echo/generate";
const SUBJECT: &str = "bench_echo.generate-be7c4";

#[derive(Debug, Parser)]
#[command(about = "Measure the TCP or NATS request plane on loopback")]
struct Args {
    /// Run as the server child (internal).
    #[arg(long, hide = true)]
    serve: bool,
    /// Sequential single-item requests timed for the latency percentiles.
    #[arg(long, default_value_t = 5000)]
    latency_requests: usize,
    /// Streaming requests in the throughput phase.
    #[arg(long, default_value_t = 5000)]
    stream_requests: usize,
    /// Items per streaming request.
    #[arg(long, default_value_t = 64)]
    items: u32,
    /// Concurrent requests in the throughput phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Payload codec.
    #[arg(long, default_value = "msgpack")]
    codec: Codec,
    /// Worker threads of each side's tokio runtime.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Request plane carrying the requests.
    #[arg(long, value_enum, default_value = "tcp")]
    request_plane: RequestPlaneKind,
    /// NATS server for `--request-plane nats`.
    #[arg(long, env = "NATS_SERVER", default_value = "nats://127.0.0.1:4222")]
    nats_server: String,
    /// Response paths to measure (TCP only; NATS always uses the call-home).
    #[arg(long, value_enum, default_value = "both")]
    responses: Responses,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Responses {
    /// The response stream on the request connection (Stator ⇄ Stator).
    Inline,
    /// The worker dials back per request (Dynamo's protocol).
    CallHome,
    /// Inline, then call-home.
    Both,
}

impl Responses {
    /// The `inline_responses` settings to measure, in order.
    fn modes(self, plane: RequestPlaneKind) -> Vec<bool> {
        match (plane, self) {
            (RequestPlaneKind::Nats, _) | (_, Self::CallHome) => vec![false],
            (_, Self::Inline) => vec![true],
            (_, Self::Both) => vec![true, false],
        }
    }
}

fn mode_name(inline: bool) -> &'static str {
    if inline { "inline" } else { "call-home" }
}

#[derive(Debug, Serialize, Deserialize)]
struct BenchRequest {
    items: u32,
    usage: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct BenchItem {
    index: u32,
    /// Server CPU microseconds (usage probe only).
    cpu_us: u64,
    text: String,
}

struct Echo;

#[async_trait]
impl AsyncEngine<Request<BenchRequest>, ResponseStream<BenchItem>> for Echo {
    async fn generate(
        &self,
        request: Request<BenchRequest>,
    ) -> Result<ResponseStream<BenchItem>, StatorError> {
        let (req, ctx) = request.into_parts();
        if req.usage {
            let item = BenchItem {
                index: 0,
                cpu_us: cpu_micros(),
                text: String::new(),
            };
            return Ok(ResponseStream::new(futures::stream::iter([item]), ctx));
        }
        let items = (0..req.items).map(|index| BenchItem {
            index,
            cpu_us: 0,
            text: "token".to_owned(),
        });
        Ok(ResponseStream::new(futures::stream::iter(items), ctx))
    }
}

/// User + system CPU time of this process, microseconds.
fn cpu_micros() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete rusage into the provided, properly sized buffer.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    // SAFETY: getrusage returned 0, so the struct is initialized.
    let usage = unsafe { usage.assume_init() };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    micros(usage.ru_utime) + micros(usage.ru_stime)
}

fn loopback_config(args: &Args, inline_responses: bool) -> RequestPlaneConfig {
    RequestPlaneConfig {
        rpc_host: Some("127.0.0.1".to_owned()),
        response_host: Some("127.0.0.1".to_owned()),
        nats: NatsConfig::new(args.nats_server.clone()),
        inline_responses,
        ..RequestPlaneConfig::default()
    }
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let config = loopback_config(args, true);
    let engine: Arc<dyn AsyncEngine<Request<BenchRequest>, ResponseStream<BenchItem>>> =
        Arc::new(Echo);
    let handler: Arc<dyn RequestHandler> =
        Arc::new(EngineHandler::new(engine, config.max_message_size));
    // Kept alive until stdin closes.
    let (_tcp, _nats) = match args.request_plane {
        RequestPlaneKind::Tcp => {
            let server = RequestPlaneServer::bind(&config).await?;
            server.register(PATH, handler);
            println!("READY {}/{PATH}", server.address());
            (Some(server), None)
        }
        RequestPlaneKind::Nats => {
            let server = NatsRequestServer::connect(&config).await?;
            server.register(SUBJECT, handler).await?;
            println!("READY {SUBJECT}");
            (None, Some(server))
        }
    };
    std::io::stdout().flush()?;
    // Serve until the parent closes our stdin.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {}
    })
    .await?;
    Ok(())
}

struct Bench {
    client: Arc<RequestPlaneClient>,
    target: RequestTarget,
}

impl Bench {
    async fn call(&self, items: u32) -> anyhow::Result<usize> {
        let req = BenchRequest {
            items,
            usage: false,
        };
        let mut stream = self
            .client
            .generate::<_, BenchItem>(&self.target, Request::new(req))
            .await?;
        let mut n = 0;
        while let Some(item) = stream.next().await {
            item?;
            n += 1;
        }
        Ok(n)
    }

    async fn server_cpu(&self) -> anyhow::Result<u64> {
        let req = BenchRequest {
            items: 0,
            usage: true,
        };
        let stream = self
            .client
            .generate::<_, BenchItem>(&self.target, Request::new(req))
            .await?;
        let items = stream.try_collect_items().await?;
        Ok(items.first().map_or(0, |i| i.cpu_us))
    }

    /// Runs `f`, returning its result with client and server CPU microseconds spent.
    async fn measured<T>(
        &self,
        f: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<(T, u64, u64)> {
        let (c0, s0) = (cpu_micros(), self.server_cpu().await?);
        let out = f.await?;
        let (c1, s1) = (cpu_micros(), self.server_cpu().await?);
        Ok((out, c1 - c0, s1 - s0))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut child: Child = Command::new(exe)
        .args(["--serve", "--threads", &args.threads.to_string()])
        .args(["--nats-server", &args.nats_server])
        .args(["--request-plane", plane_name(args.request_plane)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let transport = line
        .trim()
        .strip_prefix("READY ")
        .ok_or_else(|| anyhow::anyhow!("server did not start: {line:?}"))?
        .to_owned();

    println!("request plane: {}", plane_name(args.request_plane));
    println!();
    println!(
        "| responses | phase | requests | result | client CPU/req | server CPU/req | total CPU/req |"
    );
    println!("|---|---|---|---|---|---|---|");
    for inline in args.responses.modes(args.request_plane) {
        let target = match args.request_plane {
            RequestPlaneKind::Tcp => TcpTarget::parse(&transport, args.codec)?.into(),
            RequestPlaneKind::Nats => NatsTarget {
                subject: transport.clone(),
                codec: args.codec,
            }
            .into(),
        };
        let bench = Arc::new(Bench {
            client: RequestPlaneClient::new(loopback_config(args, inline)).await?,
            target,
        });
        measure(args, &bench, mode_name(inline)).await?;
    }
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}

/// Runs both phases with `bench`'s client and prints their rows.
async fn measure(args: &Args, bench: &Arc<Bench>, mode: &str) -> anyhow::Result<()> {
    for _ in 0..500 {
        bench.call(1).await?;
    }

    let (latencies, lat_client, lat_server) = bench
        .measured(async {
            let mut lat = Vec::with_capacity(args.latency_requests);
            for _ in 0..args.latency_requests {
                let t = Instant::now();
                bench.call(1).await?;
                lat.push(t.elapsed());
            }
            Ok(lat)
        })
        .await?;
    let mut latencies = latencies;
    latencies.sort_unstable();

    let per_task = args.stream_requests.div_ceil(args.concurrency);
    let ((elapsed, items), tp_client, tp_server) = bench
        .measured(async {
            let start = Instant::now();
            let tasks: Vec<_> = (0..args.concurrency)
                .map(|_| {
                    let bench = Arc::clone(bench);
                    let n = args.items;
                    tokio::spawn(async move {
                        let mut items = 0usize;
                        for _ in 0..per_task {
                            items += bench.call(n).await?;
                        }
                        anyhow::Ok(items)
                    })
                })
                .collect();
            let mut items = 0;
            for t in tasks {
                items += t.await??;
            }
            Ok((start.elapsed(), items))
        })
        .await?;

    let requests = per_task * args.concurrency;
    let n_lat = args.latency_requests as f64;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| {mode} | round trip, 1 item, sequential | {} | p50 {:.0} µs, p99 {:.0} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
        args.latency_requests,
        us(percentile(&latencies, 0.50)),
        us(percentile(&latencies, 0.99)),
        lat_client as f64 / n_lat,
        lat_server as f64 / n_lat,
        (lat_client + lat_server) as f64 / n_lat,
    );
    let n_tp = requests as f64;
    println!(
        "| {mode} | {}-item streams, {} concurrent | {} | {:.0} req/s, {:.0} items/s | {:.1} µs | {:.1} µs | {:.1} µs |",
        args.items,
        args.concurrency,
        requests,
        n_tp / elapsed.as_secs_f64(),
        items as f64 / elapsed.as_secs_f64(),
        tp_client as f64 / n_tp,
        tp_server as f64 / n_tp,
        (tp_client + tp_server) as f64 / n_tp,
    );
    Ok(())
}

fn plane_name(kind: RequestPlaneKind) -> &'static str {
    match kind {
        RequestPlaneKind::Tcp => "tcp",
        RequestPlaneKind::Nats => "nats",
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    // Both sides run as spawned tasks on the runtime's workers, as a frontend's request
    // handlers and a worker's engines do (not on the thread that blocks on the runtime).
    runtime.block_on(async move {
        tokio::spawn(async move {
            if args.serve {
                serve(&args).await
            } else {
                run(&args).await
            }
        })
        .await?
    })
}
