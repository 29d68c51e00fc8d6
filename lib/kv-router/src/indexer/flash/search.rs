//! Jump search over the positional table.
//!
//! Start with the owners caching the query's first block. Probe `jump` positions ahead: if
//! every active owner still caches the query's block there, they cache everything in between
//! (no gap below their floor), so jump. Otherwise bisect the window for the first position
//! where some active owner drops out, score the dropped owners with that depth, and continue
//! from there with the survivors. Owners with a gap (orphan) in reach are walked one position
//! at a time instead, which keeps answers exact.

use std::cell::RefCell;

use super::Shared;
use super::table::QueryState;
use crate::indexer::worker_set::WorkerSet;
use stator_tokens::LocalBlockHash;

/// Per-thread scratch reused across queries.
#[derive(Debug, Default)]
struct Scratch {
    state: QueryState,
    active: WorkerSet,
    probe: WorkerSet,
    mid: WorkerSet,
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
            mid,
        } = &mut *s;
        state.reset();
        search_with(shared, query, jump.max(1), state, active, probe, mid, out);
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
    mid_set: &mut WorkerSet,
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
        // Some owner drops out in (cur, next]; find the first such position.
        let (mut lo, mut hi) = (cur, next);
        while hi - lo > 1 {
            let m = lo + (hi - lo) / 2;
            table.holders(query, m, state, Some(active), mid_set);
            if mid_set.same_as(active) {
                lo = m;
            } else {
                hi = m;
                std::mem::swap(probe, mid_set);
            }
        }
        for slot in active.difference(probe) {
            out.push((slot, hi as u32));
        }
        std::mem::swap(active, probe);
        if active.is_empty() {
            return;
        }
        cur = hi;
        limit = shared.jump_limit(active);
    }
    let depth = query.len() as u32;
    out.extend(active.iter().map(|slot| (slot, depth)));
}
