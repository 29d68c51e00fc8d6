//! Prefix watches: get the current set, then watch from the next revision; after any
//! break (etcd restart, compaction, network) get again, send what changed and a `Resync`.

use std::collections::BTreeMap;
use std::time::Duration;

use etcd_client::{Client, EventType, GetOptions, KeyValue, WatchOptions};
use tokio::sync::mpsc;
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use super::lease::{MAX_BACKOFF, bounded};
use crate::discovery::{
    Bucket, DiscoveryError, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord, RecordId,
};

/// Matching records by full etcd key.
pub(super) type Snapshot = BTreeMap<String, DiscoveryRecord>;

/// One watched prefix and where its events go.
pub(super) struct PrefixWatch {
    pub(super) client: Client,
    pub(super) query: DiscoveryQuery,
    pub(super) prefix: String,
    pub(super) request_timeout: Duration,
    pub(super) tx: mpsc::UnboundedSender<DiscoveryEvent>,
    pub(super) cancel: CancellationToken,
}

/// Why following a watch stream stopped.
enum Stop {
    /// The consumer went away or the backend shut down.
    Closed,
    /// The stream broke; state must be re-read.
    Gap,
}

/// Decodes the record stored under `kv` if it matches `query`.
fn decode(kv: &KeyValue, query: &DiscoveryQuery) -> Option<(String, DiscoveryRecord)> {
    let key = String::from_utf8_lossy(kv.key()).into_owned();
    match serde_json::from_slice::<DiscoveryRecord>(kv.value()) {
        Ok(record) => query.matches(&record).then_some((key, record)),
        Err(e) => {
            tracing::warn!(%key, error = %e, "etcd discovery: skipping undecodable record");
            None
        }
    }
}

/// Reads every record under `prefix` matching `query`, and the store revision.
pub(super) async fn get_snapshot(
    client: &Client,
    query: &DiscoveryQuery,
    prefix: &str,
    limit: Duration,
) -> Result<(Snapshot, i64), DiscoveryError> {
    let mut kv = client.kv_client();
    let response = bounded(
        limit,
        "get",
        kv.get(prefix, Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let revision = response
        .header()
        .map_or(0, etcd_client::ResponseHeader::revision);
    let snapshot = response
        .kvs()
        .iter()
        .filter_map(|kv| decode(kv, query))
        .collect();
    Ok((snapshot, revision))
}

impl PrefixWatch {
    fn send(&self, event: DiscoveryEvent) -> Result<(), Stop> {
        self.tx.send(event).map_err(|_| Stop::Closed)
    }

    /// Follows the watch until it ends; `state` and `revision` track what was delivered.
    pub(super) async fn run(self, mut state: Snapshot, mut revision: i64) {
        loop {
            if let Stop::Closed = self.follow(&mut state, &mut revision).await {
                return;
            }
            match self.resync(&mut state).await {
                Some(next) => revision = next,
                None => return,
            }
        }
    }

    /// Streams changes after `revision` until the stream breaks or the watch is closed.
    async fn follow(&self, state: &mut Snapshot, revision: &mut i64) -> Stop {
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(*revision + 1);
        let mut watcher = self.client.watch_client();
        let opened = tokio::select! {
            () = self.cancel.cancelled() => return Stop::Closed,
            () = self.tx.closed() => return Stop::Closed,
            r = bounded(self.request_timeout, "watch", watcher.watch(self.prefix.as_str(), Some(options))) => r,
        };
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(error = %e, prefix = %self.prefix, "etcd discovery: cannot open watch");
                return Stop::Gap;
            }
        };
        loop {
            let message = tokio::select! {
                () = self.cancel.cancelled() => return Stop::Closed,
                () = self.tx.closed() => return Stop::Closed,
                m = stream.message() => m,
            };
            let response = match message {
                Ok(Some(response)) => response,
                Ok(None) => return Stop::Gap,
                Err(e) => {
                    tracing::warn!(error = %e, prefix = %self.prefix, "etcd discovery: watch broke");
                    return Stop::Gap;
                }
            };
            if response.canceled() {
                tracing::warn!(
                    reason = response.cancel_reason(),
                    compacted = response.compact_revision(),
                    "etcd discovery: watch cancelled by the server"
                );
                return Stop::Gap;
            }
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                *revision = (*revision).max(kv.mod_revision());
                let key = String::from_utf8_lossy(kv.key()).into_owned();
                let change = match event.event_type() {
                    EventType::Put => match decode(kv, &self.query) {
                        Some((key, record)) => {
                            state.insert(key, record.clone());
                            Some(DiscoveryEvent::Added(record))
                        }
                        None => state.remove(&key).map(|r| DiscoveryEvent::Removed(r.id())),
                    },
                    EventType::Delete => {
                        state.remove(&key).map(|r| DiscoveryEvent::Removed(r.id()))
                    }
                };
                if let Some(change) = change
                    && let Err(stop) = self.send(change)
                {
                    return stop;
                }
            }
        }
    }

    /// Re-reads the prefix (retrying with backoff), sends what changed and a `Resync`;
    /// `None` when the watch closed meanwhile.
    async fn resync(&self, state: &mut Snapshot) -> Option<i64> {
        let mut backoff = Duration::from_millis(100);
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return None,
                () = self.tx.closed() => return None,
                () = sleep(backoff) => {}
            }
            match get_snapshot(
                &self.client,
                &self.query,
                &self.prefix,
                self.request_timeout,
            )
            .await
            {
                Ok((current, revision)) => {
                    let sent = self.send_diff(state, &current);
                    *state = current;
                    return sent.ok().map(|()| revision);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "etcd discovery: resync failed, retrying");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// The changes from `old` to `new`, then `Resync(new)`.
    fn send_diff(&self, old: &Snapshot, new: &Snapshot) -> Result<(), Stop> {
        for (key, record) in new {
            if old.get(key) != Some(record) {
                self.send(DiscoveryEvent::Added(record.clone()))?;
            }
        }
        for (key, record) in old {
            if !new.contains_key(key) {
                self.send(DiscoveryEvent::Removed(record.id()))?;
            }
        }
        self.send(DiscoveryEvent::Resync(new.values().cloned().collect()))
    }
}

/// The full etcd key of a record id.
pub(super) fn full_key(id: &RecordId) -> String {
    format!("{}/{}", id.bucket().as_str(), id.key())
}

/// The etcd prefix every key matching `query` starts with.
pub(super) fn query_prefix(query: &DiscoveryQuery) -> String {
    let bucket: Bucket = query.bucket();
    format!("{}/{}", bucket.as_str(), query.key_prefix())
}
