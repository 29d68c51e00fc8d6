//! In-process discovery: a [`MemStore`] shared by any number of runtimes in one process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::{
    Bucket, Discovery, DiscoveryError, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord,
    DiscoveryStream, RecordId,
};
use crate::names::InstanceId;

type Key = (Bucket, String);

struct Watcher {
    client: u64,
    query: DiscoveryQuery,
    tx: mpsc::UnboundedSender<DiscoveryEvent>,
}

#[derive(Default)]
struct State {
    records: BTreeMap<Key, DiscoveryRecord>,
    watchers: Vec<Watcher>,
}

impl State {
    fn notify(&mut self, record: &DiscoveryRecord, event: &DiscoveryEvent) {
        self.watchers
            .retain(|w| !w.query.matches(record) || w.tx.send(event.clone()).is_ok());
    }
}

/// A process-local discovery store; clone it to share it between runtimes.
#[derive(Clone, Default)]
pub struct MemStore {
    state: Arc<Mutex<State>>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A discovery client on this store with a fresh random instance id.
    pub fn client(&self) -> MemDiscovery {
        self.client_with_id(InstanceId::random())
    }

    /// A discovery client on this store with a given instance id.
    pub fn client_with_id(&self, id: InstanceId) -> MemDiscovery {
        static NEXT_CLIENT: AtomicU64 = AtomicU64::new(0);
        MemDiscovery {
            store: self.clone(),
            id,
            client: NEXT_CLIENT.fetch_add(1, Ordering::Relaxed),
            owned: Mutex::new(BTreeSet::new()),
            closed: AtomicBool::new(false),
        }
    }
}

/// One runtime's view of a [`MemStore`].
pub struct MemDiscovery {
    store: MemStore,
    id: InstanceId,
    client: u64,
    owned: Mutex<BTreeSet<Key>>,
    closed: AtomicBool,
}

impl MemDiscovery {
    /// A client on a private store (single-runtime use).
    pub fn new() -> Self {
        MemStore::new().client()
    }

    /// The shared store behind this client.
    pub fn store(&self) -> &MemStore {
        &self.store
    }

    fn check_open(&self) -> Result<(), DiscoveryError> {
        if self.closed.load(Ordering::Acquire) {
            Err(DiscoveryError::Closed)
        } else {
            Ok(())
        }
    }

    /// Removes owned records and ends this client's watches; idempotent.
    fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let owned = std::mem::take(&mut *self.owned.lock());
        for key in &owned {
            self.remove_key(key);
        }
        let client = self.client;
        self.store
            .state
            .lock()
            .watchers
            .retain(|w| w.client != client);
    }

    fn remove_key(&self, key: &Key) {
        let mut state = self.store.state.lock();
        if let Some(record) = state.records.remove(key) {
            let event = DiscoveryEvent::Removed(record.id());
            state.notify(&record, &event);
        }
    }
}

impl Default for MemDiscovery {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Discovery for MemDiscovery {
    fn instance_id(&self) -> InstanceId {
        self.id
    }

    async fn register(&self, record: DiscoveryRecord) -> Result<(), DiscoveryError> {
        self.check_open()?;
        let key = (record.bucket(), record.key());
        self.owned.lock().insert(key.clone());
        let mut state = self.store.state.lock();
        let event = DiscoveryEvent::Added(record.clone());
        state.notify(&record, &event);
        state.records.insert(key, record);
        Ok(())
    }

    async fn unregister(&self, id: &RecordId) -> Result<(), DiscoveryError> {
        self.check_open()?;
        let key = (id.bucket(), id.key());
        self.owned.lock().remove(&key);
        self.remove_key(&key);
        Ok(())
    }

    async fn list(&self, query: &DiscoveryQuery) -> Result<Vec<DiscoveryRecord>, DiscoveryError> {
        self.check_open()?;
        let state = self.store.state.lock();
        Ok(state
            .records
            .values()
            .filter(|r| query.matches(r))
            .cloned()
            .collect())
    }

    async fn watch(&self, query: &DiscoveryQuery) -> Result<DiscoveryStream, DiscoveryError> {
        self.check_open()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.store.state.lock();
        let snapshot: Vec<DiscoveryRecord> = state
            .records
            .values()
            .filter(|r| query.matches(r))
            .cloned()
            .collect();
        for record in &snapshot {
            // The receiver is alive: it is still in this scope.
            let _ = tx.send(DiscoveryEvent::Added(record.clone()));
        }
        let _ = tx.send(DiscoveryEvent::Resync(snapshot));
        state.watchers.push(Watcher {
            client: self.client,
            query: query.clone(),
            tx,
        });
        Ok(Box::pin(UnboundedReceiverStream::new(rx)))
    }

    async fn shutdown(&self) {
        self.close();
    }
}

impl Drop for MemDiscovery {
    fn drop(&mut self) {
        self.close();
    }
}
