//! The frontend's served models: watches the discovery `v1/mdc` bucket, keeps the
//! [`ModelRegistry`](crate::model_watcher::ModelRegistry) of worker sets current, builds a
//! [`ModelPipeline`](crate::pipeline::ModelPipeline) for each set (card files loaded by local
//! path or fetched from the worker's metadata URLs into a verified cache) and retires it when
//! the set's last worker goes.

mod build;
mod kv;
mod manager;

pub use build::{RouterChoice, SelectorFactory};
pub use kv::KvSelectorFactory;
pub use manager::{LookupError, ManagerConfig, ModelFacts, ModelManager};
