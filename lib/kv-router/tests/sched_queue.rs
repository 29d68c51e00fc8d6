//! Scheduler queue ordering: pops follow (strict priority, policy score, arrival) for any
//! sequence of pushes and pops.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use stator_kv_router::config::QueuePolicy;
use stator_kv_router::queue::{QueueKey, SchedulerQueue};

#[derive(Debug, Clone)]
enum Op {
    Push {
        strict: u32,
        jump: i8,
        tokens: u16,
        arrival_ms: u32,
    },
    Pop,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u32..3, -3i8..4, 0u16..2000, 0u32..20_000).prop_map(|(strict, jump, tokens, arrival_ms)| {
            Op::Push { strict, jump, tokens, arrival_ms }
        }),
        1 => Just(Op::Pop),
    ]
}

/// The naive order: sort the waiting items by the documented key each time.
fn naive_best(waiting: &[(u64, QueueKey)], policy: QueuePolicy, epoch: Instant) -> usize {
    let score = |key: &QueueKey| match policy {
        QueuePolicy::Fcfs => {
            let offset = if key.arrival >= epoch {
                key.arrival.duration_since(epoch).as_secs_f64()
            } else {
                -epoch.duration_since(key.arrival).as_secs_f64()
            };
            key.priority_jump - offset
        }
        QueuePolicy::Wspt => (1.0 + key.priority_jump) / key.effective_prefill_tokens.max(1) as f64,
    };
    let mut best = 0;
    for (i, (seq, key)) in waiting.iter().enumerate().skip(1) {
        let (best_seq, best_key) = &waiting[best];
        let better = key
            .strict_priority
            .cmp(&best_key.strict_priority)
            .then_with(|| score(key).total_cmp(&score(best_key)))
            .then_with(|| best_seq.cmp(seq));
        if better == std::cmp::Ordering::Greater {
            best = i;
        }
    }
    best
}

fn run(ops: &[Op], policy: QueuePolicy) -> Result<(), TestCaseError> {
    let base = Instant::now();
    let mut queue = SchedulerQueue::new(policy);
    let mut waiting: Vec<(u64, QueueKey)> = Vec::new();
    let mut epoch = None;
    let mut seq = 0u64;
    for op in ops.iter().chain(std::iter::repeat_n(&Op::Pop, 64)) {
        match op {
            Op::Push {
                strict,
                jump,
                tokens,
                arrival_ms,
            } => {
                let key = QueueKey {
                    strict_priority: *strict,
                    priority_jump: f64::from(*jump),
                    effective_prefill_tokens: u64::from(*tokens),
                    arrival: base + Duration::from_millis(u64::from(*arrival_ms)),
                };
                epoch.get_or_insert(key.arrival);
                queue.push(seq, key);
                waiting.push((seq, key));
                seq += 1;
            }
            Op::Pop => {
                let expected = epoch.and_then(|epoch| {
                    (!waiting.is_empty())
                        .then(|| waiting.remove(naive_best(&waiting, policy, epoch)).0)
                });
                prop_assert_eq!(queue.peek().copied(), expected);
                prop_assert_eq!(queue.pop(), expected);
            }
        }
        prop_assert_eq!(queue.len(), waiting.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn fcfs_order_matches_the_naive_sort(ops in prop::collection::vec(op_strategy(), 0..60)) {
        run(&ops, QueuePolicy::Fcfs)?;
    }

    #[test]
    fn wspt_order_matches_the_naive_sort(ops in prop::collection::vec(op_strategy(), 0..60)) {
        run(&ops, QueuePolicy::Wspt)?;
    }

    #[test]
    fn fcfs_without_priorities_is_arrival_order(arrivals in prop::collection::vec(0u32..10_000, 0..40)) {
        let base = Instant::now();
        let mut queue = SchedulerQueue::new(QueuePolicy::Fcfs);
        for (i, ms) in arrivals.iter().enumerate() {
            queue.push(i, QueueKey {
                strict_priority: 0,
                priority_jump: 0.0,
                effective_prefill_tokens: 1,
                arrival: base + Duration::from_millis(u64::from(*ms)),
            });
        }
        let mut expected: Vec<usize> = (0..arrivals.len()).collect();
        expected.sort_by_key(|&i| (arrivals[i], i));
        prop_assert_eq!(queue.drain(), expected);
    }
}
