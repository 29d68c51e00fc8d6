//! An owner's held blocks: a record arena in chain order, and a sequence hash → record index
//! that is written once per stored block and never per removed block.
//!
//! A record is everything the owner knows about a block (position, local hash, parent, child
//! count) plus the record number of its parent. A `Stored` run takes consecutive records (free
//! records are reused last-in-first-out, and an engine evicts tail first, so the records a
//! chain gave back come out again in chain order), and a `Removed` event, which walks a chain
//! tail first, reaches each next block through the parent link of the block before it: the
//! removal touches records along the arena, not a random bucket per block.
//!
//! The index maps a sequence hash to its record through `(tag, record)` slots grouped in cache
//! lines of eight: a key hashes to a line, goes into the line's first vacant slot, and only
//! spills into the next line when its own is full. A probe compares all eight tags of a line at
//! once, so whether it hits, and where the vacant slot is, are bit masks rather than a branch
//! per slot: a store's probe (almost always "no match, a vacant slot here") is predicted right
//! even before its line arrives, where a slot-by-slot probe's first branch was a coin toss at
//! the index's load. A removal leaves its slot behind: a slot is only a hint, checked against
//! the record it names (live, same sequence hash) on every lookup, and stale slots are dropped
//! when the index is rebuilt from the live records (at half load, in place when the size is
//! unchanged, sized so that at least as many insertions as live blocks come between two
//! rebuilds). Since slots are never vacated between rebuilds, a line with a vacant slot ends
//! every probe that reaches it. The arena is compacted at a rebuild once most of it is free, so
//! removal really frees.

use stator_tokens::{LocalBlockHash, SequenceHash};

use super::slots::table_key;

/// The block is cached (a free record has no flag).
const LIVE: u32 = 1 << FLAGS_SHIFT;
/// `parent` names the block's parent.
const HAS_PARENT: u32 = 2 << FLAGS_SHIFT;
/// Flags sit above the position (positions are below 2^20).
const FLAGS_SHIFT: u32 = 24;
const POSITION_MASK: u32 = (1 << FLAGS_SHIFT) - 1;
/// No record (a parent link that names nothing).
const NO_RECORD: u32 = u32::MAX;
/// Index slots per cache line.
const LINE_SLOTS: usize = 8;
/// Index slots per live block after a rebuild (the rebuild comes at half load).
const SLOTS_PER_BLOCK: usize = 4;
/// The smallest index (lines).
const MIN_LINES: usize = 2;
/// Records behind the one being removed that a removal prefetches (a chain's records are
/// usually consecutive, so this is the chain's next blocks).
const PREFETCH_BEHIND: usize = 8;

/// One cached block of the owner.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held {
    pub(crate) seq: SequenceHash,
    pub(crate) local: LocalBlockHash,
    /// Parent sequence hash (meaningful with [`HAS_PARENT`]).
    pub(crate) parent: SequenceHash,
    /// Prefix fingerprint, 0 when unknown (stored without a known parent chain).
    pub(crate) fp: u64,
    /// Position, and the flags above it (0: free record).
    position_flags: u32,
    /// Cached blocks of this owner whose parent is this block.
    pub(crate) children: u32,
    /// Record of the parent when it was cached at this block's store (a hint: checked
    /// against the parent's sequence hash before use).
    parent_record: u32,
}

impl Held {
    /// A block at `position` (below 2^20) with prefix fingerprint `fp` (0 unknown) and
    /// `children` cached children.
    #[inline]
    pub(crate) fn new(
        seq: SequenceHash,
        local: LocalBlockHash,
        parent: Option<SequenceHash>,
        fp: u64,
        position: u32,
        children: u32,
    ) -> Self {
        debug_assert!(position <= POSITION_MASK, "position {position} too deep");
        let flags = if parent.is_some() {
            LIVE | HAS_PARENT
        } else {
            LIVE
        };
        Self {
            seq,
            local,
            parent: parent.unwrap_or(SequenceHash(0)),
            fp,
            position_flags: position | flags,
            children,
            parent_record: NO_RECORD,
        }
    }

    #[inline]
    pub(crate) fn position(&self) -> u32 {
        self.position_flags & POSITION_MASK
    }

    /// The block's key in the positional table.
    #[inline]
    pub(crate) fn table_key(&self) -> u64 {
        table_key(self.fp, self.seq.0)
    }

    /// The record of the parent when this block was stored (a hint, see
    /// [`HeldBlocks::find_parent_of`]).
    #[inline]
    pub(crate) fn parent_record(&self) -> usize {
        self.parent_record as usize
    }

    /// The parent, if the block was stored under one.
    #[inline]
    pub(crate) fn parent(&self) -> Option<SequenceHash> {
        (self.position_flags & HAS_PARENT != 0).then_some(self.parent)
    }

    #[inline]
    fn is_live(&self) -> bool {
        self.position_flags & LIVE != 0
    }

    /// The part of the block that settling its parent link after removal needs.
    #[inline]
    pub(crate) fn link(&self) -> ParentLink {
        ParentLink {
            parent: self.parent,
            position_flags: self.position_flags,
            parent_record: self.parent_record,
        }
    }
}

/// A removed block's parent, parent record hint and position (16 bytes, where the whole
/// [`Held`] is 48): what a removal carries from one named block to the next.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParentLink {
    parent: SequenceHash,
    position_flags: u32,
    parent_record: u32,
}

impl ParentLink {
    /// The removed block's parent, if it was stored under one.
    #[inline]
    pub(crate) fn parent(&self) -> Option<SequenceHash> {
        (self.position_flags & HAS_PARENT != 0).then_some(self.parent)
    }

    /// The removed block's position.
    #[inline]
    pub(crate) fn position(&self) -> u32 {
        self.position_flags & POSITION_MASK
    }
}

/// One cache line of the index: eight slots, slot `i` being `(tags[i], records[i])`; tag 0
/// marks a vacant slot (a block's tag is never 0, see [`tag`]).
#[derive(Debug, Clone, Copy)]
#[repr(C, align(64))]
struct IndexLine {
    tags: [u32; LINE_SLOTS],
    records: [u32; LINE_SLOTS],
}

/// An index line with every slot vacant.
const VACANT_LINE: IndexLine = IndexLine {
    tags: [0; LINE_SLOTS],
    records: [0; LINE_SLOTS],
};

impl IndexLine {
    /// The slots holding tag `t` and the vacant slots, as bit masks (bit `i`: slot `i`).
    #[inline]
    fn masks(&self, t: u32) -> (u32, u32) {
        (lanes_equal(&self.tags, t), lanes_equal(&self.tags, 0))
    }
}

/// Bit `i` set where `tags[i] == t`: two SSE2 compares, no branch per slot.
#[cfg(target_arch = "x86_64")]
#[inline]
#[expect(
    clippy::cast_ptr_alignment,
    reason = "the pointer is only read through unaligned loads"
)]
fn lanes_equal(tags: &[u32; LINE_SLOTS], t: u32) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_castsi128_ps, _mm_cmpeq_epi32, _mm_loadu_si128, _mm_movemask_ps,
        _mm_set1_epi32,
    };
    let p = tags.as_ptr().cast::<__m128i>();
    // SAFETY: `tags` is 32 readable bytes and the two unaligned loads read exactly those; SSE2
    // is part of the x86_64 baseline.
    let (lo, hi) = unsafe {
        let key = _mm_set1_epi32(t.cast_signed());
        let lo = _mm_cmpeq_epi32(_mm_loadu_si128(p), key);
        let hi = _mm_cmpeq_epi32(_mm_loadu_si128(p.add(1)), key);
        (
            _mm_movemask_ps(_mm_castsi128_ps(lo)),
            _mm_movemask_ps(_mm_castsi128_ps(hi)),
        )
    };
    (lo | hi << 4).cast_unsigned()
}

/// Bit `i` set where `tags[i] == t`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn lanes_equal(tags: &[u32; LINE_SLOTS], t: u32) -> u32 {
    tags.iter()
        .enumerate()
        .fold(0, |m, (i, &x)| m | (u32::from(x == t) << i))
}

/// Sequence hash → held block.
#[derive(Debug, Default)]
pub(crate) struct HeldBlocks {
    records: Vec<Held>,
    /// Free records, reused last in first out.
    free: Vec<u32>,
    /// The index lines (a power of two of them, or none).
    index: Box<[IndexLine]>,
    /// Live records.
    len: usize,
    /// Occupied slots (live or stale).
    used: usize,
    /// Occupied slots at which the next insertion needs a rebuild.
    grow_at: usize,
}

/// The line `seq` hashes to.
#[inline]
fn home(seq: SequenceHash, mask: usize) -> usize {
    (seq.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

/// The tag of `seq` in its slot: its high half, never 0 (0 marks a vacant slot).
#[inline]
fn tag(seq: SequenceHash) -> u32 {
    ((seq.0 >> 32) as u32).max(1)
}

impl HeldBlocks {
    /// Lines − 1.
    #[inline]
    fn mask(&self) -> usize {
        self.index.len().wrapping_sub(1)
    }

    /// Hint the CPU to fetch the index line of `seq`.
    #[inline]
    pub(crate) fn prefetch(&self, seq: SequenceHash) {
        if self.index.is_empty() {
            return;
        }
        let p: *const IndexLine = &raw const self.index[home(seq, self.mask())];
        super::prefetch_line(p.cast());
    }

    /// The record the index names first for `seq`, unchecked (a prefetch hint: it may be
    /// stale or another block's).
    #[inline]
    pub(crate) fn record_hint(&self, seq: SequenceHash) -> Option<usize> {
        self.probe(seq, |_| true)
    }

    /// Walks `seq`'s lines to the first slot with its tag that `accept`s the record the slot
    /// names (`Ok`), or to the first vacant slot (`Err`, as `line · 8 + slot`).
    #[inline]
    fn probe_lines(&self, seq: SequenceHash, accept: impl Fn(u32) -> bool) -> Result<usize, usize> {
        let mask = self.mask();
        let t = tag(seq);
        let mut l = home(seq, mask);
        loop {
            let line = &self.index[l];
            let (mut hits, vacant) = line.masks(t);
            while hits != 0 {
                let record = line.records[hits.trailing_zeros() as usize];
                if accept(record) {
                    return Ok(record as usize);
                }
                hits &= hits - 1;
            }
            if vacant != 0 {
                return Err(l * LINE_SLOTS + vacant.trailing_zeros() as usize);
            }
            l = (l + 1) & mask;
        }
    }

    /// The first slot with `seq`'s tag whose record `accept`s, if any.
    #[inline]
    fn probe(&self, seq: SequenceHash, accept: impl Fn(u32) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        self.probe_lines(seq, accept).ok()
    }

    /// Hint the CPU to fetch record `at` (any number: out of range is ignored).
    #[inline]
    pub(crate) fn prefetch_record(&self, at: usize) {
        if let Some(r) = self.records.get(at) {
            super::prefetch_line(std::ptr::from_ref(r).cast());
        }
    }

    /// The live block `seq` if record `at` holds it.
    #[inline]
    pub(crate) fn get_if(&self, at: usize, seq: SequenceHash) -> Option<&Held> {
        self.records.get(at).filter(|r| r.seq == seq && r.is_live())
    }

    /// Whether record `at` holds the live block `seq`.
    #[inline]
    fn holds(&self, at: u32, seq: SequenceHash) -> bool {
        self.records
            .get(at as usize)
            .is_some_and(|r| r.seq == seq && r.is_live())
    }

    /// The record of `seq`.
    #[inline]
    pub(crate) fn find(&self, seq: SequenceHash) -> Option<usize> {
        self.probe(seq, |at| self.holds(at, seq))
    }

    /// The record of `seq`, trying the parent link of `child` first (a removal walking a
    /// chain tail first names each block's parent next).
    #[inline]
    pub(crate) fn find_parent_of(&self, child: &ParentLink, seq: SequenceHash) -> Option<usize> {
        if self.holds(child.parent_record, seq) {
            Some(child.parent_record as usize)
        } else {
            self.find(seq)
        }
    }

    /// The block in record `at` (a result of [`Self::find`] or [`Self::find_or_vacant`]).
    #[inline]
    pub(crate) fn at(&self, at: usize) -> &Held {
        &self.records[at]
    }

    /// The block in record `at`, to update in place.
    #[inline]
    pub(crate) fn at_mut(&mut self, at: usize) -> &mut Held {
        &mut self.records[at]
    }

    /// Make room for `n` more blocks, so that the next `n` insertions rebuild nothing.
    /// Record numbers found before are stale afterwards.
    pub(crate) fn reserve(&mut self, n: usize) {
        if self.used + n > self.grow_at {
            self.rebuild(n);
        }
        if self.free.len() < n {
            self.records.reserve(n - self.free.len());
        }
    }

    /// The record of `seq` (`Ok`), or the vacant index slot where it goes (`Err`), found in
    /// one probe run. Needs room for one more block (see [`Self::reserve`]).
    #[inline]
    pub(crate) fn find_or_vacant(&self, seq: SequenceHash) -> Result<usize, usize> {
        debug_assert!(self.used < self.grow_at, "no room reserved");
        self.probe_lines(seq, |at| self.holds(at, seq))
    }

    /// Put `held`, whose parent is in record `parent_at`, into a free record and name it
    /// from index slot `slot` (an `Err` of [`Self::find_or_vacant`], with no insertion
    /// since); returns its record.
    #[inline]
    pub(crate) fn fill(&mut self, slot: usize, mut held: Held, parent_at: Option<usize>) -> usize {
        debug_assert!(held.is_live(), "a held block is live");
        held.parent_record = parent_at.map_or(NO_RECORD, |p| p as u32);
        let at = if let Some(at) = self.free.pop() {
            self.records[at as usize] = held;
            at
        } else {
            let at = u32::try_from(self.records.len())
                .ok()
                .filter(|&at| at != NO_RECORD)
                .expect("fewer than 2^32 - 1 blocks per owner");
            self.records.push(held);
            at
        };
        self.name(slot, held.seq, at);
        self.used += 1;
        self.len += 1;
        at as usize
    }

    /// Name record `at` of block `seq` from the vacant index slot `slot` (`line · 8 + slot`).
    #[inline]
    fn name(&mut self, slot: usize, seq: SequenceHash, at: u32) {
        let line = &mut self.index[slot / LINE_SLOTS];
        let i = slot % LINE_SLOTS;
        debug_assert_eq!(line.tags[i], 0, "slot {slot} is occupied");
        line.tags[i] = tag(seq);
        line.records[i] = at;
    }

    /// Remove the block in record `at`, returning it (its index slot stays, as a stale hint).
    #[inline]
    pub(crate) fn remove_at(&mut self, at: usize) -> Held {
        if let Some(ahead) = self.records.get(at.wrapping_sub(PREFETCH_BEHIND)) {
            super::prefetch_line(std::ptr::from_ref(ahead).cast());
        }
        let out = self.records[at];
        debug_assert!(out.is_live(), "record {at} is free");
        self.records[at].position_flags = 0;
        self.free.push(at as u32);
        self.len -= 1;
        out
    }

    /// Every held block, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Held> {
        self.records.iter().filter(|r| r.is_live())
    }

    /// Forget every block and release the memory.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    /// A fresh index of the live records with room for `n` more, after compacting the arena
    /// when most of it is free.
    fn rebuild(&mut self, n: usize) {
        if self.free.len() > self.len {
            self.compact();
        }
        let lines = ((self.len + n) * SLOTS_PER_BLOCK / LINE_SLOTS)
            .max(MIN_LINES)
            .next_power_of_two();
        if self.index.len() == lines {
            // Same size: refill in place (a fresh allocation costs page faults and zeroing).
            self.index.fill(VACANT_LINE);
        } else {
            self.index = vec![VACANT_LINE; lines].into_boxed_slice();
        }
        self.grow_at = lines * LINE_SLOTS / 2;
        self.used = self.len;
        for at in 0..self.records.len() {
            let r = &self.records[at];
            if !r.is_live() {
                continue;
            }
            let seq = r.seq;
            // Every live block is named once, so its probe finds no slot to accept.
            let Err(slot) = self.probe_lines(seq, |_| false) else {
                unreachable!("a probe that accepts nothing ends at a vacant slot");
            };
            self.name(slot, seq, at as u32);
        }
    }

    /// Move the live records to the front (in their order) and renumber the parent links.
    fn compact(&mut self) {
        let mut renumber = vec![NO_RECORD; self.records.len()];
        let mut next = 0u32;
        for (at, r) in self.records.iter().enumerate() {
            if r.is_live() {
                renumber[at] = next;
                next += 1;
            }
        }
        self.records.retain(Held::is_live);
        for r in &mut self.records {
            r.parent_record = renumber
                .get(r.parent_record as usize)
                .copied()
                .unwrap_or(NO_RECORD);
        }
        self.records.shrink_to(self.len * 2);
        self.free = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{Held, HeldBlocks, LINE_SLOTS, home, lanes_equal};
    use proptest::prelude::*;
    use stator_tokens::{LocalBlockHash, SequenceHash};

    #[test]
    fn keys_spill_into_the_next_line_when_their_line_is_full() {
        let mut table = HeldBlocks::default();
        table.reserve(12);
        let mask = table.mask();
        // Twelve keys of the last line: eight fill it, four wrap around into line 0.
        let keys: Vec<SequenceHash> = (1u64..)
            .map(|k| SequenceHash(k.wrapping_mul(0x2545_F491_4F6C_DD1D)))
            .filter(|&seq| home(seq, mask) == mask)
            .take(LINE_SLOTS + 4)
            .collect();
        for (n, &key) in (0u32..).zip(&keys) {
            let slot = table.find_or_vacant(key).expect_err("not held yet");
            table.fill(slot, Held::new(key, LocalBlockHash(0), None, 0, n, 0), None);
        }
        for (n, &key) in (0u32..).zip(&keys) {
            let at = table.find(key).expect("held");
            assert_eq!(table.at(at).position(), n);
        }
        // A removal leaves its slot behind: the keys that spilled past it stay reachable.
        let first = table.find(keys[0]).expect("held");
        table.remove_at(first);
        assert_eq!(table.find(keys[0]), None);
        assert!(keys[1..].iter().all(|&key| table.find(key).is_some()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn lanes_equal_sets_the_bit_of_every_equal_tag(
            tags in prop::array::uniform8(prop::sample::select(vec![0u32, 1, 7, u32::MAX])),
            t in prop::sample::select(vec![0u32, 1, 7, u32::MAX]),
        ) {
            let expected = (0..LINE_SLOTS).fold(0, |m, i| m | (u32::from(tags[i] == t) << i));
            prop_assert_eq!(lanes_equal(&tags, t), expected);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn behaves_like_a_hash_map(ops in prop::collection::vec((any::<bool>(), 0u64..64), 1..400)) {
            let mut table = HeldBlocks::default();
            let mut model = HashMap::new();
            let mut last = None;
            for (n, (insert, k)) in ops.into_iter().enumerate() {
                // Small keys collide on home buckets and tags a lot; spread some over the
                // high bits too.
                let key = SequenceHash(k.wrapping_mul(if k % 2 == 0 { 1 } else { 0x1_0000_0001 }));
                let n = n as u32;
                if insert {
                    table.reserve(1);
                    match table.find_or_vacant(key) {
                        Ok(at) => prop_assert_eq!(model.get(&key), Some(&table.at(at).position())),
                        Err(slot) => {
                            prop_assert!(!model.contains_key(&key));
                            let parent = n.is_multiple_of(2).then_some(key);
                            let hint = last.and_then(|l| table.find(l));
                            table.fill(slot, Held::new(key, LocalBlockHash(k), parent, 0, n, 0), hint);
                            model.insert(key, n);
                        }
                    }
                    last = Some(key);
                } else {
                    let removed = table.find(key).map(|at| table.remove_at(at).position());
                    prop_assert_eq!(removed, model.remove(&key));
                }
                prop_assert_eq!(table.len, model.len());
                prop_assert_eq!(table.iter().count(), model.len());
                for (mk, mv) in &model {
                    let at = table.find(*mk);
                    prop_assert_eq!(at.map(|at| table.at(at).position()), Some(*mv));
                    let parent = at.and_then(|at| table.at(at).parent());
                    prop_assert_eq!(parent, mv.is_multiple_of(2).then_some(*mk));
                    for other in table.iter() {
                        prop_assert_eq!(table.find_parent_of(&other.link(), *mk), at);
                    }
                }
            }
        }
    }
}
