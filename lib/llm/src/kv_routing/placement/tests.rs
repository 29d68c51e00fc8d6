//! Unit tests of placement: candidates, pins, reported load, the queue.

use std::time::Duration;

use stator_kv_router::config::QueuePolicy;
use stator_kv_router::selector::SelectError;
use stator_tokens::{SaltSeed, block_hashes};

use super::*;

fn hashes(tokens: &[u32]) -> Vec<LocalBlockHash> {
    block_hashes(tokens, 4, SaltSeed::default())
}

fn request<'a>(id: &'a str, local: &'a [LocalBlockHash]) -> ScheduleRequest<'a> {
    ScheduleRequest {
        request_id: id,
        local_hashes: local,
        isl_tokens: local.len() as u64 * 4,
        ..ScheduleRequest::default()
    }
}

#[test]
fn only_live_instances_are_candidates_and_pins_are_honoured() {
    let mut placement = Placement::new(KvRouterConfig::default(), 4, Some(1));
    let tokens: Vec<u32> = (0..16).collect();
    let local = hashes(&tokens);
    let now = Instant::now();
    assert_eq!(
        placement.place(&request("a", &local), &OverlapScores::default(), now),
        Err(ScheduleError::Select(SelectError::NoWorkers))
    );
    placement.add_instance(1);
    placement.add_instance(2);
    let mut overlaps = OverlapScores::default();
    overlaps.scores.insert(WorkerWithDpRank::new(2, 0), 4);
    // A worker outside the live set never wins, however much it caches.
    overlaps.scores.insert(WorkerWithDpRank::new(9, 0), 4);
    let picked = placement
        .place(&request("a", &local), &overlaps, now)
        .unwrap();
    assert_eq!(picked.worker, WorkerWithDpRank::new(2, 0));
    assert_eq!(
        placement.place(&request("a", &local), &overlaps, now),
        Err(ScheduleError::DuplicateRequest("a".into()))
    );
    let pinned = ScheduleRequest {
        pinned_worker: Some(1),
        ..request("b", &local)
    };
    assert_eq!(
        placement
            .place(&pinned, &overlaps, now)
            .unwrap()
            .worker
            .worker_id,
        1
    );
    let gone = ScheduleRequest {
        pinned_worker: Some(7),
        ..request("c", &local)
    };
    assert_eq!(
        placement.place(&gone, &overlaps, now),
        Err(ScheduleError::UnknownWorker(7))
    );
    placement.remove_instance(2);
    assert_eq!(placement.active_requests(), 1);
    assert!(!placement.free("a"));
    assert!(placement.free("b"));
}

#[test]
fn reported_load_makes_a_worker_busy() {
    let config = KvRouterConfig {
        active_decode_blocks_threshold: Some(0.5),
        ..KvRouterConfig::default()
    };
    let mut placement = Placement::new(config, 4, Some(2));
    for id in [1, 2] {
        placement.add_instance(id);
        placement.set_capacity(
            id,
            WorkerCapacity {
                kv_total_blocks: Some(100),
                max_num_batched_tokens: None,
            },
        );
    }
    let full = |worker_id| ActiveLoad {
        worker_id,
        dp_rank: 0,
        active_decode_blocks: Some(80),
        active_prefill_tokens: None,
        kv_used_blocks: Some(80),
    };
    placement.report_load(full(1));
    let tokens: Vec<u32> = (0..8).collect();
    let local = hashes(&tokens);
    let now = Instant::now();
    let mut overlaps = OverlapScores::default();
    overlaps.scores.insert(WorkerWithDpRank::new(1, 0), 2);
    let picked = placement
        .place(&request("a", &local), &overlaps, now)
        .unwrap();
    assert_eq!(picked.worker.worker_id, 2);
    placement.report_load(full(2));
    assert_eq!(
        placement.place(&request("b", &local), &overlaps, now),
        Err(ScheduleError::Select(SelectError::AllWorkersBusy))
    );
    assert!(!placement.must_wait(), "no queue configured");
}

#[test]
fn queue_wakes_waiters_by_priority_when_room_frees() {
    let config = KvRouterConfig {
        queue_threshold: Some(1.0),
        queue_policy: QueuePolicy::Fcfs,
        active_prefill_tokens_threshold: Some(0),
        ..KvRouterConfig::default()
    };
    let mut placement = Placement::new(config, 4, Some(3));
    assert!(placement.queue_enabled());
    placement.add_instance(1);
    let tokens: Vec<u32> = (0..8).collect();
    let local = hashes(&tokens);
    let t0 = Instant::now();
    placement
        .place(&request("first", &local), &OverlapScores::default(), t0)
        .unwrap();
    assert!(placement.must_wait());
    let key = |secs, jump| QueueKey {
        strict_priority: 0,
        priority_jump: jump,
        effective_prefill_tokens: 8,
        arrival: t0 + Duration::from_secs(secs),
    };
    let mut low = placement.enqueue(key(1, 0.0));
    let mut high = placement.enqueue(key(2, 10.0));
    placement.pump();
    assert!(high.try_recv().is_err() && low.try_recv().is_err());
    placement.mark_prefill_completed("first");
    placement.pump();
    let admission = high.try_recv().expect("the higher priority leaves first");
    // Room remains, but the admitted request has not placed yet: nobody else is woken.
    placement.pump();
    assert!(low.try_recv().is_err());
    drop(admission);
    placement.close_queue();
    assert!(low.try_recv().is_err());
    assert_eq!(placement.queue_len(), 0);
}
