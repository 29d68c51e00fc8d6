//! KV-cache-aware routing for Stator: KV events, indexers, worker selection and load tracking.
//!
//! Workers publish [`RouterEvent`]s (blocks stored, removed, cleared). An [`Indexer`] keeps a
//! global view of which (worker, dp rank) caches which block prefixes and answers, for a
//! request's block hashes, how many leading blocks each worker already has
//! ([`OverlapScores`]). The default is the positional [`FlashIndexer`]; for a router serving
//! concurrent requests, [`ThreadPoolIndexer`] applies events on writer lanes while lookups run
//! on the callers' threads. The crate does not depend on the runtime.
//!
//! ```
//! use stator_kv_router::{FlashIndexer, Indexer, RouterEvent, WorkerWithDpRank};
//! use stator_kv_router::protocols::{
//!     KvCacheEvent, KvCacheEventData, KvCacheStoreData, KvCacheStoredBlockData,
//! };
//! use stator_tokens::{block_hashes, sequence_hashes, SaltSeed};
//!
//! // A worker caches the first two 4-token blocks of a prompt.
//! let prompt: Vec<u32> = (0..12).collect();
//! let local = block_hashes(&prompt, 4, SaltSeed::default());
//! let seq = sequence_hashes(&local);
//! let blocks = local[..2]
//!     .iter()
//!     .zip(&seq)
//!     .map(|(&tokens_hash, &block_hash)| KvCacheStoredBlockData { block_hash, tokens_hash })
//!     .collect();
//! let stored = KvCacheEventData::Stored(KvCacheStoreData {
//!     parent_hash: None,
//!     start_position: None,
//!     blocks,
//! });
//! let mut index = FlashIndexer::new();
//! index
//!     .apply_event(RouterEvent::new(7, KvCacheEvent { event_id: 0, data: stored, dp_rank: 0 }))
//!     .unwrap();
//!
//! // The full prompt has 3 blocks; worker 7 caches the first 2.
//! let scores = index.find_matches(&local);
//! assert_eq!(scores.depth(WorkerWithDpRank::new(7, 0)), 2);
//! ```

pub mod approx;
pub mod config;
pub mod indexer;
pub mod protocols;
pub mod queue;
pub mod selector;
pub mod sequences;

pub use approx::ApproxIndexer;
pub use config::{ApproxCachePolicy, BusyThresholds, KvRouterConfig, QueuePolicy};
pub use indexer::{
    ConcurrentRadixTree, FlashIndexer, Indexer, IndexerError, RadixTree, ThreadPoolIndexer,
};
pub use protocols::{OverlapScores, RouterEvent, WorkerId, WorkerWithDpRank};
pub use queue::{QueueKey, SchedulerQueue, all_workers_saturated};
pub use selector::{
    KvScheduler, RequestShape, ScheduleError, ScheduleRequest, SelectError, Selection,
    WorkerCapacity, WorkerCost, WorkerLoad, WorkerSelector, sample_index,
};
pub use sequences::{ActiveSequences, ActiveSequencesMultiWorker, SequenceRequest};
