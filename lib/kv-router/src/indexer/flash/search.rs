//! Jump search over the positional table.
//!
//! Start with the owners caching the query's first block. Probe `jump` positions ahead: if
//! every active owner still caches the query's block there, they cache everything in between
//! (no gap below their floor), so jump, doubling the jump (up to 16×) while nobody drops
//! out, so a long run shared by every active owner costs a logarithmic number of probes.
//! Otherwise go back to the base jump and split the window in halves, probing each
//! midpoint once, and recurse only into halves whose two ends differ: every owner that drops
//! out in the window is scored at its exact depth, and a probe serves every drop-out on its
//! side (one bisection per window rather than one per drop-out). The search then continues
//! from the window's end with its survivors. Owners with a gap (orphan) in reach are walked
//! one position at a time instead, which keeps answers exact.

use std::cell::RefCell;
use std::sync::Arc;

use super::Shared;
use super::slots::WIDE;
use super::table::{QueryState, Reader};
use crate::indexer::worker_set::WorkerSet;
use stator_tokens::LocalBlockHash;

/// How many times the jump may double while no owner drops out.
const GALLOP_DOUBLINGS: u32 = 4;

/// The longest window a search probes at once.
#[inline]
fn max_step(jump: usize) -> usize {
    jump.saturating_mul(1 << GALLOP_DOUBLINGS)
}

/// The owner sets a search runs on: one word of slot bits when every owner caching the
/// query's first block has a slot below `WIDE_SLOT` (the common case: plain integer
/// operations, nothing to clear or compare word by word), a [`WorkerSet`] otherwise.
trait SlotSet: Clone + Default {
    /// `out = active ∩ {owners caching query[position] under the query's prefix}`.
    fn probe(
        table: &mut Reader<'_>,
        query: &[LocalBlockHash],
        position: usize,
        state: &mut QueryState,
        active: &Self,
        out: &mut Self,
    );
    fn is_empty(&self) -> bool;
    fn same_as(&self, other: &Self) -> bool;
    /// Append `(slot, depth)` for every slot of `self` that is not in `rest`.
    fn push_missing(&self, rest: &Self, depth: u32, out: &mut Vec<(u32, u32)>);
    /// [`Shared::jump_limit`] of these owners.
    fn jump_limit(&self, shared: &Shared) -> u32;
}

impl SlotSet for u64 {
    #[inline]
    fn probe(
        table: &mut Reader<'_>,
        query: &[LocalBlockHash],
        position: usize,
        state: &mut QueryState,
        active: &Self,
        out: &mut Self,
    ) {
        // `active` has no `WIDE` bit, so wide owners (never active here) drop out.
        *out = table.holders_word(query, position, state) & active;
    }
    #[inline]
    fn is_empty(&self) -> bool {
        *self == 0
    }
    #[inline]
    fn same_as(&self, other: &Self) -> bool {
        self == other
    }
    #[inline]
    fn push_missing(&self, rest: &Self, depth: u32, out: &mut Vec<(u32, u32)>) {
        let mut missing = self & !rest;
        while missing != 0 {
            out.push((missing.trailing_zeros(), depth));
            missing &= missing - 1;
        }
    }
    #[inline]
    fn jump_limit(&self, shared: &Shared) -> u32 {
        let mut bits = *self;
        shared.jump_limit(std::iter::from_fn(|| {
            (bits != 0).then(|| {
                let slot = bits.trailing_zeros();
                bits &= bits - 1;
                slot
            })
        }))
    }
}

impl SlotSet for WorkerSet {
    #[inline]
    fn probe(
        table: &mut Reader<'_>,
        query: &[LocalBlockHash],
        position: usize,
        state: &mut QueryState,
        active: &Self,
        out: &mut Self,
    ) {
        table.holders(query, position, state, Some(active), out);
    }
    fn is_empty(&self) -> bool {
        WorkerSet::is_empty(self)
    }
    fn same_as(&self, other: &Self) -> bool {
        WorkerSet::same_as(self, other)
    }
    fn push_missing(&self, rest: &Self, depth: u32, out: &mut Vec<(u32, u32)>) {
        out.extend(self.difference(rest).map(|slot| (slot, depth)));
    }
    fn jump_limit(&self, shared: &Shared) -> u32 {
        shared.jump_limit(self.iter())
    }
}

/// The sets of one search: survivors, the last probe, one midpoint set per split level.
#[derive(Debug, Default)]
struct Sets<S> {
    active: S,
    probe: S,
    mids: Vec<S>,
}

/// Per-thread scratch reused across queries, so that a query allocates nothing here.
#[derive(Debug, Default)]
struct Scratch {
    state: QueryState,
    word: Sets<u64>,
    wide: Sets<WorkerSet>,
    /// The query's `(slot, depth)` answers, shard after shard.
    depths: Vec<(u32, u32)>,
    /// Where each shard's answers end in `depths`.
    ends: Vec<usize>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Search `query` in each of `shards` and hand `found` the matched depths of all of them at
/// once: `depths` holds `(slot, depth)` per owner slot, shard after shard, and `ends[i]` is
/// where shard `i`'s part ends (so the caller sizes its answer once). `found` must not search
/// again on this thread. The query's prefix identities are computed once for all shards.
pub(crate) fn search_all<R>(
    shards: &[Arc<Shared>],
    query: &[LocalBlockHash],
    jump: usize,
    found: impl FnOnce(&[(u32, u32)], &[usize]) -> R,
) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let Scratch {
            state,
            word,
            wide,
            depths,
            ends,
        } = &mut *s;
        state.reset();
        depths.clear();
        ends.clear();
        let jump = jump.max(1);
        for shared in shards {
            if !query.is_empty() {
                search_one(shared, query, jump, state, word, wide, depths);
            }
            ends.push(depths.len());
        }
        found(depths, ends)
    })
}

/// Search one shard, appending `(slot, depth)` to `depths`.
fn search_one(
    shared: &Shared,
    query: &[LocalBlockHash],
    jump: usize,
    state: &mut QueryState,
    word: &mut Sets<u64>,
    wide: &mut Sets<WorkerSet>,
    depths: &mut Vec<(u32, u32)>,
) {
    let mut table = shared.table.reader();
    let first = table.holders_word(query, 0, state);
    let search = Search {
        shared,
        query,
        jump,
        table,
        state,
        out: depths,
    };
    if first & WIDE == 0 {
        word.active = first;
        search.run(word);
    } else {
        let mut table = search.table;
        table.holders(query, 0, search.state, None, &mut wide.active);
        Search { table, ..search }.run(wide);
    }
}

/// One query's search: what a probe and a window split need besides the sets they compare.
struct Search<'a, 'q, 'r> {
    shared: &'a Shared,
    query: &'q [LocalBlockHash],
    jump: usize,
    table: Reader<'a>,
    state: &'r mut QueryState,
    out: &'r mut Vec<(u32, u32)>,
}

impl Search<'_, '_, '_> {
    /// Jump from position 0, whose holders are `sets.active`, to the query's end.
    fn run<S: SlotSet>(mut self, sets: &mut Sets<S>) {
        let Sets {
            active,
            probe,
            mids,
        } = sets;
        if active.is_empty() {
            return;
        }
        // A window of `w` positions splits at most ceil(log2(w)) times.
        let levels = (usize::BITS - (max_step(self.jump) - 1).leading_zeros()) as usize + 1;
        if mids.len() < levels {
            mids.resize_with(levels, S::default);
        }
        let last = self.query.len() - 1;
        let mut limit = active.jump_limit(self.shared);
        let mut cur = 0usize;
        let mut step = self.jump;
        while cur < last {
            let mut next = (cur + step).min(last);
            if next as u64 >= u64::from(limit) {
                next = cur + 1;
            }
            S::probe(&mut self.table, self.query, next, self.state, active, probe);
            if probe.same_as(active) {
                cur = next;
                // Nobody dropped out: gallop (long shared runs cost log probes, not length/jump).
                step = (step * 2).min(max_step(self.jump));
                continue;
            }
            step = self.jump;
            // Some owners drop out in (cur, next]; score each at its first missing position.
            self.split(cur, next, active, probe, mids);
            std::mem::swap(active, probe);
            if active.is_empty() {
                return;
            }
            cur = next;
            limit = active.jump_limit(self.shared);
        }
        active.push_missing(&S::default(), self.query.len() as u32, self.out);
    }

    /// Score the owners of `at_lo` (holders at `lo`) missing from `at_hi` (holders at `hi`,
    /// within `at_lo`) at the first position in `(lo, hi]` where they are missing.
    fn split<S: SlotSet>(&mut self, lo: usize, hi: usize, at_lo: &S, at_hi: &S, mids: &mut [S]) {
        if hi - lo == 1 {
            at_lo.push_missing(at_hi, hi as u32, self.out);
            return;
        }
        let Some((at_mid, deeper)) = mids.split_first_mut() else {
            // Out of levels (cannot happen for windows of at most `max_step`): walk the window.
            let mut prev = at_lo.clone();
            let mut here = S::default();
            for p in lo + 1..=hi {
                S::probe(&mut self.table, self.query, p, self.state, &prev, &mut here);
                prev.push_missing(&here, p as u32, self.out);
                std::mem::swap(&mut prev, &mut here);
            }
            return;
        };
        let mid = lo + (hi - lo) / 2;
        S::probe(&mut self.table, self.query, mid, self.state, at_lo, at_mid);
        if !at_mid.same_as(at_lo) {
            self.split(lo, mid, at_lo, at_mid, deeper);
        }
        if !at_mid.same_as(at_hi) {
            self.split(mid, hi, at_mid, at_hi, deeper);
        }
    }
}
