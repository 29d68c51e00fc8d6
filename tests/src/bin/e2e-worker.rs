//! The worker as a separate process for the end-to-end tests (the `worker` binary's code,
//! built with this package so the tests can always find it).

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use worker::WorkerArgs;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("DYN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match worker::serve(&WorkerArgs::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker failed: {e}");
            ExitCode::FAILURE
        }
    }
}
