//! The approximate-mode predictor against a naive model: a list of (worker, block, routed at,
//! order) records scanned linearly, with the same TTL and LRU rules.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use stator_kv_router::approx::ApproxIndexer;
use stator_kv_router::config::{ApproxCachePolicy, KvRouterConfig};
use stator_kv_router::protocols::WorkerWithDpRank;
use stator_tokens::{LocalBlockHash, SequenceHash, sequence_hashes};

const CAPACITY: usize = 6;
const TTL_SECS: u64 = 50;

#[derive(Debug, Clone)]
enum Op {
    Route { worker: u8, prompt: Vec<u8> },
    Advance(u8),
    Expire,
    Query(Vec<u8>),
    RemoveWorker(u8),
    Capacity { worker: u8, blocks: u8 },
}

fn prompt() -> impl Strategy<Value = Vec<u8>> {
    // A tiny alphabet makes shared prefixes, divergence and repeats common.
    prop::collection::vec(0u8..3, 0..8)
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, prompt()).prop_map(|(worker, prompt)| Op::Route { worker, prompt }),
        2 => (0u8..40).prop_map(Op::Advance),
        1 => Just(Op::Expire),
        3 => prompt().prop_map(Op::Query),
        1 => (0u8..3).prop_map(Op::RemoveWorker),
        1 => (0u8..3, 0u8..8).prop_map(|(worker, blocks)| Op::Capacity { worker, blocks }),
    ]
}

fn locals(prompt: &[u8]) -> Vec<LocalBlockHash> {
    prompt
        .iter()
        .map(|&t| LocalBlockHash(u64::from(t) + 100))
        .collect()
}

#[derive(Debug, Clone)]
struct Record {
    worker: WorkerWithDpRank,
    hash: SequenceHash,
    routed_at: Instant,
    order: u64,
}

struct Model {
    records: Vec<Record>,
    capacity: Vec<usize>,
    next_order: u64,
    ttl: Option<Duration>,
}

impl Model {
    fn route(&mut self, worker: WorkerWithDpRank, hashes: &[SequenceHash], now: Instant) {
        for &hash in hashes.iter().rev() {
            self.records
                .retain(|r| !(r.worker == worker && r.hash == hash));
            self.records.push(Record {
                worker,
                hash,
                routed_at: now,
                order: self.next_order,
            });
            self.next_order += 1;
        }
        self.fit(worker);
    }

    fn fit(&mut self, worker: WorkerWithDpRank) {
        let capacity = self.capacity[worker.worker_id as usize];
        while self.records.iter().filter(|r| r.worker == worker).count() > capacity {
            let oldest = self
                .records
                .iter()
                .enumerate()
                .filter(|(_, r)| r.worker == worker)
                .min_by_key(|(_, r)| r.order)
                .map(|(i, _)| i)
                .unwrap();
            self.records.remove(oldest);
        }
    }

    fn expire(&mut self, now: Instant) -> usize {
        let before = self.records.len();
        if let Some(ttl) = self.ttl {
            self.records.retain(|r| r.routed_at + ttl > now);
        }
        before - self.records.len()
    }

    fn depth(&self, worker: WorkerWithDpRank, query: &[LocalBlockHash]) -> u32 {
        sequence_hashes(query)
            .iter()
            .take_while(|h| {
                self.records
                    .iter()
                    .any(|r| r.worker == worker && r.hash == **h)
            })
            .count() as u32
    }
}

fn run(ops: &[Op], policy: ApproxCachePolicy) -> Result<(), TestCaseError> {
    let config = KvRouterConfig {
        router_ttl_secs: TTL_SECS as f64,
        approx_cache_policy: policy,
        approx_max_blocks_per_worker: CAPACITY,
        ..KvRouterConfig::default()
    };
    let mut approx = ApproxIndexer::new(&config);
    let mut model = Model {
        records: Vec::new(),
        capacity: vec![CAPACITY; 3],
        next_order: 0,
        ttl: (policy == ApproxCachePolicy::Ttl).then(|| Duration::from_secs(TTL_SECS)),
    };
    let workers: Vec<_> = (0..3).map(|i| WorkerWithDpRank::new(i, 0)).collect();
    let mut now = Instant::now();
    for op in ops {
        match op {
            Op::Route { worker, prompt } => {
                let worker = workers[usize::from(*worker)];
                let hashes = sequence_hashes(&locals(prompt));
                approx.record_routing(worker, &hashes, now);
                model.route(worker, &hashes, now);
            }
            Op::Advance(secs) => now += Duration::from_secs(u64::from(*secs)),
            Op::Expire => prop_assert_eq!(approx.expire(now), model.expire(now)),
            Op::Query(prompt) => {
                let query = locals(prompt);
                let scores = approx.find_matches(&query);
                for worker in &workers {
                    prop_assert_eq!(scores.depth(*worker), model.depth(*worker, &query));
                }
                prop_assert!(scores.scores.values().all(|&d| d > 0));
            }
            Op::RemoveWorker(worker) => {
                let worker = workers[usize::from(*worker)];
                approx.remove_worker(worker.worker_id);
                model.records.retain(|r| r.worker != worker);
                // A removed worker comes back with the configured bound.
                model.capacity[worker.worker_id as usize] = CAPACITY;
            }
            Op::Capacity { worker, blocks } => {
                let worker = workers[usize::from(*worker)];
                let before = model.records.len();
                model.capacity[worker.worker_id as usize] = usize::from(*blocks).min(CAPACITY);
                model.fit(worker);
                let evicted = approx.set_worker_capacity(worker, usize::from(*blocks));
                prop_assert_eq!(evicted, before - model.records.len());
            }
        }
        for worker in &workers {
            let held = model.records.iter().filter(|r| r.worker == *worker).count();
            prop_assert_eq!(approx.predicted_blocks(*worker), held);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn ttl_policy_matches_the_naive_model(ops in prop::collection::vec(op_strategy(), 0..60)) {
        run(&ops, ApproxCachePolicy::Ttl)?;
    }

    #[test]
    fn lru_policy_matches_the_naive_model(ops in prop::collection::vec(op_strategy(), 0..60)) {
        run(&ops, ApproxCachePolicy::Lru)?;
    }
}
