//! `loadgen-mock`: the crate's mock streaming server as a process, to measure the load
//! generator's own ceiling (run `loadgen --url http://127.0.0.1:PORT` against it).

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use stator_loadgen::{MockOptions, MockServer};

/// Serves an OpenAI-like SSE stream (`max_tokens` chunks, usage, `[DONE]`) on loopback.
#[derive(Debug, Parser)]
#[command(name = "loadgen-mock", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "LOADGEN_MOCK_ADDR", default_value = "127.0.0.1:18000")]
    addr: SocketAddr,
    /// Split every SSE event into HTTP chunks of at most this many bytes.
    #[arg(long, env = "LOADGEN_MOCK_PIECE_SIZE")]
    piece_size: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = MockServer::start(
        args.addr,
        MockOptions {
            piece_size: args.piece_size,
        },
    )
    .await
    .with_context(|| format!("binding {}", args.addr))?;
    eprintln!("loadgen-mock: serving on {}", server.base_url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    Ok(())
}
