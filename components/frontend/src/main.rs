//! `frontend`: serves the OpenAI API for the models workers publish, until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use frontend::{Frontend, FrontendArgs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("DYN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = FrontendArgs::parse();
    match serve(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &FrontendArgs) -> anyhow::Result<()> {
    let frontend = Frontend::start(args).await?;
    worker::shutdown_signal().await?;
    tracing::info!("shutting down");
    frontend.shutdown().await
}
