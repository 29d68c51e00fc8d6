//! [`WorkerError`]: why a worker could not start or publish.

use stator_runtime::StatorError;

/// Errors of starting, publishing and stopping workers.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A setting is unusable (unsupported backend, bad endpoint, invalid mocker config).
    #[error("invalid worker configuration: {0}")]
    Config(String),
    /// The model directory could not be turned into a model deployment card.
    #[error("cannot build the model card: {0}")]
    Card(#[from] stator_llm::Error),
    /// The runtime failed (discovery, request plane).
    #[error(transparent)]
    Runtime(#[from] StatorError),
    /// Discovery refused a record.
    #[error("discovery: {0}")]
    Discovery(#[from] stator_runtime::discovery::DiscoveryError),
    /// The event plane failed.
    #[error("event plane: {0}")]
    EventPlane(#[from] stator_runtime::event_plane::EventPlaneError),
    /// The discovery registration (etcd lease) was lost for good; the process must exit.
    #[error("discovery registration lost (etcd lease expired or revoked)")]
    RegistrationLost,
    /// A thread, socket or file could not be set up.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
