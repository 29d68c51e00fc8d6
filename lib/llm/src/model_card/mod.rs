//! The model deployment card (MDC): building it from a model directory, its Dynamo JSON shape,
//! its checksum, and loading its files back with checksum verification, from local paths or
//! from the worker's status server (`/v1/metadata/...`).

mod cache;
mod card;
mod checked_file;
mod fetch;
mod identity;
mod kinds;
mod load;
mod runtime_config;

pub use cache::CardFileCache;
pub use card::{DEFAULT_KV_CACHE_BLOCK_SIZE, ModelDeploymentCard, slugify};
pub use checked_file::{CheckedFile, Checksum};
pub use kinds::{
    GenerationConfigKind, ModelInfoType, ModelInput, ModelType, PromptFormatterArtifact,
    TokenizerKind, UnknownModelType, WorkerType,
};
pub use runtime_config::{DisaggregatedEndpoint, ModelRuntimeConfig};
