//! The Stator frontend: an OpenAI-compatible HTTP server that discovers workers through
//! their model deployment cards, preprocesses requests and routes them over the request
//! plane. With `--mocker-workers N` (or `--echo-workers N`) it also runs workers in its own
//! process on mem discovery, so one command serves a model.
//!
//! ```no_run
//! use clap::Parser;
//! use frontend::{Frontend, FrontendArgs};
//!
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! let args = FrontendArgs::parse_from(["frontend", "--echo-workers", "1", "--http-port", "0"]);
//! let frontend = Frontend::start(&args).await?;
//! println!("serving on http://{}", frontend.local_addr());
//! frontend.shutdown().await
//! # }
//! ```

mod allocator;
pub mod args;
mod run;

pub use args::{FrontendArgs, KvRouterArgs, RouterModeArg};
pub use run::{Frontend, main, serve};
