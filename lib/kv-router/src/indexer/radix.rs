//! The reference radix tree: one node per cached block prefix, children keyed by local hash.
//!
//! Nodes live in an arena (`Vec`) and point to each other by index, so the tree is `Send` and
//! `Sync`. It walks the query by local hash only, so it also works with opaque
//! (non-canonical) sequence hashes. It is uncompressed: a query costs one child lookup per
//! matched block.

use rustc_hash::FxHashMap;
use stator_tokens::{LocalBlockHash, SequenceHash};

use super::registry::Registry;
use super::worker_set::WorkerSet;
use super::{Indexer, IndexerError};
use crate::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheRemoveData, KvCacheStoreData, KvCacheStoredBlockData,
    OverlapScores, RouterEvent, WorkerId, WorkerWithDpRank,
};

const ROOT: u32 = 0;

#[derive(Debug, Default)]
enum Children {
    #[default]
    None,
    One(LocalBlockHash, u32),
    Many(FxHashMap<LocalBlockHash, u32>),
}

impl Children {
    #[inline]
    fn get(&self, local: LocalBlockHash) -> Option<u32> {
        match self {
            Self::None => None,
            Self::One(l, n) => (*l == local).then_some(*n),
            Self::Many(m) => m.get(&local).copied(),
        }
    }

    fn insert(&mut self, local: LocalBlockHash, node: u32) {
        match self {
            Self::None => *self = Self::One(local, node),
            Self::One(l, n) => {
                let mut m = FxHashMap::default();
                m.insert(*l, *n);
                m.insert(local, node);
                *self = Self::Many(m);
            }
            Self::Many(m) => {
                m.insert(local, node);
            }
        }
    }

    fn remove(&mut self, local: LocalBlockHash) {
        match self {
            Self::None => {}
            Self::One(l, _) => {
                if *l == local {
                    *self = Self::None;
                }
            }
            Self::Many(m) => {
                m.remove(&local);
                if m.len() == 1
                    && let Some((&l, &n)) = m.iter().next()
                {
                    *self = Self::One(l, n);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Self::None)
    }

    fn nodes(&self) -> Vec<u32> {
        match self {
            Self::None => Vec::new(),
            Self::One(_, n) => vec![*n],
            Self::Many(m) => m.values().copied().collect(),
        }
    }
}

#[derive(Debug)]
struct Node {
    local: LocalBlockHash,
    seq: SequenceHash,
    parent: u32,
    children: Children,
    owners: WorkerSet,
}

impl Default for Node {
    fn default() -> Self {
        Self {
            local: LocalBlockHash(0),
            seq: SequenceHash(0),
            parent: ROOT,
            children: Children::None,
            owners: WorkerSet::new(),
        }
    }
}

/// Single-threaded, uncompressed radix tree over local block hashes.
#[derive(Debug)]
pub struct RadixTree {
    nodes: Vec<Node>,
    free: Vec<u32>,
    registry: Registry,
    /// Per owner: sequence hash → node.
    lookup: FxHashMap<WorkerWithDpRank, FxHashMap<SequenceHash, u32>>,
}

impl Default for RadixTree {
    fn default() -> Self {
        Self::new()
    }
}

impl RadixTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self {
            nodes: vec![Node::default()],
            free: Vec::new(),
            registry: Registry::default(),
            lookup: FxHashMap::default(),
        }
    }

    /// Whether no block is cached by anyone (every removed node is freed).
    pub fn is_empty(&self) -> bool {
        self.nodes[ROOT as usize].children.is_empty()
    }

    fn new_node(&mut self, parent: u32, b: &KvCacheStoredBlockData) -> u32 {
        let node = Node {
            local: b.tokens_hash,
            seq: b.block_hash,
            parent,
            children: Children::None,
            owners: WorkerSet::new(),
        };
        let id = if let Some(id) = self.free.pop() {
            self.nodes[id as usize] = node;
            id
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        };
        self.nodes[parent as usize]
            .children
            .insert(b.tokens_hash, id);
        id
    }

    /// Free `node` and its ancestors while they are unowned leaves.
    fn prune(&mut self, mut node: u32) {
        while node != ROOT {
            let n = &self.nodes[node as usize];
            if !n.owners.is_empty() || !n.children.is_empty() {
                return;
            }
            let (parent, local) = (n.parent, n.local);
            if self.nodes[parent as usize].children.get(local) != Some(node) {
                // Already freed by an earlier prune.
                return;
            }
            self.nodes[parent as usize].children.remove(local);
            self.nodes[node as usize] = Node::default();
            self.free.push(node);
            node = parent;
        }
    }

    fn store(
        &mut self,
        owner: WorkerWithDpRank,
        store: &KvCacheStoreData,
    ) -> Result<(), IndexerError> {
        let held = self.lookup.get(&owner);
        let mut node = match (
            store.parent_hash,
            held.and_then(|h| store.parent_hash.and_then(|p| h.get(&p))),
        ) {
            (_, Some(&n)) => n,
            (None, None) if store.start_position.unwrap_or(0) == 0 => ROOT,
            (Some(parent), None) => {
                return Err(IndexerError::ParentBlockNotFound { owner, parent });
            }
            (None, None) => {
                return Err(IndexerError::UnplaceableBlock {
                    owner,
                    position: store.start_position.unwrap_or(0),
                });
            }
        };
        let slot = self.registry.acquire(owner);
        for b in &store.blocks {
            node = match self.nodes[node as usize].children.get(b.tokens_hash) {
                Some(child) => child,
                None => self.new_node(node, b),
            };
            self.nodes[node as usize].owners.insert(slot);
            self.lookup
                .entry(owner)
                .or_default()
                .insert(b.block_hash, node);
        }
        Ok(())
    }

    fn remove(
        &mut self,
        owner: WorkerWithDpRank,
        remove: &KvCacheRemoveData,
    ) -> Result<(), IndexerError> {
        let slot = self.registry.slot_of(owner);
        for &seq in &remove.block_hashes {
            let node = self
                .lookup
                .get_mut(&owner)
                .and_then(|h| h.remove(&seq))
                .ok_or(IndexerError::BlockNotFound { owner, block: seq })?;
            if let Some(slot) = slot {
                self.nodes[node as usize].owners.remove(slot);
            }
            self.prune(node);
        }
        Ok(())
    }

    fn clear_owner(&mut self, owner: WorkerWithDpRank) {
        let Some(held) = self.lookup.remove(&owner) else {
            return;
        };
        if let Some(slot) = self.registry.slot_of(owner) {
            for &node in held.values() {
                self.nodes[node as usize].owners.remove(slot);
            }
            for &node in held.values() {
                self.prune(node);
            }
        }
    }

    /// Stored events rebuilding `owner`'s blocks: depth-first, so parents come first. A block
    /// whose parent the owner does not cache (a gap) is stored under its stored-then-removed
    /// ancestors, which the final `Removed` event takes away again.
    fn dump_owner(&self, owner: WorkerWithDpRank, slot: u32, out: &mut Vec<RouterEvent>) {
        let mut gap_fillers = Vec::new();
        let mut stack = self.nodes[ROOT as usize].children.nodes();
        stack.sort_unstable();
        // (node, parent's sequence hash if a parent block exists)
        let mut work: Vec<(u32, Option<SequenceHash>)> =
            stack.into_iter().map(|n| (n, None)).collect();
        while let Some((node, parent_seq)) = work.pop() {
            let n = &self.nodes[node as usize];
            let mut children = n.children.nodes();
            children.sort_unstable();
            let has_descendant = n.owners.contains(slot) || self.subtree_has(node, slot);
            if !has_descendant {
                continue;
            }
            if !n.owners.contains(slot) {
                gap_fillers.push(n.seq);
            }
            out.push(stored_event(owner, parent_seq, n.local, n.seq));
            work.extend(children.into_iter().map(|c| (c, Some(n.seq))));
        }
        if !gap_fillers.is_empty() {
            out.push(RouterEvent::new(
                owner.worker_id,
                KvCacheEvent {
                    event_id: 0,
                    data: KvCacheEventData::Removed(KvCacheRemoveData {
                        block_hashes: gap_fillers,
                    }),
                    dp_rank: owner.dp_rank,
                },
            ));
        }
    }

    fn subtree_has(&self, node: u32, slot: u32) -> bool {
        let mut stack = self.nodes[node as usize].children.nodes();
        while let Some(n) = stack.pop() {
            let n = &self.nodes[n as usize];
            if n.owners.contains(slot) {
                return true;
            }
            stack.extend(n.children.nodes());
        }
        false
    }
}

fn stored_event(
    owner: WorkerWithDpRank,
    parent: Option<SequenceHash>,
    local: LocalBlockHash,
    seq: SequenceHash,
) -> RouterEvent {
    RouterEvent::new(
        owner.worker_id,
        KvCacheEvent {
            event_id: 0,
            data: KvCacheEventData::Stored(KvCacheStoreData {
                parent_hash: parent,
                start_position: None,
                blocks: vec![KvCacheStoredBlockData {
                    block_hash: seq,
                    tokens_hash: local,
                }],
            }),
            dp_rank: owner.dp_rank,
        },
    )
}

impl Indexer for RadixTree {
    fn apply_event(&mut self, event: RouterEvent) -> Result<(), IndexerError> {
        let owner = event.owner();
        match &event.event.data {
            KvCacheEventData::Stored(store) => self.store(owner, store),
            KvCacheEventData::Removed(remove) => self.remove(owner, remove),
            KvCacheEventData::Cleared => {
                self.clear_owner(owner);
                Ok(())
            }
        }
    }

    fn find_matches(&self, query: &[LocalBlockHash]) -> OverlapScores {
        let mut scores = OverlapScores::default();
        let mut node = ROOT;
        let mut active = WorkerSet::new();
        let mut next = WorkerSet::new();
        let mut depth = 0u32;
        for (i, &local) in query.iter().enumerate() {
            let Some(child) = self.nodes[node as usize].children.get(local) else {
                break;
            };
            let owners = &self.nodes[child as usize].owners;
            if i == 0 {
                active.clone_from(owners);
            } else {
                next.assign_and(&active, owners);
                for slot in active.difference(&next) {
                    if let Some(o) = self.registry.owner(slot) {
                        scores.scores.insert(o, depth);
                    }
                }
                std::mem::swap(&mut active, &mut next);
            }
            if active.is_empty() {
                return scores;
            }
            depth += 1;
            node = child;
        }
        for slot in active.iter() {
            if let Some(o) = self.registry.owner(slot) {
                scores.scores.insert(o, depth);
            }
        }
        scores
    }

    fn remove_worker(&mut self, worker_id: WorkerId) {
        let gone: Vec<WorkerWithDpRank> = self
            .registry
            .owners()
            .filter(|o| o.worker_id == worker_id)
            .collect();
        for owner in gone {
            self.clear_owner(owner);
            self.registry.release(owner);
        }
    }

    fn dump_events(&self) -> Vec<RouterEvent> {
        let mut owners: Vec<WorkerWithDpRank> = self.lookup.keys().copied().collect();
        owners.sort();
        let mut out = Vec::new();
        for owner in owners {
            if let Some(slot) = self.registry.slot_of(owner) {
                self.dump_owner(owner, slot, &mut out);
            }
        }
        for (i, ev) in out.iter_mut().enumerate() {
            ev.event.event_id = i as u64;
        }
        out
    }
}
