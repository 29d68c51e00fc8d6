//! The radix tree shared between threads: many concurrent readers, one writer at a time.

use parking_lot::RwLock;
use stator_tokens::LocalBlockHash;

use super::radix::RadixTree;
use super::{Indexer, IndexerError};
use crate::protocols::{OverlapScores, RouterEvent, WorkerId};

/// [`RadixTree`] behind a reader-writer lock; `Send + Sync`, every method takes `&self`.
///
/// Reads run in parallel on the callers' threads; a write waits for the readers in flight and
/// excludes new ones for the duration of one event.
#[derive(Debug, Default)]
pub struct ConcurrentRadixTree {
    tree: RwLock<RadixTree>,
}

impl ConcurrentRadixTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Apply one event.
    pub fn apply_event(&self, event: RouterEvent) -> Result<(), IndexerError> {
        self.tree.write().apply_event(event)
    }

    /// Overlap of `query` with every owner.
    pub fn find_matches(&self, query: &[LocalBlockHash]) -> OverlapScores {
        self.tree.read().find_matches(query)
    }

    /// Forget every dp rank of `worker_id`.
    pub fn remove_worker(&self, worker_id: WorkerId) {
        self.tree.write().remove_worker(worker_id);
    }

    /// A snapshot as events that rebuild an equal tree.
    pub fn dump_events(&self) -> Vec<RouterEvent> {
        self.tree.read().dump_events()
    }

    /// Whether no block is cached by anyone.
    pub fn is_empty(&self) -> bool {
        self.tree.read().is_empty()
    }
}

impl Indexer for ConcurrentRadixTree {
    fn apply_event(&mut self, event: RouterEvent) -> Result<(), IndexerError> {
        self.tree.get_mut().apply_event(event)
    }

    fn find_matches(&self, query: &[LocalBlockHash]) -> OverlapScores {
        ConcurrentRadixTree::find_matches(self, query)
    }

    fn remove_worker(&mut self, worker_id: WorkerId) {
        self.tree.get_mut().remove_worker(worker_id);
    }

    fn dump_events(&self) -> Vec<RouterEvent> {
        ConcurrentRadixTree::dump_events(self)
    }
}
