//! An O(1) least-recently-used set of sequence hashes (the pool of inactive cached blocks).

use rustc_hash::FxHashMap;
use stator_tokens::SequenceHash;

/// Neighbours of one entry in the intrusive doubly linked list.
#[derive(Debug, Clone, Copy)]
struct Links {
    /// Towards the least recently used end.
    older: Option<SequenceHash>,
    /// Towards the most recently used end.
    newer: Option<SequenceHash>,
}

/// A set of hashes ordered by recency of insertion; `pop_lru` takes the oldest.
#[derive(Debug, Default, Clone)]
pub(crate) struct LruSet {
    links: FxHashMap<SequenceHash, Links>,
    oldest: Option<SequenceHash>,
    newest: Option<SequenceHash>,
}

impl LruSet {
    /// Number of hashes in the set.
    pub(crate) fn len(&self) -> usize {
        self.links.len()
    }

    /// Whether `hash` is in the set.
    pub(crate) fn contains(&self, hash: SequenceHash) -> bool {
        self.links.contains_key(&hash)
    }

    /// Insert `hash` as the most recently used entry (moving it if already present).
    pub(crate) fn push_newest(&mut self, hash: SequenceHash) {
        self.remove(hash);
        let links = Links {
            older: self.newest,
            newer: None,
        };
        if let Some(prev) = self.newest {
            self.link_mut(prev).newer = Some(hash);
        } else {
            self.oldest = Some(hash);
        }
        self.newest = Some(hash);
        self.links.insert(hash, links);
    }

    /// Remove `hash`; returns whether it was present.
    pub(crate) fn remove(&mut self, hash: SequenceHash) -> bool {
        let Some(links) = self.links.remove(&hash) else {
            return false;
        };
        match links.older {
            Some(older) => self.link_mut(older).newer = links.newer,
            None => self.oldest = links.newer,
        }
        match links.newer {
            Some(newer) => self.link_mut(newer).older = links.older,
            None => self.newest = links.older,
        }
        true
    }

    /// Remove and return the least recently used hash.
    pub(crate) fn pop_oldest(&mut self) -> Option<SequenceHash> {
        let oldest = self.oldest?;
        self.remove(oldest);
        Some(oldest)
    }

    /// Iterate from the least to the most recently used hash.
    pub(crate) fn iter(&self) -> impl Iterator<Item = SequenceHash> + '_ {
        std::iter::successors(self.oldest, |hash| self.links[hash].newer)
    }

    /// Drop every entry.
    pub(crate) fn clear(&mut self) {
        self.links.clear();
        self.oldest = None;
        self.newest = None;
    }

    fn link_mut(&mut self, hash: SequenceHash) -> &mut Links {
        self.links
            .get_mut(&hash)
            .expect("linked neighbour is always present in the map")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[derive(Debug, Clone)]
    enum Op {
        Push(u64),
        Remove(u64),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..16).prop_map(Op::Push),
            (0u64..16).prop_map(Op::Remove),
            Just(Op::Pop),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn matches_a_deque_model(ops in proptest::collection::vec(op(), 0..200)) {
            let mut lru = LruSet::default();
            let mut model: VecDeque<u64> = VecDeque::new();
            for op in ops {
                match op {
                    Op::Push(h) => {
                        model.retain(|&x| x != h);
                        model.push_back(h);
                        lru.push_newest(SequenceHash(h));
                    }
                    Op::Remove(h) => {
                        let present = model.contains(&h);
                        model.retain(|&x| x != h);
                        prop_assert_eq!(lru.remove(SequenceHash(h)), present);
                    }
                    Op::Pop => {
                        prop_assert_eq!(lru.pop_oldest().map(|h| h.0), model.pop_front());
                    }
                }
                let order: Vec<u64> = lru.iter().map(|h| h.0).collect();
                prop_assert_eq!(order, model.iter().copied().collect::<Vec<_>>());
                prop_assert_eq!(lru.len(), model.len());
            }
        }
    }
}
