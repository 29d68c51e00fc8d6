//! Discovery propagation benchmark: time from calling `register` (or `unregister`) in one
//! client to the matching `Added` (or `Removed`) arriving at a watcher in another, for the
//! file backend (at two poll intervals) and the etcd backend. Prints a markdown table.
//!
//! ```text
//! cargo run --release -p stator-runtime --example discovery_propagation -- --samples 200
//! ```
//!
//! etcd: uses `--etcd-endpoint` if given, else starts a throw-away `etcd` on loopback.

#[path = "../tests/support/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use stator_runtime::discovery::{
    Discovery, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord, DiscoveryStream, EtcdConfig,
    EtcdDiscovery, FileDiscovery, FileDiscoveryConfig, Instance, RequestPlaneCodec, TransportType,
};
use stator_runtime::names::EndpointId;

#[derive(Debug, Parser)]
#[command(about = "Measure discovery propagation (register → visible in a watcher)")]
struct Args {
    /// Registrations (and removals) timed per backend.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Longest random pause between changes, so file-backend samples fall at every phase
    /// of its poll (keep it above the poll interval).
    #[arg(long, default_value_t = 250)]
    max_gap_ms: u64,
    /// Skip the file backend (measure etcd only).
    #[arg(long)]
    etcd_only: bool,
    /// Use this etcd instead of starting one.
    #[arg(long)]
    etcd_endpoint: Option<String>,
}

fn record(d: &dyn Discovery, i: usize) -> DiscoveryRecord {
    let ep = EndpointId::new("bench", "backend", format!("ep-{i}")).expect("valid names");
    let id = d.instance_id();
    DiscoveryRecord::Endpoint(Instance {
        component: ep.component.clone(),
        endpoint: ep.name.clone(),
        namespace: ep.namespace.clone(),
        instance_id: id,
        transport: TransportType::Tcp(format!("127.0.0.1:1/{}", ep.instance_path(id))),
        device_type: None,
        request_plane_codec: Some(RequestPlaneCodec::Msgpack),
    })
}

async fn wait_for(watch: &mut DiscoveryStream, want: &DiscoveryEvent) -> anyhow::Result<()> {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), watch.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("watch ended"))?;
        if &event == want {
            return Ok(());
        }
    }
}

/// Register → Added and unregister → Removed latencies.
async fn measure(
    writer: &dyn Discovery,
    reader: &dyn Discovery,
    args: &Args,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let query = DiscoveryQuery::ComponentEndpoints {
        namespace: "bench".into(),
        component: "backend".into(),
    };
    let mut watch = reader.watch(&query).await?;
    wait_for(&mut watch, &DiscoveryEvent::Resync(vec![])).await?;
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for i in 0..args.samples {
        let rec = record(writer, i);
        let start = Instant::now();
        writer.register(rec.clone()).await?;
        wait_for(&mut watch, &DiscoveryEvent::Added(rec.clone())).await?;
        added.push(start.elapsed());
        pause(args).await;
        let start = Instant::now();
        writer.unregister(&rec.id()).await?;
        wait_for(&mut watch, &DiscoveryEvent::Removed(rec.id())).await?;
        removed.push(start.elapsed());
        pause(args).await;
    }
    Ok((added, removed))
}

/// A uniformly random pause in `[0, max_gap_ms]`.
async fn pause(args: &Args) {
    let ms = rand::random_range(0..=args.max_gap_ms);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn row(backend: &str, what: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    println!(
        "| {backend} | {what} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
        samples.len(),
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99),
        percentile(&samples, 1.0),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::stderr)
        .init();
    println!("| backend | change | samples | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");

    let polls: &[u64] = if args.etcd_only { &[] } else { &[200, 50] };
    for &poll_ms in polls {
        let dir = tempfile::tempdir()?;
        let mut config = FileDiscoveryConfig::new(dir.path());
        config.poll_interval = Duration::from_millis(poll_ms);
        let writer = FileDiscovery::open(config.clone()).await?;
        let reader = FileDiscovery::open(config).await?;
        let (added, removed) = measure(&writer, &reader, &args).await?;
        let name = format!("file (poll {poll_ms} ms)");
        row(&name, "register → Added", added);
        row(&name, "unregister → Removed", removed);
        writer.shutdown().await;
        reader.shutdown().await;
    }

    let server = match &args.etcd_endpoint {
        Some(_) => None,
        None => Some(
            servers::EtcdServer::start()
                .ok_or_else(|| anyhow::anyhow!("etcd is not installed; pass --etcd-endpoint"))?,
        ),
    };
    let endpoint = args
        .etcd_endpoint
        .clone()
        .or_else(|| server.as_ref().map(servers::EtcdServer::endpoint))
        .ok_or_else(|| anyhow::anyhow!("no etcd endpoint"))?;
    let writer: Arc<dyn Discovery> =
        Arc::new(EtcdDiscovery::connect(EtcdConfig::new([endpoint.clone()])).await?);
    let reader: Arc<dyn Discovery> =
        Arc::new(EtcdDiscovery::connect(EtcdConfig::new([endpoint])).await?);
    let (added, removed) = measure(&*writer, &*reader, &args).await?;
    row("etcd", "register → Added", added);
    row("etcd", "unregister → Removed", removed);
    writer.shutdown().await;
    reader.shutdown().await;
    Ok(())
}
