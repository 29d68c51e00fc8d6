//! KV-cache indexers: which worker caches how much of a request's prefix.
//!
//! Every indexer consumes [`RouterEvent`]s (blocks stored, removed, cleared on one
//! (worker, dp rank) owner) and answers [`Indexer::find_matches`]: for each owner, the number
//! of *leading* query blocks it caches. A block counts only if its whole prefix matches, so
//! the same local (token) hash under a different prefix is not a hit, and a block after a
//! gap in an owner's cache does not extend its match.
//!
//! # Choosing an indexer
//!
//! | type | structure | threads | use it when |
//! |---|---|---|---|
//! | [`FlashIndexer`] | positional: one hash map per block position, jump search | one owner (`&mut self` writes) | the default for a single-threaded router or a test |
//! | [`ThreadPoolIndexer`] | the flash index, table writes on N lanes (sticky per owner), owner bookkeeping on the submitting thread or the lanes ([`OwnerPasses`]), reads on the caller | `Send + Sync`, `&self` everywhere | a router with concurrent requests and a busy event stream |
//! | [`RadixTree`] | uncompressed radix tree keyed by local hash | one owner | reference model, or opaque (non-canonical) sequence hashes with `start_position` never set |
//! | [`ConcurrentRadixTree`] | the radix tree behind a reader-writer lock | `Send + Sync` | concurrent readers over the reference structure |
//!
//! The flash index never hashes the query with xxh3 on its hot path: it compares a cheap
//! additive prefix fingerprint that it computes itself for every block stored under a known
//! parent (see `flash/fingerprint.rs`) and keys its table by it, and falls back to the wire
//! sequence hash only for blocks stored at an explicit position without a parent. Its jump search is exact: owners
//! whose cache has gaps ("orphans", blocks whose parent they do not hold) are checked
//! position by position once the search reaches their lowest orphan position.

mod concurrent_radix;
mod flash;
mod radix;
mod registry;
mod thread_pool;
mod worker_set;

use stator_tokens::{LocalBlockHash, SequenceHash};
use thiserror::Error;

use crate::protocols::{OverlapScores, RouterEvent, WorkerId, WorkerWithDpRank};

pub use concurrent_radix::ConcurrentRadixTree;
pub use flash::{DEFAULT_JUMP_SIZE, FlashIndexer, MAX_POSITIONS};
pub use radix::RadixTree;
pub use thread_pool::{OwnerPasses, ThreadPoolIndexer};

/// Why an event could not be applied. The index is left as the event found it, except for
/// [`IndexerError::BlockNotFound`], where the hashes before the unknown one were removed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IndexerError {
    /// A `Stored` event names a parent the owner does not cache; the whole event is rejected.
    #[error("{owner:?}: parent block {parent:?} not found; stored event rejected")]
    ParentBlockNotFound {
        /// The publishing owner.
        owner: WorkerWithDpRank,
        /// The unknown parent sequence hash.
        parent: SequenceHash,
    },
    /// A `Removed` event names a block the owner does not cache; removal stops there.
    #[error("{owner:?}: removed block {block:?} not found")]
    BlockNotFound {
        /// The publishing owner.
        owner: WorkerWithDpRank,
        /// The unknown sequence hash.
        block: SequenceHash,
    },
    /// A `Stored` event gives an explicit position without a parent the indexer can place it
    /// under (the radix tree needs the parent's node).
    #[error("{owner:?}: block at position {position} has no cached parent to attach to")]
    UnplaceableBlock {
        /// The publishing owner.
        owner: WorkerWithDpRank,
        /// The explicit start position.
        position: u32,
    },
    /// A `Stored` event reaches past the deepest position the index supports.
    #[error("block position {position} is beyond the supported {max}")]
    PositionOutOfRange {
        /// The first position that does not fit.
        position: u64,
        /// The number of positions supported.
        max: u64,
    },
    /// The indexer's writer threads have stopped.
    #[error("indexer writer threads have stopped")]
    Closed,
}

/// A KV-cache index over many (worker, dp rank) owners.
pub trait Indexer {
    /// Apply one KV event from its owner.
    fn apply_event(&mut self, event: RouterEvent) -> Result<(), IndexerError>;

    /// For every owner caching a prefix of `query`, the number of leading blocks it caches.
    fn find_matches(&self, query: &[LocalBlockHash]) -> OverlapScores;

    /// Forget every block of every dp rank of `worker_id`.
    fn remove_worker(&mut self, worker_id: WorkerId);

    /// A snapshot as `Stored` events which, applied to an empty index, rebuild one that gives
    /// the same answers.
    fn dump_events(&self) -> Vec<RouterEvent>;
}

/// Convert a slice of raw `u64` local hashes (for example a trace's) into a query.
pub fn query_from_u64(hashes: &[u64]) -> Vec<LocalBlockHash> {
    hashes.iter().copied().map(LocalBlockHash).collect()
}
