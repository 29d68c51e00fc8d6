//! Per-instance in-flight counts and fault inhibition.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

use crate::names::InstanceId;

/// Shared bookkeeping of a router: what each instance is doing and which are inhibited.
#[derive(Debug)]
pub(crate) struct LoadBook {
    inflight: DashMap<InstanceId, Arc<AtomicUsize>>,
    inhibited_until: DashMap<InstanceId, Instant>,
    inhibit_for: Duration,
}

/// Counts one request against an instance until dropped.
#[derive(Debug)]
pub(crate) struct InflightGuard(Arc<AtomicUsize>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl LoadBook {
    pub(crate) fn new(inhibit_for: Duration) -> Self {
        Self {
            inflight: DashMap::new(),
            inhibited_until: DashMap::new(),
            inhibit_for,
        }
    }

    /// Requests in flight on `id`.
    pub(crate) fn inflight(&self, id: InstanceId) -> usize {
        self.inflight
            .get(&id)
            .map_or(0, |c| c.load(Ordering::Acquire))
    }

    /// Starts counting one request on `id`.
    pub(crate) fn start(&self, id: InstanceId) -> InflightGuard {
        let counter = Arc::clone(self.inflight.entry(id).or_default().value());
        counter.fetch_add(1, Ordering::AcqRel);
        InflightGuard(counter)
    }

    /// Skips `id` for the inhibition window (no-op when the window is zero).
    pub(crate) fn report_down(&self, id: InstanceId) {
        if !self.inhibit_for.is_zero() {
            tracing::info!(instance = %id, window = ?self.inhibit_for, "inhibiting instance after a transport fault");
            self.inhibited_until
                .insert(id, Instant::now() + self.inhibit_for);
        }
    }

    /// Whether `id` is currently inhibited; expired entries are forgotten.
    pub(crate) fn is_inhibited(&self, id: InstanceId, now: Instant) -> bool {
        let until = self.inhibited_until.get(&id).map(|u| *u);
        match until {
            Some(until) if until > now => true,
            Some(_) => {
                self.inhibited_until.remove_if(&id, |_, u| *u <= now);
                false
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_and_inhibition_expires() {
        let book = LoadBook::new(Duration::from_secs(5));
        let id = InstanceId(7);
        let a = book.start(id);
        let b = book.start(id);
        assert_eq!(book.inflight(id), 2);
        drop(a);
        drop(b);
        assert_eq!(book.inflight(id), 0);
        let now = Instant::now();
        book.report_down(id);
        assert!(book.is_inhibited(id, now));
        assert!(!book.is_inhibited(id, now + Duration::from_secs(6)));
        assert!(!book.is_inhibited(id, now));
    }

    #[test]
    fn zero_window_disables_inhibition() {
        let book = LoadBook::new(Duration::ZERO);
        book.report_down(InstanceId(1));
        assert!(!book.is_inhibited(InstanceId(1), Instant::now()));
    }
}
