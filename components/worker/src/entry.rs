//! The process entry point shared by the `worker` binary and the end-to-end test binary:
//! logging to stderr (`DYN_LOG`), a multi-threaded tokio runtime, [`serve`](crate::serve).

use std::process::ExitCode;

use clap::Parser;
use stator_config::RuntimeThreads;
use tracing_subscriber::EnvFilter;

use crate::WorkerArgs;

/// Sends `tracing` output to stderr, filtered by `DYN_LOG` (default `info`).
pub fn init_logging() {
    let filter = EnvFilter::try_from_env("DYN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Runs `future` on a fresh multi-threaded tokio runtime of `threads` and maps its outcome
/// to an exit code, logging the error.
pub fn block_on_main<E: std::fmt::Display>(
    threads: RuntimeThreads,
    future: impl Future<Output = Result<(), E>>,
) -> ExitCode {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = threads.worker_threads {
        builder.worker_threads(workers.get());
    }
    let runtime = match builder
        .max_blocking_threads(threads.max_blocking_threads.get())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(future) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The `worker` binary: parse the command line, serve until SIGINT/SIGTERM or lease loss.
pub fn main() -> ExitCode {
    init_logging();
    let args = WorkerArgs::parse();
    block_on_main(args.runtime.threads(), crate::serve(&args))
}
