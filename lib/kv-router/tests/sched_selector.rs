//! Properties of worker selection: the argmin, overlap monotonicity, busy handling, seeding.

use proptest::prelude::*;
use rand::{SeedableRng, rngs::StdRng};
use stator_kv_router::config::KvRouterConfig;
use stator_kv_router::protocols::{OverlapScores, WorkerWithDpRank};
use stator_kv_router::selector::{RequestShape, SelectError, WorkerLoad, WorkerSelector};

fn load_strategy() -> impl Strategy<Value = WorkerLoad> {
    (0u64..5000, 0u64..500, 0u64..40, 0u64..64).prop_map(
        |(prefill, decode, requests, new_blocks)| WorkerLoad {
            active_prefill_tokens: prefill,
            active_decode_blocks: decode,
            active_requests: requests,
            new_decode_blocks: new_blocks,
            kv_total_blocks: Some(1000),
            max_num_batched_tokens: Some(2048),
        },
    )
}

fn config_strategy() -> impl Strategy<Value = KvRouterConfig> {
    (0.0f64..2.0, 0.0f64..2.0, 0.0f64..1.0, 0.0f64..2.0).prop_map(
        |(credit, scale, decay, request_weight)| KvRouterConfig {
            overlap_score_credit: credit,
            prefill_load_scale: scale,
            overlap_score_credit_decay: decay,
            decode_active_request_weight: request_weight,
            ..KvRouterConfig::default()
        },
    )
}

fn workers_strategy() -> impl Strategy<Value = Vec<(WorkerWithDpRank, WorkerLoad, u32)>> {
    prop::collection::vec((load_strategy(), 0u32..80), 1..8).prop_map(|loads| {
        loads
            .into_iter()
            .enumerate()
            .map(|(i, (load, overlap))| (WorkerWithDpRank::new(i as u64, 0), load, overlap))
            .collect()
    })
}

fn split(
    workers: &[(WorkerWithDpRank, WorkerLoad, u32)],
) -> (OverlapScores, Vec<(WorkerWithDpRank, WorkerLoad)>) {
    let mut overlaps = OverlapScores::default();
    for (worker, _, overlap) in workers {
        if *overlap > 0 {
            overlaps.scores.insert(*worker, *overlap);
        }
    }
    let loads = workers.iter().map(|(w, l, _)| (*w, *l)).collect();
    (overlaps, loads)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn temperature_zero_returns_a_min_cost_worker(
        config in config_strategy(),
        workers in workers_strategy(),
        isl in 0u64..2000,
        seed in any::<u64>(),
    ) {
        let selector = WorkerSelector::new(config);
        let request = RequestShape { isl_tokens: isl, block_size: 16 };
        let (overlaps, loads) = split(&workers);
        let costs = selector.costs(&request, &overlaps, &loads);
        let min = costs.iter().map(|c| c.logit).fold(f64::INFINITY, f64::min);
        let mut rng = StdRng::seed_from_u64(seed);
        let picked = selector.select(&request, &overlaps, &loads, &mut rng).unwrap();
        prop_assert_eq!(picked.logit.total_cmp(&min), std::cmp::Ordering::Equal);
        let chosen = costs.iter().find(|c| c.worker == picked.worker).unwrap();
        prop_assert_eq!(chosen.logit.total_cmp(&min), std::cmp::Ordering::Equal);
    }

    #[test]
    fn more_overlap_at_equal_load_is_never_worse(
        config in config_strategy(),
        load in load_strategy(),
        low in 0u32..100,
        extra in 1u32..100,
        isl in 0u64..4000,
    ) {
        let selector = WorkerSelector::new(config);
        let request = RequestShape { isl_tokens: isl, block_size: 16 };
        let worker = WorkerWithDpRank::new(1, 0);
        let less = selector.cost(&request, worker, low, &load);
        let more = selector.cost(&request, worker, low + extra, &load);
        prop_assert!(more.logit <= less.logit, "{more:?} vs {less:?}");
    }

    #[test]
    fn a_strictly_cheaper_worker_always_wins_at_temperature_zero(
        load in load_strategy(),
        overlap in 1u32..60,
        seed in any::<u64>(),
    ) {
        let selector = WorkerSelector::default();
        let request = RequestShape { isl_tokens: 60 * 16, block_size: 16 };
        let (cached, cold) = (WorkerWithDpRank::new(1, 0), WorkerWithDpRank::new(2, 0));
        let mut overlaps = OverlapScores::default();
        overlaps.scores.insert(cached, overlap);
        let mut rng = StdRng::seed_from_u64(seed);
        let picked = selector
            .select(&request, &overlaps, &[(cold, load), (cached, load)], &mut rng)
            .unwrap();
        prop_assert_eq!(picked.worker, cached);
    }

    #[test]
    fn sampling_never_picks_a_busy_worker(
        workers in workers_strategy(),
        threshold in 0u64..5000,
        temperature in 0.0f64..3.0,
        seed in any::<u64>(),
    ) {
        let config = KvRouterConfig {
            temperature,
            active_prefill_tokens_threshold: Some(threshold),
            ..KvRouterConfig::default()
        };
        let selector = WorkerSelector::new(config);
        let request = RequestShape { isl_tokens: 512, block_size: 16 };
        let (overlaps, loads) = split(&workers);
        let mut rng = StdRng::seed_from_u64(seed);
        let any_free = loads.iter().any(|(_, l)| !selector.is_busy(l));
        match selector.select(&request, &overlaps, &loads, &mut rng) {
            Ok(picked) => {
                let load = loads.iter().find(|(w, _)| *w == picked.worker).unwrap().1;
                prop_assert!(!selector.is_busy(&load));
            }
            Err(err) => {
                prop_assert_eq!(err, SelectError::AllWorkersBusy);
                prop_assert!(!any_free);
            }
        }
    }

    #[test]
    fn same_seed_same_choice(
        workers in workers_strategy(),
        temperature in 0.0f64..3.0,
        seed in any::<u64>(),
    ) {
        let selector = WorkerSelector::new(KvRouterConfig { temperature, ..KvRouterConfig::default() });
        let request = RequestShape { isl_tokens: 300, block_size: 16 };
        let (overlaps, loads) = split(&workers);
        let first = selector.select(&request, &overlaps, &loads, &mut StdRng::seed_from_u64(seed));
        let second = selector.select(&request, &overlaps, &loads, &mut StdRng::seed_from_u64(seed));
        prop_assert_eq!(first, second);
    }
}

#[test]
fn high_temperature_spreads_load_low_temperature_concentrates() {
    let selector_hot = WorkerSelector::new(KvRouterConfig {
        temperature: 100.0,
        ..KvRouterConfig::default()
    });
    let selector_cold = WorkerSelector::new(KvRouterConfig {
        temperature: 0.01,
        ..KvRouterConfig::default()
    });
    let request = RequestShape {
        isl_tokens: 160,
        block_size: 16,
    };
    let loads: Vec<_> = (0..4)
        .map(|i| {
            let load = WorkerLoad {
                active_decode_blocks: i * 10,
                ..WorkerLoad::default()
            };
            (WorkerWithDpRank::new(i, 0), load)
        })
        .collect();
    let overlaps = OverlapScores::default();
    let mut rng = StdRng::seed_from_u64(42);
    let mut hot = [0u32; 4];
    let mut cold = [0u32; 4];
    for _ in 0..2000 {
        let h = selector_hot
            .select(&request, &overlaps, &loads, &mut rng)
            .unwrap();
        hot[h.worker.worker_id as usize] += 1;
        let c = selector_cold
            .select(&request, &overlaps, &loads, &mut rng)
            .unwrap();
        cold[c.worker.worker_id as usize] += 1;
    }
    assert!(hot.iter().all(|&n| n > 350), "{hot:?}");
    assert_eq!(cold[0], 2000, "{cold:?}");
}
