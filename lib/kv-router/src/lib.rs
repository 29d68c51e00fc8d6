//! KV-cache-aware routing for Stator: KV events, indexers, worker selection and load tracking.

pub mod approx;
pub mod config;
pub mod indexer;
pub mod protocols;
pub mod queue;
pub mod selector;
pub mod sequences;
