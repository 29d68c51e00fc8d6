//! Jump search over the positional table.
//!
//! Start with the owners caching the query's first block. Probe `jump` positions ahead: if
//! every active owner still caches the query's block there, they cache everything in between
//! (no gap below their floor), so jump. Otherwise split the window in halves, probing each
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

/// Per-thread scratch reused across queries.
#[derive(Debug, Default)]
struct Scratch {
    state: QueryState,
    active: WorkerSet,
    probe: WorkerSet,
    /// One midpoint set per split level.
    mids: Vec<WorkerSet>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Matched depth per owner slot, appended to `out` as `(slot, depth)`.
pub(crate) fn search(
    shared: &Shared,
    query: &[LocalBlockHash],
    jump: usize,
    out: &mut Vec<(u32, u32)>,
) {
    if query.is_empty() {
        return;
    }
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let Scratch {
            state,
            active,
            probe,
            mids,
        } = &mut *s;
        state.reset();
        let jump = jump.max(1);
        // A window of `jump` positions splits at most ceil(log2(jump)) times.
        let levels = (usize::BITS - (jump - 1).leading_zeros()) as usize + 1;
        if mids.len() < levels {
            mids.resize_with(levels, WorkerSet::new);
        }
        search_with(shared, query, jump, state, active, probe, mids, out);
    });
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
    while cur < last {
        let mut next = (cur + jump).min(last);
        if next as u64 >= u64::from(limit) {
            next = cur + 1;
        }
        table.holders(query, next, state, Some(active), probe);
        if probe.same_as(active) {
            cur = next;
            continue;
        }
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
            // Out of levels (cannot happen for windows of at most `jump`): walk the window.
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
