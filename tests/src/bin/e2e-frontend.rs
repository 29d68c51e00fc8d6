//! The frontend as a separate process for the end-to-end tests (same as the `frontend`
//! binary; built with this package so the tests can always find it).

use std::process::ExitCode;

use clap::Parser;
use frontend::{Frontend, FrontendArgs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("DYN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = FrontendArgs::parse();
    let run = async {
        let frontend = Frontend::start(&args).await?;
        worker::shutdown_signal().await?;
        frontend.shutdown().await
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("frontend failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
