//! The BPE merge table and the merge loop of one word.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

/// `(left id, right id)` → `(rank, merged id)`; a lower rank merges first.
#[derive(Default)]
pub(crate) struct Merges {
    map: FxHashMap<u64, u64>,
}

fn key(left: u32, right: u32) -> u64 {
    (u64::from(left) << 32) | u64::from(right)
}

impl Merges {
    /// An empty table with room for `capacity` merges.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            map: FxHashMap::with_capacity_and_hasher(capacity, rustc_hash::FxBuildHasher),
        }
    }

    /// Adds a merge; a pair given again takes the later rank (as Hugging Face's map does).
    pub(crate) fn insert(&mut self, left: u32, right: u32, rank: u32, merged: u32) {
        self.map.insert(
            key(left, right),
            (u64::from(rank) << 32) | u64::from(merged),
        );
    }

    /// `(rank, merged id)` of a pair.
    #[inline]
    fn get(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        // The halves of the packed value are the rank and the merged id, by construction.
        #[expect(clippy::cast_possible_truncation, reason = "unpacking two u32 halves")]
        self.map
            .get(&key(left, right))
            .map(|&v| ((v >> 32) as u32, v as u32))
    }

    /// Heap bytes held (hashbrown: one `(u64, u64)` plus one control byte per bucket).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.map.capacity() * 8 / 7 * 17
    }

    /// Merges the symbols of one word in place, lowest rank first and leftmost among equal
    /// ranks, until no adjacent pair has a merge.
    pub(crate) fn merge(&self, word: &mut Vec<u32>, scratch: &mut MergeScratch) {
        if word.len() < 2 {
            return;
        }
        if word.len() <= SHORT_WORD {
            self.merge_short(word);
        } else {
            self.merge_long(word, scratch);
        }
    }

    /// Quadratic but allocation-free: rescans the pair ranks after each merge.
    fn merge_short(&self, word: &mut Vec<u32>) {
        let mut ranks = [(u32::MAX, 0u32); SHORT_WORD];
        let n = word.len();
        for i in 0..n - 1 {
            ranks[i] = self.get(word[i], word[i + 1]).unwrap_or((u32::MAX, 0));
        }
        let mut n = n;
        loop {
            let mut best = usize::MAX;
            let mut best_rank = u32::MAX;
            for (i, &(rank, _)) in ranks[..n - 1].iter().enumerate() {
                if rank < best_rank {
                    best_rank = rank;
                    best = i;
                }
            }
            if best == usize::MAX {
                break;
            }
            word[best] = ranks[best].1;
            word.remove(best + 1);
            ranks.copy_within(best + 2..n, best + 1);
            n -= 1;
            if best + 1 < n {
                ranks[best] = self
                    .get(word[best], word[best + 1])
                    .unwrap_or((u32::MAX, 0));
            }
            if best > 0 {
                ranks[best - 1] = self
                    .get(word[best - 1], word[best])
                    .unwrap_or((u32::MAX, 0));
            }
            if n < 2 {
                break;
            }
        }
        // `ranks[n - 1]` was stale after the shift; only `..n - 1` is ever read.
        debug_assert_eq!(word.len(), n);
    }

    /// Priority-queue merge over a linked list of symbols, for long words.
    fn merge_long(&self, word: &mut Vec<u32>, scratch: &mut MergeScratch) {
        let MergeScratch { symbols, queue } = scratch;
        symbols.clear();
        queue.clear();
        symbols.extend(word.iter().enumerate().map(|(i, &id)| Symbol {
            id,
            prev: i.wrapping_sub(1),
            next: i + 1,
            alive: true,
        }));
        let n = symbols.len();
        for i in 0..n - 1 {
            if let Some((rank, merged)) = self.get(symbols[i].id, symbols[i + 1].id) {
                queue.push(Reverse((rank, i, merged)));
            }
        }
        while let Some(Reverse((rank, pos, merged))) = queue.pop() {
            let left = symbols[pos];
            if !left.alive || left.next >= n {
                continue;
            }
            let right = symbols[left.next];
            // Skip entries made stale by an earlier merge of either side.
            if self.get(left.id, right.id) != Some((rank, merged)) {
                continue;
            }
            symbols[pos].id = merged;
            symbols[pos].next = right.next;
            symbols[left.next].alive = false;
            if right.next < n {
                symbols[right.next].prev = pos;
            }
            if left.prev < n
                && let Some((rank, m)) = self.get(symbols[left.prev].id, merged)
            {
                queue.push(Reverse((rank, left.prev, m)));
            }
            if right.next < n
                && let Some((rank, m)) = self.get(merged, symbols[right.next].id)
            {
                queue.push(Reverse((rank, pos, m)));
            }
        }
        word.clear();
        word.extend(symbols.iter().filter(|s| s.alive).map(|s| s.id));
    }
}

/// Words up to this many symbols take the allocation-free quadratic path.
const SHORT_WORD: usize = 48;

#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    /// Index of the previous alive symbol (`usize::MAX` for none).
    prev: usize,
    /// Index of the next alive symbol (`len` for none).
    next: usize,
    alive: bool,
}

/// Reusable buffers of [`Merges::merge`] for long words.
#[derive(Default)]
pub(crate) struct MergeScratch {
    symbols: Vec<Symbol>,
    queue: BinaryHeap<Reverse<(u32, usize, u32)>>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{MergeScratch, Merges};

    /// The textbook loop: merge the lowest-ranked adjacent pair (leftmost on ties) until none.
    fn reference(merges: &[(u32, u32, u32)], word: &[u32]) -> Vec<u32> {
        let mut word = word.to_vec();
        loop {
            let best = word
                .windows(2)
                .enumerate()
                .filter_map(|(i, w)| {
                    merges
                        .iter()
                        .enumerate()
                        .rev()
                        .find(|(_, m)| m.0 == w[0] && m.1 == w[1])
                        .map(|(rank, m)| (rank, i, m.2))
                })
                .min();
            let Some((_, i, merged)) = best else {
                return word;
            };
            word[i] = merged;
            word.remove(i + 1);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Both paths (short and long words) equal the textbook loop.
        #[test]
        fn merge_equals_the_textbook_loop(
            merges in proptest::collection::vec((0u32..6, 0u32..6, 0u32..12), 0..20),
            word in proptest::collection::vec(0u32..6, 0..120),
        ) {
            let mut table = Merges::default();
            for (rank, &(a, b, m)) in merges.iter().enumerate() {
                table.insert(a, b, rank as u32, m);
            }
            let mut ours = word.clone();
            table.merge(&mut ours, &mut MergeScratch::default());
            prop_assert_eq!(ours, reference(&merges, &word));
        }
    }
}
