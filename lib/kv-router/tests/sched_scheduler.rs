//! The `KvScheduler` façade end to end: overlap-driven placement, load spreading, busy
//! rejection, queue saturation, approximate-mode memory and its expiry.

use std::time::{Duration, Instant};

use stator_kv_router::config::KvRouterConfig;
use stator_kv_router::protocols::{ActiveLoad, OverlapScores, WorkerWithDpRank};
use stator_kv_router::selector::{
    KvScheduler, ScheduleError, ScheduleRequest, SelectError, WorkerCapacity,
};
use stator_tokens::{LocalBlockHash, SaltSeed, block_hashes};

const BLOCK: u32 = 4;

fn w(id: u64) -> WorkerWithDpRank {
    WorkerWithDpRank::new(id, 0)
}

fn prompt(seed: u32, blocks: u32) -> Vec<LocalBlockHash> {
    let tokens: Vec<u32> = (0..blocks * BLOCK).map(|t| t + seed * 10_000).collect();
    block_hashes(&tokens, BLOCK as usize, SaltSeed::default())
}

fn request<'a>(id: &'a str, local: &'a [LocalBlockHash]) -> ScheduleRequest<'a> {
    ScheduleRequest {
        request_id: id,
        local_hashes: local,
        isl_tokens: local.len() as u64 * u64::from(BLOCK),
        ..ScheduleRequest::default()
    }
}

#[test]
fn indexer_overlap_attracts_and_load_spreads() {
    let mut scheduler = KvScheduler::with_seed(KvRouterConfig::default(), BLOCK, 7);
    for id in 1..=3 {
        scheduler.add_worker(w(id));
    }
    let local = prompt(1, 8);
    let mut overlaps = OverlapScores::default();
    overlaps.scores.insert(w(2), 8);
    let now = Instant::now();
    let first = scheduler
        .schedule(&request("a", &local), Some(&overlaps), now)
        .unwrap();
    assert_eq!(first.worker, w(2));
    assert_eq!(first.overlap_blocks, 8);
    // Unrelated prompts without overlap avoid the loaded worker.
    let mut used = Vec::new();
    for (i, id) in ["b", "c"].into_iter().enumerate() {
        let other = prompt(10 + i as u32, 8);
        let pick = scheduler.schedule(&request(id, &other), None, now).unwrap();
        assert_ne!(pick.worker, w(2));
        used.push(pick.worker);
    }
    assert_ne!(used[0], used[1]);
    assert_eq!(
        scheduler.schedule(&request("a", &local), None, now),
        Err(ScheduleError::DuplicateRequest("a".into()))
    );
    for id in ["a", "b", "c"] {
        assert!(scheduler.mark_prefill_completed(id));
        assert!(scheduler.free(id));
    }
    for id in 1..=3 {
        let load = scheduler.sequences().load(w(id)).unwrap();
        assert_eq!(
            (
                load.active_prefill_tokens,
                load.active_decode_blocks,
                load.active_requests
            ),
            (0, 0, 0)
        );
    }
}

#[test]
fn busy_workers_reject_and_saturation_queues() {
    let config = KvRouterConfig {
        active_prefill_tokens_threshold: Some(30),
        queue_threshold: Some(0.5),
        ..KvRouterConfig::default()
    };
    let mut scheduler = KvScheduler::with_seed(config, BLOCK, 3);
    let capacity = WorkerCapacity {
        kv_total_blocks: Some(100),
        max_num_batched_tokens: Some(40),
    };
    scheduler.add_worker(w(1));
    scheduler.add_worker(w(2));
    scheduler.set_worker_capacity(1, capacity);
    scheduler.set_worker_capacity(2, capacity);
    let now = Instant::now();
    let long = [prompt(1, 10), prompt(2, 10)];
    assert!(!scheduler.should_queue());
    scheduler
        .schedule(&request("x", &long[0]), None, now)
        .unwrap();
    assert!(!scheduler.should_queue());
    scheduler
        .schedule(&request("y", &long[1]), None, now)
        .unwrap();
    // Both workers now hold 40 prefill tokens: over 0.5 × 40 (queue) and over 30 (busy).
    assert!(scheduler.should_queue());
    let third = prompt(3, 2);
    assert_eq!(
        scheduler.schedule(&request("z", &third), None, now),
        Err(ScheduleError::Select(SelectError::AllWorkersBusy))
    );
    // Raising the threshold at run time admits it.
    let mut thresholds = scheduler.selector().config().busy_thresholds();
    thresholds.active_prefill_tokens_threshold = Some(1000);
    scheduler.set_busy_thresholds(thresholds);
    let fourth = prompt(4, 1);
    assert!(
        scheduler
            .schedule(&request("w", &fourth), None, now)
            .is_ok()
    );
    assert!(scheduler.mark_prefill_completed("x"));
    assert!(!scheduler.should_queue());
    assert!(scheduler.schedule(&request("z", &third), None, now).is_ok());
}

#[test]
fn approximate_mode_remembers_then_forgets() {
    let config = KvRouterConfig {
        use_kv_events: false,
        ..KvRouterConfig::default()
    };
    let mut scheduler = KvScheduler::with_seed(config, BLOCK, 11);
    scheduler.add_worker(w(1));
    scheduler.add_worker(w(2));
    let local = prompt(5, 6);
    let start = Instant::now();
    let first = scheduler
        .schedule(&request("a", &local), None, start)
        .unwrap();
    assert_eq!(first.overlap_blocks, 0);
    assert!(scheduler.free("a"));
    let again = scheduler
        .schedule(&request("b", &local), None, start + Duration::from_mins(1))
        .unwrap();
    assert_eq!(again.worker, first.worker);
    assert_eq!(again.overlap_blocks, 6);
    assert!(scheduler.free("b"));
    // Past the TTL of the last routing, the prediction is gone.
    let later = start + Duration::from_secs(60 + 121);
    assert!(scheduler.expire(later).is_empty());
    let approx = scheduler.approx().unwrap();
    assert!(approx.find_matches(&local).scores.is_empty());
    scheduler.remove_worker(first.worker.worker_id);
    assert_eq!(scheduler.sequences().workers().count(), 1);
}

#[test]
fn side_predictor_complements_the_indexer() {
    let config = KvRouterConfig {
        predicted_ttl_secs: Some(10.0),
        ..KvRouterConfig::default()
    };
    let mut scheduler = KvScheduler::with_seed(config, BLOCK, 5);
    scheduler.add_worker(w(1));
    scheduler.add_worker(w(2));
    let local = prompt(9, 5);
    let start = Instant::now();
    let mut indexer = OverlapScores::default();
    indexer.scores.insert(w(1), 2);
    let first = scheduler
        .schedule(&request("a", &local), Some(&indexer), start)
        .unwrap();
    assert_eq!((first.worker, first.overlap_blocks), (w(1), 2));
    assert!(scheduler.free("a"));
    // The indexer has not caught up yet; the prediction (5 blocks) wins over its 2.
    let second = scheduler
        .schedule(&request("b", &local), Some(&indexer), start)
        .unwrap();
    assert_eq!((second.worker, second.overlap_blocks), (w(1), 5));
    assert!(scheduler.free("b"));
    // After the side TTL only the indexer's answer is left.
    let later = start + Duration::from_secs(11);
    let third = scheduler
        .schedule(&request("c", &local), Some(&indexer), later)
        .unwrap();
    assert_eq!(third.overlap_blocks, 2);
}

#[test]
fn no_workers_is_an_error() {
    let mut scheduler = KvScheduler::new(KvRouterConfig::default(), BLOCK);
    let local = prompt(1, 1);
    assert_eq!(
        scheduler.schedule(&request("a", &local), None, Instant::now()),
        Err(ScheduleError::Select(SelectError::NoWorkers))
    );
}

#[test]
fn pins_bypass_busy_and_reported_load_counts() {
    let config = KvRouterConfig {
        active_prefill_tokens_threshold: Some(100),
        queue_threshold: Some(10.0),
        ..KvRouterConfig::default()
    };
    let mut scheduler = KvScheduler::with_seed(config, BLOCK, 5);
    scheduler.add_worker(w(1));
    scheduler.add_worker(w(2));
    scheduler.add_worker(WorkerWithDpRank::new(2, 1));
    let local = prompt(1, 2);
    let now = Instant::now();
    // Worker 1 reports more prefill work than the threshold: only worker 2's ranks remain.
    scheduler.report_load(ActiveLoad {
        worker_id: 1,
        dp_rank: 0,
        active_decode_blocks: None,
        active_prefill_tokens: Some(500),
        kv_used_blocks: None,
    });
    for id in ["a", "b", "c"] {
        let pick = scheduler.schedule(&request(id, &local), None, now).unwrap();
        assert_eq!(pick.worker.worker_id, 2);
    }
    // A pin goes where it says, busy or not, down to the rank.
    let pinned = ScheduleRequest {
        pinned_worker: Some(1),
        ..request("d", &local)
    };
    assert_eq!(scheduler.schedule(&pinned, None, now).unwrap().worker, w(1));
    let ranked = ScheduleRequest {
        pinned_worker: Some(2),
        pinned_dp_rank: Some(1),
        ..request("e", &local)
    };
    assert_eq!(
        scheduler.schedule(&ranked, None, now).unwrap().worker,
        WorkerWithDpRank::new(2, 1)
    );
    let unknown = ScheduleRequest {
        pinned_worker: Some(9),
        ..request("f", &local)
    };
    assert_eq!(
        scheduler.schedule(&unknown, None, now),
        Err(ScheduleError::UnknownWorker(9))
    );
    // Everyone busy by report: requests should wait.
    assert!(!scheduler.should_queue());
    for rank in [0, 1] {
        scheduler.report_load(ActiveLoad {
            worker_id: 2,
            dp_rank: rank,
            active_decode_blocks: None,
            active_prefill_tokens: Some(500),
            kv_used_blocks: None,
        });
    }
    assert!(scheduler.should_queue());
    scheduler.remove_worker(1);
    scheduler.remove_worker(2);
    assert!(!scheduler.should_queue());
    assert_eq!(
        scheduler.schedule(&request("g", &local), None, now),
        Err(ScheduleError::Select(SelectError::NoWorkers))
    );
}
