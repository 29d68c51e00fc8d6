//! KV event types, wire-compatible with Dynamo 1.6.1 (`RouterEvent`, `KvCacheEvent`).
//!
//! Serde names follow Dynamo's so that msgpack (map with field names) and JSON payloads
//! decode on both sides: `KvCacheEventData` is externally tagged in snake_case
//! (`{"stored": {...}}`, `{"removed": {...}}`, `"cleared"`).

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use stator_tokens::{LocalBlockHash, SequenceHash};

/// A worker's instance id (the discovery identity of the process serving it).
pub type WorkerId = u64;

/// A data-parallel rank inside a worker; 0 when the worker has no DP.
pub type DpRank = u32;

/// The owner of a cached block: one DP rank of one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkerWithDpRank {
    /// Worker instance id.
    pub worker_id: WorkerId,
    /// Data-parallel rank.
    pub dp_rank: DpRank,
}

impl WorkerWithDpRank {
    /// Build an owner from its parts.
    pub const fn new(worker_id: WorkerId, dp_rank: DpRank) -> Self {
        Self { worker_id, dp_rank }
    }
}

/// Memory tier a KV event refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageTier {
    /// GPU memory (G1).
    #[default]
    Device,
    /// Pinned host memory (G2).
    HostPinned,
    /// Local disk (G3).
    Disk,
    /// Remote / external storage (G4).
    External,
}

/// A KV event from one worker, as published on the `kv-events` topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterEvent {
    /// The publishing worker.
    pub worker_id: WorkerId,
    /// Tier of the blocks the event is about.
    #[serde(default)]
    pub storage_tier: StorageTier,
    /// The event itself.
    pub event: KvCacheEvent,
}

/// One worker rank's load as published on the `kv_metrics` topic (Dynamo's `ActiveLoad`,
/// msgpack with field names; absent fields default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveLoad {
    /// The worker's instance id.
    pub worker_id: WorkerId,
    /// Its data-parallel rank.
    #[serde(default)]
    pub dp_rank: DpRank,
    /// KV blocks held by running sequences.
    #[serde(default)]
    pub active_decode_blocks: Option<u64>,
    /// Prompt tokens still to prefill.
    #[serde(default)]
    pub active_prefill_tokens: Option<u64>,
    /// KV blocks in use.
    #[serde(default)]
    pub kv_used_blocks: Option<u64>,
}

/// The payload of one `kv-events` message. Dynamo 1.6.1 publishes a msgpack **array** of
/// [`RouterEvent`]s (one engine step's events, observed on the wire); a single event (map)
/// is accepted too.
///
/// ```
/// use stator_kv_router::protocols::{KvCacheEvent, KvCacheEventData, KvEventsPayload, RouterEvent};
///
/// let event = RouterEvent::new(7, KvCacheEvent { event_id: 1, data: KvCacheEventData::Cleared, dp_rank: 0 });
/// let batch = rmp_serde::to_vec_named(&vec![event.clone()]).unwrap();
/// let single = rmp_serde::to_vec_named(&event).unwrap();
/// for bytes in [batch, single] {
///     let payload: KvEventsPayload = rmp_serde::from_slice(&bytes).unwrap();
///     assert_eq!(payload.into_events(), vec![event.clone()]);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum KvEventsPayload {
    /// Several events, in order (what Dynamo publishers send).
    Batch(Vec<RouterEvent>),
    /// One event.
    Single(RouterEvent),
}

impl KvEventsPayload {
    /// The events, in order.
    pub fn into_events(self) -> Vec<RouterEvent> {
        match self {
            Self::Batch(events) => events,
            Self::Single(event) => vec![event],
        }
    }
}

impl RouterEvent {
    /// A device-tier event from `worker_id`.
    pub fn new(worker_id: WorkerId, event: KvCacheEvent) -> Self {
        Self {
            worker_id,
            storage_tier: StorageTier::Device,
            event,
        }
    }

    /// The owner (worker, DP rank) this event applies to.
    pub fn owner(&self) -> WorkerWithDpRank {
        WorkerWithDpRank::new(self.worker_id, self.event.dp_rank)
    }
}

/// One KV cache change with its per-publisher event id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCacheEvent {
    /// Monotonic id per (worker, DP rank) publisher.
    pub event_id: u64,
    /// What changed.
    pub data: KvCacheEventData,
    /// DP rank of the publisher.
    #[serde(default)]
    pub dp_rank: DpRank,
}

/// What a KV event says changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvCacheEventData {
    /// A run of contiguous blocks became cached.
    Stored(KvCacheStoreData),
    /// Blocks were evicted.
    Removed(KvCacheRemoveData),
    /// Every block of this (worker, DP rank) was dropped.
    Cleared,
}

/// A contiguous run of newly cached blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCacheStoreData {
    /// Sequence hash of the block just before `blocks[0]`; `None` at position 0.
    pub parent_hash: Option<SequenceHash>,
    /// Explicit position of `blocks[0]` (used by dumps); `None` means derive from the parent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_position: Option<u32>,
    /// The stored blocks, in order.
    pub blocks: Vec<KvCacheStoredBlockData>,
}

/// One stored block: its sequence hash and its local (tokens) hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCacheStoredBlockData {
    /// Sequence hash (covers the whole prefix).
    pub block_hash: SequenceHash,
    /// Local hash of this block's tokens.
    pub tokens_hash: LocalBlockHash,
}

/// Blocks removed from a worker's cache, by sequence hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvCacheRemoveData {
    /// Sequence hashes of the evicted blocks.
    pub block_hashes: Vec<SequenceHash>,
}

/// Result of an overlap query: for each owner, how many leading blocks of the query it caches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverlapScores {
    /// Matched depth (number of leading query blocks cached) per owner; owners with 0 are absent.
    pub scores: FxHashMap<WorkerWithDpRank, u32>,
}

impl OverlapScores {
    /// Matched depth of `owner`, 0 if it caches nothing of the query.
    pub fn depth(&self, owner: WorkerWithDpRank) -> u32 {
        self.scores.get(&owner).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_dynamo() {
        let ev = RouterEvent::new(
            7,
            KvCacheEvent {
                event_id: 3,
                data: KvCacheEventData::Stored(KvCacheStoreData {
                    parent_hash: None,
                    start_position: None,
                    blocks: vec![KvCacheStoredBlockData {
                        block_hash: SequenceHash(11),
                        tokens_hash: LocalBlockHash(22),
                    }],
                }),
                dp_rank: 0,
            },
        );
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "worker_id": 7,
                "storage_tier": "device",
                "event": {"event_id": 3, "dp_rank": 0, "data": {"stored": {
                    "parent_hash": null,
                    "blocks": [{"block_hash": 11, "tokens_hash": 22}]
                }}}
            })
        );
        let cleared: KvCacheEventData = serde_json::from_str("\"cleared\"").unwrap();
        assert_eq!(cleared, KvCacheEventData::Cleared);
        let removed: KvCacheEventData =
            serde_json::from_str(r#"{"removed":{"block_hashes":[1,2]}}"#).unwrap();
        assert_eq!(
            removed,
            KvCacheEventData::Removed(KvCacheRemoveData {
                block_hashes: vec![SequenceHash(1), SequenceHash(2)]
            })
        );
    }

    #[test]
    fn msgpack_named_round_trip() {
        let ev = RouterEvent::new(
            1,
            KvCacheEvent {
                event_id: 9,
                data: KvCacheEventData::Removed(KvCacheRemoveData {
                    block_hashes: vec![SequenceHash(5)],
                }),
                dp_rank: 2,
            },
        );
        let bytes = rmp_serde::to_vec_named(&ev).unwrap();
        let back: RouterEvent = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, ev);
    }
}
