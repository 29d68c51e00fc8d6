//! `worker`: serves an engine on a Dynamo-compatible endpoint until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use worker::{Plumbing, WorkerArgs, run_workers, shutdown_signal};

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("DYN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = WorkerArgs::parse();
    match serve(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &WorkerArgs) -> anyhow::Result<()> {
    let plumbing = Plumbing::for_args(args)?;
    let group = run_workers(args, &plumbing).await?;
    shutdown_signal().await?;
    tracing::info!("shutting down");
    if !group.shutdown().await {
        tracing::warn!("some requests did not finish before the graceful-shutdown timeout");
    }
    Ok(())
}
