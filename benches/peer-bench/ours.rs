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

pub struct OursPool {
    inner: ThreadPoolIndexer,
    label: String,
}

impl OursPool {
    pub fn new(threads: usize, jump: usize) -> Self {
        Self {
            inner: ThreadPoolIndexer::with_jump_size(threads, jump),
            label: format!("stator-flash-pool(jump={jump},event_threads={threads})"),
        }
    }
}

impl IndexerUnderTest for OursPool {
    type Event = RouterEvent;
    type Query = Vec<LocalBlockHash>;
    fn name(&self) -> String {
        self.label.clone()
    }
    fn is_async(&self) -> bool {
        true
    }
    fn prepare_event(&self, rec: &EventRecord) -> RouterEvent {
        to_event(rec)
    }
    fn prepare_query(&self, h: &[u64]) -> Self::Query {
        to_query(h)
    }
    #[inline]
    fn apply_event(&self, ev: RouterEvent) {
        self.inner.apply_event(ev).expect("indexer lanes stopped");
    }
    #[inline]
    fn find_matches(&self, q: &Self::Query) -> MatchOutcome {
        summarize(&self.inner.find_matches(q))
    }
    fn remove_worker(&self, worker_id: u64) {
        self.inner.remove_worker(worker_id);
    }
    fn flush(&self) {
        self.inner.flush();
    }
}

pub struct OursInline<I> {
    inner: RefCell<I>,
    label: String,
}

impl OursInline<FlashIndexer> {
    pub fn flash(jump: usize) -> Self {
        Self {
            inner: RefCell::new(FlashIndexer::with_jump_size(jump)),
            label: format!("stator-flash(jump={jump},inline)"),
        }
    }
}

impl OursInline<RadixTree> {
    pub fn radix() -> Self {
        Self {
            inner: RefCell::new(RadixTree::new()),
            label: "stator-radix(inline)".into(),
        }
    }
}

impl<I: Indexer> IndexerUnderTest for OursInline<I> {
    type Event = RouterEvent;
    type Query = Vec<LocalBlockHash>;
    fn name(&self) -> String {
        self.label.clone()
    }
    fn is_async(&self) -> bool {
        false
    }
    fn prepare_event(&self, rec: &EventRecord) -> RouterEvent {
        to_event(rec)
    }
    fn prepare_query(&self, h: &[u64]) -> Self::Query {
        to_query(h)
    }
    #[inline]
    fn apply_event(&self, ev: RouterEvent) {
        let _ = self.inner.borrow_mut().apply_event(ev);
    }
    #[inline]
    fn find_matches(&self, q: &Self::Query) -> MatchOutcome {
        summarize(&self.inner.borrow().find_matches(q))
    }
    fn remove_worker(&self, worker_id: u64) {
        self.inner.borrow_mut().remove_worker(worker_id);
    }
    fn flush(&self) {}
}
