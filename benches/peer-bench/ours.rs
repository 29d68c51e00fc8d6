//! Stator's indexers as peer-bench adapters: `ours` (the thread-pool flash indexer, the one the
//! router runs), `ours-flash` (the flash indexer driven inline) and `ours-radix` (the reference
//! radix tree). `setup.sh` copies this file into a scratch peer-bench as `src/adapters/ours.rs`.
use std::cell::RefCell;

use stator_kv_router::indexer::{FlashIndexer, Indexer, RadixTree, ThreadPoolIndexer};
use stator_kv_router::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheRemoveData, KvCacheStoreData, KvCacheStoredBlockData,
    OverlapScores, RouterEvent,
};
use stator_tokens::{LocalBlockHash, SequenceHash};

use crate::adapter::{IndexerUnderTest, MatchOutcome};
use crate::corpus::{EventRecord, KvEvent};

pub fn to_event(rec: &EventRecord) -> RouterEvent {
    let data = match &rec.event {
        KvEvent::Stored {
            parent,
            start_position,
            blocks,
        } => KvCacheEventData::Stored(KvCacheStoreData {
            parent_hash: parent.map(SequenceHash),
            start_position: *start_position,
            blocks: blocks
                .iter()
                .map(|b| KvCacheStoredBlockData {
                    block_hash: SequenceHash(b.seq),
                    tokens_hash: LocalBlockHash(b.local),
                })
                .collect(),
        }),
        KvEvent::Removed { seq_hashes } => KvCacheEventData::Removed(KvCacheRemoveData {
            block_hashes: seq_hashes.iter().copied().map(SequenceHash).collect(),
        }),
        KvEvent::Cleared => KvCacheEventData::Cleared,
    };
    RouterEvent::new(
        rec.worker.worker_id,
        KvCacheEvent {
            event_id: rec.event_id,
            data,
            dp_rank: rec.worker.dp_rank,
        },
    )
}

fn to_query(h: &[u64]) -> Vec<LocalBlockHash> {
    h.iter().copied().map(LocalBlockHash).collect()
}

#[inline]
fn summarize(scores: &OverlapScores) -> MatchOutcome {
    let mut out = MatchOutcome::default();
    for (_, &d) in scores.scores.iter() {
        if d > 0 {
            out.workers += 1;
            out.max_depth = out.max_depth.max(d);
            out.depth_sum += d as u64;
        }
    }
    out
}

/// How the adapter drives one of our indexers: the thread pool through `&self`, an inline
/// indexer through a `RefCell` on the benchmark thread.
trait Drive {
    /// Whether events are applied later, on the indexer's own threads.
    const ASYNC: bool;
    fn apply(&self, ev: RouterEvent);
    fn find(&self, q: &[LocalBlockHash]) -> OverlapScores;
    fn remove(&self, worker_id: u64);
    fn flush(&self);
}

impl Drive for ThreadPoolIndexer {
    const ASYNC: bool = true;
    fn apply(&self, ev: RouterEvent) {
        self.apply_event(ev).expect("indexer lanes stopped");
    }
    fn find(&self, q: &[LocalBlockHash]) -> OverlapScores {
        self.find_matches(q)
    }
    fn remove(&self, worker_id: u64) {
        self.remove_worker(worker_id);
    }
    fn flush(&self) {
        ThreadPoolIndexer::flush(self);
    }
}

impl<I: Indexer> Drive for RefCell<I> {
    const ASYNC: bool = false;
    fn apply(&self, ev: RouterEvent) {
        // Rejected events (a parent the worker never stored) are part of the replay.
        let _ = self.borrow_mut().apply_event(ev);
    }
    fn find(&self, q: &[LocalBlockHash]) -> OverlapScores {
        self.borrow().find_matches(q)
    }
    fn remove(&self, worker_id: u64) {
        self.borrow_mut().remove_worker(worker_id);
    }
    fn flush(&self) {}
}

/// One of our indexers under test.
pub struct Ours<D> {
    inner: D,
    label: String,
}

impl Ours<ThreadPoolIndexer> {
    /// The thread-pool flash indexer with `threads` lanes: `ours`.
    pub fn pool(threads: usize, jump: usize) -> Self {
        let inner = ThreadPoolIndexer::with_jump_size(threads, jump);
        let passes = inner.owner_passes();
        Self {
            inner,
            label: format!(
                "stator-flash-pool(jump={jump},event_threads={threads},owner_passes={passes:?})"
            ),
        }
    }
}

impl Ours<RefCell<FlashIndexer>> {
    /// The flash indexer on the benchmark thread: `ours-flash`.
    pub fn flash(jump: usize) -> Self {
        Self {
            inner: RefCell::new(FlashIndexer::with_jump_size(jump)),
            label: format!("stator-flash(jump={jump},inline)"),
        }
    }
}

impl Ours<RefCell<RadixTree>> {
    /// The reference radix tree on the benchmark thread: `ours-radix`.
    pub fn radix() -> Self {
        Self {
            inner: RefCell::new(RadixTree::new()),
            label: "stator-radix(inline)".into(),
        }
    }
}

impl<D: Drive> IndexerUnderTest for Ours<D> {
    type Event = RouterEvent;
    type Query = Vec<LocalBlockHash>;
    fn name(&self) -> String {
        self.label.clone()
    }
    fn is_async(&self) -> bool {
        D::ASYNC
    }
    fn prepare_event(&self, rec: &EventRecord) -> RouterEvent {
        to_event(rec)
    }
    fn prepare_query(&self, h: &[u64]) -> Self::Query {
        to_query(h)
    }
    #[inline]
    fn apply_event(&self, ev: RouterEvent) {
        self.inner.apply(ev);
    }
    #[inline]
    fn find_matches(&self, q: &Self::Query) -> MatchOutcome {
        summarize(&self.inner.find(q))
    }
    fn remove_worker(&self, worker_id: u64) {
        self.inner.remove(worker_id);
    }
    fn flush(&self) {
        self.inner.flush();
    }
}
