//! Echo worker: serves `dyn://<ns>.<comp>.<ep>` and streams every request's JSON payload back
//! as N items `{"echo": <payload>, "index": i}`, so any compatible client (a Stator or Dynamo
//! frontend/runtime) can call it.
//!
//! ```text
//! DYN_FILE_KV=/tmp/kv cargo run -p stator-runtime --example echo_worker -- \
//!     --endpoint dyn://demo.echo.generate --discovery-backend file --items 3
//! ```
//!
//! Prints `READY <instance id hex> <transport>` once registered and `END <request id>
//! <done|stopped|killed>` whenever a request finishes (tests read these lines). SIGINT or
//! SIGTERM shut it down gracefully: unregister first, then drain.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clap::Parser;
use serde_json::{Value, json};
use stator_runtime::discovery::TransportType;
use stator_runtime::{
    AsyncEngine, Context, DiscoveryBackend, DistributedRuntime, Endpoint, EndpointId, Request,
    ResponseStream, RuntimeConfig, StatorError,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[derive(Debug, Parser)]
#[command(about = "Serve an endpoint that echoes each JSON request back as N stream items")]
struct Args {
    /// Endpoint to serve, `dyn://namespace.component.endpoint`.
    #[arg(long, default_value = "dyn://dynamo.echo.generate")]
    endpoint: String,
    /// Discovery backend: `file` (shared through DYN_FILE_KV) or `mem` (this process only).
    #[arg(long, env = "DYN_DISCOVERY_BACKEND", default_value = "file")]
    discovery_backend: DiscoveryBackend,
    /// Items streamed per request.
    #[arg(long, default_value_t = 3)]
    items: u64,
    /// Pause before each item, in milliseconds.
    #[arg(long, default_value_t = 0)]
    item_delay_ms: u64,
    /// File-discovery record TTL in seconds (Dynamo's default is 10).
    #[arg(long)]
    file_kv_ttl_secs: Option<f64>,
    /// Wrap each item as Dynamo's `Annotated` (`{"data": item}`), the shape Dynamo's Python
    /// runtime client decodes.
    #[arg(long)]
    annotated: bool,
}

/// The echo engine: one producer task per request, obeying stop and kill.
struct Echo {
    items: u64,
    delay: Duration,
    annotated: bool,
}

#[async_trait]
impl AsyncEngine<Request<Value>, ResponseStream<Value>> for Echo {
    async fn generate(
        &self,
        request: Request<Value>,
    ) -> Result<ResponseStream<Value>, StatorError> {
        let (payload, context) = request.into_parts();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(produce(
            payload,
            (self.items, self.delay, self.annotated),
            context.clone(),
            tx,
        ));
        Ok(ResponseStream::new(ReceiverStream::new(rx), context))
    }
}

async fn produce(
    payload: Value,
    (items, delay, annotated): (u64, Duration, bool),
    context: Context,
    tx: mpsc::Sender<Value>,
) {
    for index in 0..items {
        let item = json!({"echo": payload, "index": index});
        let item = if annotated {
            json!({ "data": item })
        } else {
            item
        };
        if !delay.is_zero() {
            tokio::select! {
                () = context.stopped() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        if context.is_stopped() || tx.send(item).await.is_err() {
            break;
        }
    }
    // A dropped receiver means the stream was abandoned; give the kill time to land.
    if !context.is_stopped() && tx.is_closed() {
        let _ = tokio::time::timeout(Duration::from_secs(1), context.killed()).await;
    }
    let how = if context.is_killed() {
        "killed"
    } else if context.is_stopped() {
        "stopped"
    } else {
        "done"
    };
    say(&format!("END {} {how}", context.id()));
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn shutdown_signal() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DYN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = RuntimeConfig::from_env()?;
    config.discovery_backend = args.discovery_backend;
    if let Some(ttl) = args.file_kv_ttl_secs {
        config.file_discovery.ttl = Duration::from_secs_f64(ttl);
    }
    let drt = DistributedRuntime::new(config).await?;
    let endpoint = Endpoint::from_id(&drt, EndpointId::parse(&args.endpoint)?)?;
    let engine = Arc::new(Echo {
        items: args.items,
        delay: Duration::from_millis(args.item_delay_ms),
        annotated: args.annotated,
    });
    let served = endpoint.serve(engine).await?;
    let transport = match &served.instance().transport {
        TransportType::Tcp(t) | TransportType::NatsTcp(t) => t.clone(),
    };
    say(&format!("READY {:x} {transport}", drt.instance_id()));
    shutdown_signal().await;
    drt.shutdown().await;
    Ok(())
}
