//! Discovery: who serves what, which models exist, where events are published.
//!
//! A [`Discovery`] backend stores [`DiscoveryRecord`]s (Dynamo 1.6.1 JSON) under bucketed keys
//! and tells watchers about changes. Every process has one discovery identity,
//! [`Discovery::instance_id`], which is the instance id of every endpoint and model it
//! registers (the etcd lease id, or a random u64 for the `mem` and `file` backends).
//! Backends: [`MemDiscovery`] (one process), [`FileDiscovery`] (one host or a shared file
//! system), [`EtcdDiscovery`] (a cluster).
//! Liveness belongs to the backend (lease, file mtime TTL, pod readiness), never to callers.
//!
//! Watch contract: a [`Discovery::watch`] stream yields one [`DiscoveryEvent::Added`] per
//! record that matches when the watch starts, then one [`DiscoveryEvent::Resync`] with the
//! full matching set, then changes as they happen (`Added` for new or updated records,
//! `Removed` for departed ones). After a gap the backend may send a fresh `Resync`, which
//! replaces the consumer's state.
//!
//! ```
//! use futures::StreamExt;
//! use stator_runtime::discovery::{
//!     Discovery, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord, Instance, MemStore,
//!     RequestPlaneCodec, TransportType,
//! };
//! use stator_runtime::names::EndpointId;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = MemStore::new();
//! let (worker, frontend) = (store.client(), store.client());
//! let endpoint = EndpointId::parse("dyn://dynamo.backend.generate").unwrap();
//! let query = DiscoveryQuery::Endpoint(endpoint.clone());
//! let mut watch = frontend.watch(&query).await.unwrap();
//! assert_eq!(watch.next().await, Some(DiscoveryEvent::Resync(vec![])));
//!
//! let id = worker.instance_id();
//! let record = DiscoveryRecord::Endpoint(Instance {
//!     component: endpoint.component.clone(),
//!     endpoint: endpoint.name.clone(),
//!     namespace: endpoint.namespace.clone(),
//!     instance_id: id,
//!     transport: TransportType::Tcp(format!("10.0.0.7:4001/{}", endpoint.instance_path(id))),
//!     device_type: None,
//!     request_plane_codec: Some(RequestPlaneCodec::Msgpack),
//! });
//! worker.register(record.clone()).await.unwrap();
//! assert_eq!(watch.next().await, Some(DiscoveryEvent::Added(record.clone())));
//! worker.shutdown().await;
//! assert_eq!(watch.next().await, Some(DiscoveryEvent::Removed(record.id())));
//! # }
//! ```

pub mod etcd;
pub mod file;
mod key;
pub mod mem;
mod query;
mod records;

pub use etcd::{EtcdConfig, EtcdDiscovery, EtcdTls};
pub use file::{FileDiscovery, FileDiscoveryConfig};
pub use mem::{MemDiscovery, MemStore};

pub use key::{Bucket, RecordId, decode_event_segment, encode_event_segment, scope_path};
pub use query::{DiscoveryQuery, EventQuery};
pub use records::{
    DeviceType, DiscoveryRecord, EventChannelRecord, EventScope, EventSourceRecord, EventTransport,
    Instance, ModelRecord, RequestPlaneCodec, TransportType,
};

use std::path::PathBuf;
use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

use crate::names::InstanceId;

/// A change seen by a discovery watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A record appeared or changed in place.
    Added(DiscoveryRecord),
    /// A record disappeared (unregistered, expired or its owner shut down).
    Removed(RecordId),
    /// The complete current set of matching records; replaces the consumer's state.
    Resync(Vec<DiscoveryRecord>),
}

/// The stream a watch returns; it ends when the backend shuts down.
pub type DiscoveryStream = Pin<Box<dyn Stream<Item = DiscoveryEvent> + Send>>;

/// Errors of discovery backends.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Reading or writing the store failed.
    #[error("discovery I/O error at {path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be encoded or decoded.
    #[error("discovery record at {key} is not valid JSON: {source}")]
    Json {
        /// The record's key.
        key: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A key does not follow the bucket's layout.
    #[error("invalid discovery key {key:?} in bucket {bucket}")]
    InvalidKey {
        /// The bucket.
        bucket: &'static str,
        /// The key.
        key: String,
    },
    /// The backend was shut down.
    #[error("discovery backend is shut down")]
    Closed,
    /// The backend store (etcd) failed or did not answer in time.
    #[error("discovery backend error: {0}")]
    Backend(String),
    /// The process's primary lease expired or was revoked: its records are gone and it
    /// must shut down.
    #[error("discovery lease lost; the process must shut down")]
    LeaseLost,
}

/// A discovery backend (mem, file, etcd; Kubernetes fits the same shape).
///
/// Object safe: the runtime holds an `Arc<dyn Discovery>`.
#[async_trait]
pub trait Discovery: Send + Sync {
    /// This process's discovery identity.
    fn instance_id(&self) -> InstanceId;

    /// Stores `record` (replacing one with the same key) and keeps it alive until it is
    /// unregistered or this backend shuts down.
    async fn register(&self, record: DiscoveryRecord) -> Result<(), DiscoveryError>;

    /// Removes a record this process registered; removing an absent record is not an error.
    async fn unregister(&self, id: &RecordId) -> Result<(), DiscoveryError>;

    /// The records currently matching `query`.
    async fn list(&self, query: &DiscoveryQuery) -> Result<Vec<DiscoveryRecord>, DiscoveryError>;

    /// Watches `query`: initial `Added`s, one `Resync`, then changes.
    async fn watch(&self, query: &DiscoveryQuery) -> Result<DiscoveryStream, DiscoveryError>;

    /// Removes every record this process registered, stops keep-alives and ends all watches.
    async fn shutdown(&self);
}
