//! Shared pieces of the indexer property tests: a naive reference model and an event builder.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of this shared module"
)]

use std::collections::{BTreeMap, HashMap};

use stator_kv_router::indexer::IndexerError;
use stator_kv_router::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheRemoveData, KvCacheStoreData, KvCacheStoredBlockData,
    OverlapScores, RouterEvent, WorkerWithDpRank,
};
use stator_tokens::{LocalBlockHash, SequenceHash, sequence_hashes};

/// Canonical (local, seq) blocks for a path of local hashes.
pub fn chain(path: &[u64]) -> Vec<(LocalBlockHash, SequenceHash)> {
    let local: Vec<LocalBlockHash> = path.iter().copied().map(LocalBlockHash).collect();
    let seq = sequence_hashes(&local);
    local.into_iter().zip(seq).collect()
}

/// A `Stored` event for `path[from..]` under the parent `path[..from]`.
pub fn store_event(
    owner: WorkerWithDpRank,
    path: &[u64],
    from: usize,
    start_position: Option<u32>,
    parent: bool,
) -> RouterEvent {
    let blocks = chain(path);
    let parent_hash = (parent && from > 0).then(|| blocks[from - 1].1);
    event(
        owner,
        KvCacheEventData::Stored(KvCacheStoreData {
            parent_hash,
            start_position,
            blocks: blocks[from..]
                .iter()
                .map(|&(tokens_hash, block_hash)| KvCacheStoredBlockData {
                    block_hash,
                    tokens_hash,
                })
                .collect(),
        }),
    )
}

/// A `Removed` event.
pub fn remove_event(owner: WorkerWithDpRank, hashes: Vec<SequenceHash>) -> RouterEvent {
    event(
        owner,
        KvCacheEventData::Removed(KvCacheRemoveData {
            block_hashes: hashes,
        }),
    )
}

/// A `Cleared` event.
pub fn clear_event(owner: WorkerWithDpRank) -> RouterEvent {
    event(owner, KvCacheEventData::Cleared)
}

fn event(owner: WorkerWithDpRank, data: KvCacheEventData) -> RouterEvent {
    RouterEvent::new(
        owner.worker_id,
        KvCacheEvent {
            event_id: 0,
            data,
            dp_rank: owner.dp_rank,
        },
    )
}

/// The naive reference: per owner, the set of cached `(position, local, seq)`.
#[derive(Debug, Default, Clone)]
pub struct Naive {
    pub owners: BTreeMap<WorkerWithDpRank, BTreeMap<SequenceHash, (u32, LocalBlockHash)>>,
}

impl Naive {
    pub fn apply(&mut self, ev: &RouterEvent) -> Result<(), IndexerError> {
        let owner = ev.owner();
        match &ev.event.data {
            KvCacheEventData::Stored(s) => {
                let held = self.owners.entry(owner).or_default();
                let start = match (s.parent_hash, s.start_position) {
                    (Some(p), explicit) => match held.get(&p) {
                        Some(&(pos, _)) => explicit.unwrap_or(pos + 1),
                        None => match explicit {
                            Some(e) => e,
                            None => {
                                return Err(IndexerError::ParentBlockNotFound { owner, parent: p });
                            }
                        },
                    },
                    (None, explicit) => explicit.unwrap_or(0),
                };
                for (i, b) in s.blocks.iter().enumerate() {
                    held.entry(b.block_hash)
                        .or_insert((start + i as u32, b.tokens_hash));
                }
                Ok(())
            }
            KvCacheEventData::Removed(r) => {
                let held = self.owners.entry(owner).or_default();
                for h in &r.block_hashes {
                    if held.remove(h).is_none() {
                        return Err(IndexerError::BlockNotFound { owner, block: *h });
                    }
                }
                Ok(())
            }
            KvCacheEventData::Cleared => {
                self.owners.remove(&owner);
                Ok(())
            }
        }
    }

    pub fn remove_worker(&mut self, worker_id: u64) {
        self.owners.retain(|o, _| o.worker_id != worker_id);
    }

    pub fn find_matches(&self, query: &[LocalBlockHash]) -> OverlapScores {
        let seq = sequence_hashes(query);
        let mut scores = OverlapScores::default();
        for (owner, held) in &self.owners {
            let depth = (0..query.len())
                .take_while(|&p| held.get(&seq[p]) == Some(&(p as u32, query[p])))
                .count();
            if depth > 0 {
                scores.scores.insert(*owner, depth as u32);
            }
        }
        scores
    }

    /// Sorted held sequence hashes of `owner`.
    pub fn held(&self, owner: WorkerWithDpRank) -> Vec<SequenceHash> {
        self.owners
            .get(&owner)
            .map(|h| h.keys().copied().collect())
            .unwrap_or_default()
    }
}

/// Remember the path of every canonical sequence hash seen, to extend held chains.
#[derive(Debug, Default)]
pub struct Paths(pub HashMap<SequenceHash, Vec<u64>>);

impl Paths {
    pub fn learn(&mut self, path: &[u64]) {
        for (i, (_, s)) in chain(path).into_iter().enumerate() {
            self.0.entry(s).or_insert_with(|| path[..=i].to_vec());
        }
    }
}
