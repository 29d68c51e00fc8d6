//! etcd discovery: Dynamo 1.6.1's default backend, for deployments across machines.
//!
//! Every key lives under its bucket (`v1/instances/{ns}/{comp}/{ep}/{id:x}`, `v1/mdc/…`,
//! `v1/event_channels/…`, `v1/event_sources/…`) with the JSON record as value, and is
//! attached to the process's **primary lease** (TTL `ETCD_LEASE_TTL`, default 30 s), whose
//! id is the process's instance id. A background task keeps the lease alive.
//!
//! Liveness and shutdown:
//! - [`Discovery::shutdown`] revokes the lease, so every key of the process vanishes at once
//!   and every watcher sees `Removed`.
//! - Dropping an [`EtcdDiscovery`] without `shutdown` behaves like a crash: keep-alive stops
//!   and etcd deletes the keys when the TTL runs out.
//! - If the lease is lost (etcd answers that it expired or was revoked, or no renewal
//!   succeeded within the TTL, e.g. etcd was down that long or came back without its data),
//!   the token from [`EtcdDiscovery::lease_lost`] is cancelled and further registrations
//!   fail with [`DiscoveryError::LeaseLost`]. The runtime must then shut the process down,
//!   as Dynamo does: its instance id is gone and cannot be re-registered under a new one.
//! - etcd restarting with its data within the TTL is invisible: keep-alive reconnects, the
//!   keys are still there, and watches re-read their prefix and send a `Resync`.
//!
//! Watches follow the [`Discovery`] contract: initial `Added`s and a `Resync`, then changes
//! from the revision of the initial read; after a break they re-read the prefix, send the
//! changes they missed and a fresh `Resync`.
//!
//! ```no_run
//! use stator_runtime::discovery::{Discovery, DiscoveryError, EtcdConfig, EtcdDiscovery};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), DiscoveryError> {
//! let etcd = EtcdDiscovery::connect(EtcdConfig::from_env()).await?;
//! let lease_lost = etcd.lease_lost();
//! tokio::select! {
//!     () = lease_lost.cancelled() => eprintln!("etcd lease lost: exiting"),
//!     _ = tokio::signal::ctrl_c() => etcd.shutdown().await,
//! }
//! # Ok(())
//! # }
//! ```

mod config;
mod lease;
mod watch;

pub use config::{
    DEFAULT_ENDPOINT, DEFAULT_LEASE_TTL, DEFAULT_REQUEST_TIMEOUT, DEFAULT_STARTUP_TIMEOUT,
    ENV_ETCD_AUTH_CA, ENV_ETCD_AUTH_CLIENT_CERT, ENV_ETCD_AUTH_CLIENT_KEY, ENV_ETCD_AUTH_PASSWORD,
    ENV_ETCD_AUTH_USERNAME, ENV_ETCD_ENDPOINTS, ENV_ETCD_LEASE_TTL, ENV_ETCD_STARTUP_TIMEOUT,
    EtcdAuth, EtcdConfig, EtcdTls,
};

use async_trait::async_trait;
use etcd_client::{Client, PutOptions};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{
    Discovery, DiscoveryError, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord, DiscoveryStream,
    RecordId,
};
use crate::names::InstanceId;
use lease::bounded;
use watch::{PrefixWatch, full_key, get_snapshot, query_prefix};

/// A [`Discovery`] backed by an etcd cluster; one per process.
pub struct EtcdDiscovery {
    client: Client,
    lease: i64,
    config: EtcdConfig,
    /// Cancelled by shutdown or drop: stops keep-alive and ends every watch.
    closed: CancellationToken,
    /// Cancelled when the primary lease is lost.
    lost: CancellationToken,
}

impl EtcdDiscovery {
    /// Connects, grants the primary lease (retrying with backoff for up to
    /// `config.startup_timeout`) and starts keeping it alive.
    ///
    /// Must be called within a tokio runtime.
    pub async fn connect(config: EtcdConfig) -> Result<Self, DiscoveryError> {
        let (client, lease) = lease::start(&config).await?;
        let closed = CancellationToken::new();
        let lost = CancellationToken::new();
        tokio::spawn(lease::keep_alive(
            client.clone(),
            lease,
            config.clone(),
            closed.clone(),
            lost.clone(),
        ));
        tracing::info!(lease = format_args!("{lease:x}"), endpoints = ?config.endpoints, "etcd discovery: connected");
        Ok(Self {
            client,
            lease,
            config,
            closed,
            lost,
        })
    }

    /// Connects with settings from the `ETCD_*` environment.
    pub async fn from_env() -> Result<Self, DiscoveryError> {
        Self::connect(EtcdConfig::from_env()).await
    }

    /// The primary lease id (equal to [`Discovery::instance_id`]).
    pub fn lease_id(&self) -> i64 {
        self.lease
    }

    /// The settings this backend runs with.
    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    /// Cancelled when the primary lease is lost; the process should then shut down.
    ///
    /// Not cancelled by a clean [`Discovery::shutdown`].
    pub fn lease_lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    fn check_open(&self) -> Result<(), DiscoveryError> {
        if self.closed.is_cancelled() {
            Err(DiscoveryError::Closed)
        } else if self.lost.is_cancelled() {
            Err(DiscoveryError::LeaseLost)
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Discovery for EtcdDiscovery {
    fn instance_id(&self) -> InstanceId {
        InstanceId(self.lease.cast_unsigned())
    }

    async fn register(&self, record: DiscoveryRecord) -> Result<(), DiscoveryError> {
        self.check_open()?;
        let key = full_key(&record.id());
        let value = serde_json::to_vec(&record).map_err(|source| DiscoveryError::Json {
            key: key.clone(),
            source,
        })?;
        let mut kv = self.client.kv_client();
        let options = PutOptions::new().with_lease(self.lease);
        bounded(
            self.config.request_timeout,
            "put",
            kv.put(key, value, Some(options)),
        )
        .await?;
        Ok(())
    }

    async fn unregister(&self, id: &RecordId) -> Result<(), DiscoveryError> {
        self.check_open()?;
        let mut kv = self.client.kv_client();
        bounded(
            self.config.request_timeout,
            "delete",
            kv.delete(full_key(id), None),
        )
        .await?;
        Ok(())
    }

    async fn list(&self, query: &DiscoveryQuery) -> Result<Vec<DiscoveryRecord>, DiscoveryError> {
        self.check_open()?;
        let (snapshot, _) = get_snapshot(
            &self.client,
            query,
            &query_prefix(query),
            self.config.request_timeout,
        )
        .await?;
        Ok(snapshot.into_values().collect())
    }

    async fn watch(&self, query: &DiscoveryQuery) -> Result<DiscoveryStream, DiscoveryError> {
        self.check_open()?;
        let prefix = query_prefix(query);
        let (snapshot, revision) =
            get_snapshot(&self.client, query, &prefix, self.config.request_timeout).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        for record in snapshot.values() {
            // The receiver is alive: it is still in this scope.
            let _ = tx.send(DiscoveryEvent::Added(record.clone()));
        }
        let _ = tx.send(DiscoveryEvent::Resync(snapshot.values().cloned().collect()));
        let watch = PrefixWatch {
            client: self.client.clone(),
            query: query.clone(),
            prefix,
            request_timeout: self.config.request_timeout,
            tx,
            cancel: self.closed.clone(),
        };
        tokio::spawn(watch.run(snapshot, revision));
        Ok(Box::pin(UnboundedReceiverStream::new(rx)))
    }

    async fn shutdown(&self) {
        if self.closed.is_cancelled() {
            return;
        }
        self.closed.cancel();
        if self.lost.is_cancelled() {
            return;
        }
        let mut lease = self.client.lease_client();
        match bounded(
            self.config.request_timeout,
            "lease revoke",
            lease.revoke(self.lease),
        )
        .await
        {
            Ok(_) => tracing::info!(
                lease = format_args!("{:x}", self.lease),
                "etcd discovery: lease revoked"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "etcd discovery: cannot revoke lease; keys expire with its TTL");
            }
        }
    }
}

impl Drop for EtcdDiscovery {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::watch::query_prefix;
    use crate::discovery::{DiscoveryQuery, EventQuery, EventScope};
    use crate::names::EndpointId;

    #[test]
    fn prefixes_follow_the_bucket_layout() {
        let ep = EndpointId::new("dynamo", "backend", "generate").expect("valid names");
        assert_eq!(
            query_prefix(&DiscoveryQuery::Endpoint(ep.clone())),
            "v1/instances/dynamo/backend/generate/"
        );
        assert_eq!(query_prefix(&DiscoveryQuery::AllModels), "v1/mdc/");
        let scope = EventScope::Endpoint { endpoint: ep };
        assert_eq!(
            query_prefix(&DiscoveryQuery::EventChannels(EventQuery::scoped(
                scope,
                "kv-events"
            ))),
            "v1/event_channels/namespace/dynamo/component/backend/endpoint/generate/topic/kv-events/"
        );
    }
}
