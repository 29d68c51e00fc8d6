//! The live instance set of one endpoint, kept current from a discovery watch.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::discovery::{
    Discovery, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord, Instance, RecordId,
};
use crate::error::StatorError;
use crate::names::{EndpointId, InstanceId};
use crate::request_plane::RequestTarget;

/// One routable instance: its id and where to send requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceEntry {
    /// The serving process's instance id.
    pub id: InstanceId,
    /// Where requests go (TCP address and path, or NATS subject) and their codec.
    pub target: RequestTarget,
}

impl InstanceEntry {
    /// Builds an entry from a discovery record; `None` for a malformed transport.
    pub fn from_instance(instance: &Instance) -> Option<Self> {
        RequestTarget::from_transport(&instance.transport, instance.codec())
            .ok()
            .map(|target| Self {
                id: instance.instance_id,
                target,
            })
    }
}

/// The instances of one endpoint, updated in the background from discovery.
///
/// Each handle (clones included) remembers the last set it returned from
/// [`list`](Self::list), so "read the set, then wait for it to change" never misses a change
/// made in between and never wakes without one.
pub struct EndpointInstances {
    endpoint: EndpointId,
    current: Mutex<watch::Receiver<Arc<Vec<InstanceEntry>>>>,
    cancel: Arc<DropGuard>,
}

impl Clone for EndpointInstances {
    fn clone(&self) -> Self {
        Self {
            endpoint: self.endpoint.clone(),
            current: Mutex::new(self.current.lock().clone()),
            cancel: Arc::clone(&self.cancel),
        }
    }
}

struct DropGuard(CancellationToken);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl EndpointInstances {
    /// Starts watching `endpoint` in `discovery`.
    pub async fn watch(
        discovery: &dyn Discovery,
        endpoint: EndpointId,
    ) -> Result<Self, StatorError> {
        let mut events = discovery
            .watch(&DiscoveryQuery::Endpoint(endpoint.clone()))
            .await
            .map_err(|e| StatorError::unavailable(format!("cannot watch {endpoint}: {e}")))?;
        let (tx, current) = watch::channel(Arc::new(Vec::new()));
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            let mut set: BTreeMap<InstanceId, InstanceEntry> = BTreeMap::new();
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return,
                    event = events.next() => event,
                };
                let Some(event) = event else { return };
                apply(&mut set, event);
                tx.send_replace(Arc::new(set.values().cloned().collect()));
            }
        });
        Ok(Self {
            endpoint,
            current: Mutex::new(current),
            cancel: Arc::new(DropGuard(cancel)),
        })
    }

    /// The endpoint watched.
    pub fn endpoint(&self) -> &EndpointId {
        &self.endpoint
    }

    /// The current instances, ordered by id; this handle has now seen this set.
    pub fn list(&self) -> Arc<Vec<InstanceEntry>> {
        Arc::clone(&self.current.lock().borrow_and_update())
    }

    /// Waits until at least one instance is known and returns the set.
    pub async fn wait_for_instances(&self) -> Arc<Vec<InstanceEntry>> {
        let mut rx = self.current.lock().clone();
        let _keep_watching = Arc::clone(&self.cancel);
        match rx.wait_for(|set| !set.is_empty()).await {
            Ok(set) => Arc::clone(&set),
            Err(_) => self.list(),
        }
    }

    /// Resolves once instance `id` is not in the set (at once if it is not in it now); never
    /// when the watch has ended, since no departure can be observed then.
    pub async fn departed(&self, id: InstanceId) {
        let mut rx = self.current.lock().clone();
        if rx
            .wait_for(|set| set.iter().all(|entry| entry.id != id))
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once the set differs from the one this handle last returned from
    /// [`list`](Self::list) (at once if it already does): `true`; or `false` once the watch
    /// has ended (the runtime shut down) and no change will ever come.
    pub async fn changed(&self) -> bool {
        let mut rx = self.current.lock().clone();
        rx.changed().await.is_ok()
    }
}

fn apply(set: &mut BTreeMap<InstanceId, InstanceEntry>, event: DiscoveryEvent) {
    let entry = |record: &DiscoveryRecord| match record {
        DiscoveryRecord::Endpoint(instance) => InstanceEntry::from_instance(instance),
        _ => None,
    };
    match event {
        DiscoveryEvent::Added(record) => {
            if let Some(e) = entry(&record) {
                set.insert(e.id, e);
            }
        }
        DiscoveryEvent::Removed(RecordId::Endpoint { instance_id, .. }) => {
            set.remove(&instance_id);
        }
        DiscoveryEvent::Removed(_) => {}
        DiscoveryEvent::Resync(records) => {
            *set = records
                .iter()
                .filter_map(entry)
                .map(|e| (e.id, e))
                .collect();
        }
    }
}
