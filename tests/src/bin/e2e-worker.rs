//! The worker as a separate process for the end-to-end tests (same as the `worker` binary;
//! built with this package so the tests can always find it).

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use worker::{Plumbing, WorkerArgs, run_workers, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("DYN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = WorkerArgs::parse();
    let run = async {
        let plumbing = Plumbing::for_args(&args)?;
        let group = run_workers(&args, &plumbing).await?;
        shutdown_signal().await?;
        group.shutdown().await;
        Ok::<(), anyhow::Error>(())
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
