//! The frontend as a separate process for the end-to-end tests (the `frontend` binary's
//! code, built with this package so the tests can always find it).

use std::process::ExitCode;

use clap::Parser;
use frontend::FrontendArgs;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_env("DYN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match frontend::serve(&FrontendArgs::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("frontend failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
