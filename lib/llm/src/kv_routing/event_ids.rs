//! Per-publisher KV event id tracking: a worker numbers its events per (worker, DP rank), so a
//! jump means the router missed cache changes and its index may be wrong for that worker.

use rustc_hash::FxHashMap;
use stator_kv_router::protocols::WorkerWithDpRank;

/// How one event's id relates to the previous one from the same owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventIdCheck {
    /// The first event seen from this owner, or the next id.
    InOrder,
    /// Ids were skipped: this many events are missing.
    Gap(u64),
    /// An id at or below the last one (a replay or a reorder).
    Stale,
}

/// The last event id seen per owner.
#[derive(Debug, Default)]
pub(crate) struct EventIdTracker {
    last: FxHashMap<WorkerWithDpRank, u64>,
}

impl EventIdTracker {
    /// Record `event_id` from `owner`. The first event of an owner sets its baseline: a router
    /// that starts after a worker has not lost what it could not have seen.
    pub fn observe(&mut self, owner: WorkerWithDpRank, event_id: u64) -> EventIdCheck {
        match self.last.get_mut(&owner) {
            None => {
                self.last.insert(owner, event_id);
                EventIdCheck::InOrder
            }
            Some(last) if event_id <= *last => EventIdCheck::Stale,
            Some(last) => {
                let missed = event_id - *last - 1;
                *last = event_id;
                if missed == 0 {
                    EventIdCheck::InOrder
                } else {
                    EventIdCheck::Gap(missed)
                }
            }
        }
    }

    /// Forget a worker (all its ranks).
    pub fn remove_worker(&mut self, worker_id: u64) {
        self.last.retain(|owner, _| owner.worker_id != worker_id);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn gaps_and_stale_ids_per_owner() {
        let (a, b) = (WorkerWithDpRank::new(1, 0), WorkerWithDpRank::new(1, 1));
        let mut tracker = EventIdTracker::default();
        assert_eq!(tracker.observe(a, 5), EventIdCheck::InOrder);
        assert_eq!(tracker.observe(b, 0), EventIdCheck::InOrder);
        assert_eq!(tracker.observe(a, 6), EventIdCheck::InOrder);
        assert_eq!(tracker.observe(a, 9), EventIdCheck::Gap(2));
        assert_eq!(tracker.observe(a, 9), EventIdCheck::Stale);
        assert_eq!(tracker.observe(b, 1), EventIdCheck::InOrder);
        tracker.remove_worker(1);
        assert_eq!(tracker.observe(a, 0), EventIdCheck::InOrder);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The gaps reported add up to the ids that never arrived (ids arrive increasing).
        #[test]
        fn missed_ids_are_counted_exactly(mut ids in proptest::collection::btree_set(0u64..500, 1..60)) {
            let owner = WorkerWithDpRank::new(3, 0);
            let mut tracker = EventIdTracker::default();
            let first = *ids.first().expect("non-empty");
            let last = *ids.last().expect("non-empty");
            let mut missed = 0;
            for id in std::mem::take(&mut ids) {
                match tracker.observe(owner, id) {
                    EventIdCheck::Gap(n) => missed += n,
                    EventIdCheck::InOrder => {}
                    EventIdCheck::Stale => prop_assert!(false, "increasing ids are never stale"),
                }
                ids.insert(id);
            }
            prop_assert_eq!(missed, last - first + 1 - ids.len() as u64);
        }
    }
}
