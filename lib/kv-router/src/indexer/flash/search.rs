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

use super::Shared;
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

/// Per-thread scratch reused across queries, so that a query allocates nothing here.
#[derive(Debug, Default)]
struct Scratch {
    state: QueryState,
    active: WorkerSet,
    probe: WorkerSet,
    /// One midpoint set per split level.
    mids: Vec<WorkerSet>,
    /// The query's `(slot, depth)` answers.
    depths: Vec<(u32, u32)>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Search `query` and hand the matched depth per owner slot, as `(slot, depth)`, to
/// `finish` (which must not search again on this thread).
pub(crate) fn search<R>(
    shared: &Shared,
    query: &[LocalBlockHash],
    jump: usize,
    finish: impl FnOnce(&[(u32, u32)]) -> R,
) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let Scratch {
            state,
            active,
            probe,
            mids,
            depths,
        } = &mut *s;
        depths.clear();
        if !query.is_empty() {
            state.reset();
            let jump = jump.max(1);
            // A window of `w` positions splits at most ceil(log2(w)) times.
            let levels = (usize::BITS - (max_step(jump) - 1).leading_zeros()) as usize + 1;
            if mids.len() < levels {
                mids.resize_with(levels, WorkerSet::new);
            }
            search_with(shared, query, jump, state, active, probe, mids, depths);
        }
        finish(depths)
    })
}

#[allow(clippy::too_many_arguments)]
fn search_with(
    shared: &Shared,
    query: &[LocalBlockHash],
    jump: usize,
    state: &mut QueryState,
    active: &mut WorkerSet,
    probe: &mut WorkerSet,
    mids: &mut [WorkerSet],
    out: &mut Vec<(u32, u32)>,
) {
    let mut table = shared.table.reader();
    let last = query.len() - 1;
    table.holders(query, 0, state, None, active);
    if active.is_empty() {
        return;
    }
    let mut limit = shared.jump_limit(active);
    let mut cur = 0usize;
    let mut step = jump;
    while cur < last {
        let mut next = (cur + step).min(last);
        if next as u64 >= u64::from(limit) {
            next = cur + 1;
        }
        table.holders(query, next, state, Some(active), probe);
        if probe.same_as(active) {
            cur = next;
            // Nobody dropped out: gallop (long shared runs cost log probes, not length/jump).
            step = (step * 2).min(max_step(jump));
            continue;
        }
        step = jump;
        // Some owners drop out in (cur, next]; score each at its first missing position.
        let mut window = Window {
            table: &mut table,
            query,
            state,
            out,
        };
        window.split(cur, next, active, probe, mids);
        std::mem::swap(active, probe);
        if active.is_empty() {
            return;
        }
        cur = next;
        limit = shared.jump_limit(active);
    }
    let depth = query.len() as u32;
    out.extend(active.iter().map(|slot| (slot, depth)));
}

/// What a window split needs besides the sets it compares.
struct Window<'r, 'a, 'q> {
    table: &'r mut Reader<'a>,
    query: &'q [LocalBlockHash],
    state: &'r mut QueryState,
    out: &'r mut Vec<(u32, u32)>,
}

impl Window<'_, '_, '_> {
    /// Score the owners of `at_lo` (holders at `lo`) missing from `at_hi` (holders at `hi`,
    /// within `at_lo`) at the first position in `(lo, hi]` where they are missing.
    fn split(
        &mut self,
        lo: usize,
        hi: usize,
        at_lo: &WorkerSet,
        at_hi: &WorkerSet,
        mids: &mut [WorkerSet],
    ) {
        if hi - lo == 1 {
            self.out
                .extend(at_lo.difference(at_hi).map(|slot| (slot, hi as u32)));
            return;
        }
        let Some((at_mid, deeper)) = mids.split_first_mut() else {
            // Out of levels (cannot happen for windows of at most `max_step`): walk the window.
            let mut prev = at_lo.clone();
            let mut here = WorkerSet::new();
            for p in lo + 1..=hi {
                self.table
                    .holders(self.query, p, self.state, Some(&prev), &mut here);
                self.out
                    .extend(prev.difference(&here).map(|slot| (slot, p as u32)));
                std::mem::swap(&mut prev, &mut here);
            }
            return;
        };
        let mid = lo + (hi - lo) / 2;
        self.table
            .holders(self.query, mid, self.state, Some(at_lo), at_mid);
        if !at_mid.same_as(at_lo) {
            self.split(lo, mid, at_lo, at_mid, deeper);
        }
        if !at_mid.same_as(at_hi) {
            self.split(mid, hi, at_mid, at_hi, deeper);
        }
    }
}
