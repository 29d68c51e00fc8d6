//! Behaviour of the simulator through its public API.

use std::collections::HashMap;

use stator_kv_router::protocols::KvCacheEventData;
use stator_mocker::{
    FinishReason, FinishedRequest, MockRequest, MockerConfig, MockerError, RequestId, Simulator,
    StepOutput, timing,
};

fn small() -> MockerConfig {
    MockerConfig {
        block_size: 4,
        num_gpu_blocks: 64,
        speedup_ratio: 0.0,
        ..MockerConfig::default()
    }
}

/// Step until idle (bounded), collecting every pass.
fn run_to_idle(sim: &mut Simulator, max_steps: usize) -> Vec<StepOutput> {
    let mut passes = Vec::new();
    while !sim.is_idle() {
        assert!(passes.len() < max_steps, "simulator did not drain");
        passes.push(sim.step());
    }
    passes
}

fn finished(passes: &[StepOutput]) -> HashMap<RequestId, FinishedRequest> {
    passes
        .iter()
        .flat_map(|p| p.finished.iter().map(|f| (f.request_id, *f)))
        .collect()
}

#[test]
fn a_request_runs_to_max_tokens_with_usage() {
    let mut sim = Simulator::new(small(), 1).unwrap();
    sim.add_request(MockRequest::new(RequestId(5), (0..10).collect(), 4))
        .unwrap();
    let passes = run_to_idle(&mut sim, 100);
    assert_eq!(passes.len(), 4, "one prefill pass then three decodes");
    assert_eq!(passes[0].prefill_tokens, 10);
    assert_eq!(passes[1].decode_requests, 1);
    let tokens: Vec<_> = passes.iter().flat_map(|p| p.tokens.clone()).collect();
    assert_eq!(tokens.len(), 4);
    assert!(tokens[..3].iter().all(|t| t.finish.is_none()));
    assert_eq!(tokens[3].finish, Some(FinishReason::Length));
    let done = finished(&passes)[&RequestId(5)];
    assert_eq!((done.prompt_tokens, done.output_tokens), (10, 4));
    assert_eq!(done.cached_tokens, 0);
    assert!(!sim.contains(RequestId(5)));
    assert_eq!(sim.block_usage().in_use(), 0);
}

#[test]
fn requests_are_validated() {
    let mut sim = Simulator::new(small(), 1).unwrap();
    let mut no_max = MockRequest::new(RequestId(1), vec![1, 2], 1);
    no_max.max_tokens = None;
    assert_eq!(
        sim.add_request(no_max.clone()),
        Err(MockerError::MissingMaxTokens)
    );
    assert_eq!(
        sim.add_request(MockRequest::new(RequestId(1), vec![], 1)),
        Err(MockerError::EmptyPrompt)
    );
    assert_eq!(
        sim.add_request(MockRequest::new(RequestId(1), vec![1], 0)),
        Err(MockerError::ZeroMaxTokens)
    );
    let mut min_above = MockRequest::new(RequestId(1), vec![1], 2);
    min_above.min_tokens = 3;
    assert!(matches!(
        sim.add_request(min_above),
        Err(MockerError::MinTokensAboveMax { .. })
    ));
    assert!(matches!(
        sim.add_request(MockRequest::new(RequestId(1), vec![1; 250], 10)),
        Err(MockerError::ExceedsKvCache {
            needed_blocks: 65,
            ..
        })
    ));
    sim.add_request(MockRequest::new(RequestId(1), vec![1], 1))
        .unwrap();
    assert_eq!(
        sim.add_request(MockRequest::new(RequestId(1), vec![1], 1)),
        Err(MockerError::DuplicateRequest(RequestId(1)))
    );

    let mut with_default = Simulator::new(
        MockerConfig {
            default_max_tokens: Some(2),
            ..small()
        },
        1,
    )
    .unwrap();
    no_max.id = RequestId(9);
    with_default.add_request(no_max).unwrap();
    assert_eq!(
        finished(&run_to_idle(&mut with_default, 10))[&RequestId(9)].output_tokens,
        2
    );

    let unchunked = MockerConfig {
        enable_chunked_prefill: false,
        max_num_batched_tokens: 16,
        ..small()
    };
    let mut sim = Simulator::new(unchunked, 1).unwrap();
    assert!(matches!(
        sim.add_request(MockRequest::new(RequestId(1), vec![1; 15], 3)),
        Err(MockerError::ExceedsBatchBudget { tokens: 17, .. })
    ));
    assert!(matches!(
        Simulator::new(
            MockerConfig {
                block_size: 0,
                ..small()
            },
            1
        ),
        Err(MockerError::InvalidConfig(_))
    ));
}

#[test]
fn a_shared_prefix_is_served_from_the_cache() {
    let mut sim = Simulator::new(small(), 1).unwrap();
    let prefix: Vec<u32> = (100..112).collect(); // three full blocks
    sim.add_request(MockRequest::new(RequestId(1), prefix.clone(), 2))
        .unwrap();
    run_to_idle(&mut sim, 100);

    let mut longer = prefix.clone();
    longer.extend([7, 8, 9]);
    sim.add_request(MockRequest::new(RequestId(2), longer, 2))
        .unwrap();
    let passes = run_to_idle(&mut sim, 100);
    assert_eq!(passes[0].prefill_tokens, 3, "only the suffix is computed");
    assert_eq!(finished(&passes)[&RequestId(2)].cached_tokens, 12);

    // A fully cached prompt still computes its last block (at least one token must run).
    sim.add_request(MockRequest::new(RequestId(3), prefix, 2))
        .unwrap();
    let passes = run_to_idle(&mut sim, 100);
    assert_eq!(finished(&passes)[&RequestId(3)].cached_tokens, 8);
    assert_eq!(passes[0].prefill_tokens, 4);

    // A different cache salt shares nothing.
    let mut salted = MockRequest::new(RequestId(4), (100..112).collect(), 1);
    salted.salt = stator_tokens::SaltSeed::new(Some("other-tenant"), None);
    sim.add_request(salted).unwrap();
    assert_eq!(
        finished(&run_to_idle(&mut sim, 100))[&RequestId(4)].cached_tokens,
        0
    );
}

#[test]
fn without_prefix_caching_nothing_is_reused_or_published() {
    let config = MockerConfig {
        enable_prefix_caching: false,
        ..small()
    };
    let mut sim = Simulator::new(config, 1).unwrap();
    for id in 0..3 {
        sim.add_request(MockRequest::new(RequestId(id), (0..20).collect(), 5))
            .unwrap();
        let passes = run_to_idle(&mut sim, 100);
        assert!(passes.iter().all(|p| p.events.is_empty()));
        assert_eq!(finished(&passes)[&RequestId(id)].cached_tokens, 0);
    }
    assert!(sim.cached_blocks().is_empty());
    sim.reset();
    assert!(sim.drain_events().is_empty());
}

#[test]
fn lifo_preemption_recomputes_and_completes_everything() {
    // 6 blocks of 4 tokens; each request needs up to 3 blocks, two start together.
    let config = MockerConfig {
        num_gpu_blocks: 6,
        ..small()
    };
    let mut sim = Simulator::new(config, 1).unwrap();
    for id in 0..4u64 {
        let prompt: Vec<u32> = (0..7).map(|t| id as u32 * 50 + t).collect();
        sim.add_request(MockRequest::new(RequestId(id), prompt, 6))
            .unwrap();
    }
    let passes = run_to_idle(&mut sim, 1000);
    let preempted: Vec<RequestId> = passes.iter().flat_map(|p| p.preempted.clone()).collect();
    assert!(
        !preempted.is_empty(),
        "the tiny cache must force preemption"
    );
    // The first admitted request is never the victim while others run.
    assert!(!preempted.contains(&RequestId(0)));
    let done = finished(&passes);
    assert_eq!(done.len(), 4);
    assert!(done.values().all(|f| f.output_tokens == 6));
    assert_eq!(sim.block_usage().in_use(), 0);
}

#[test]
fn eos_policy_is_explicit() {
    let config = MockerConfig {
        eos_probability: 1.0,
        vocab_size: 8,
        ..small()
    };
    let mut sim = Simulator::new(config, 1).unwrap();
    let mut stops = MockRequest::new(RequestId(1), vec![1, 2, 3], 10);
    stops.eos_token_ids = vec![5, 6];
    stops.min_tokens = 3;
    let mut ignores = stops.clone();
    ignores.id = RequestId(2);
    ignores.ignore_eos = true;
    sim.add_request(stops).unwrap();
    sim.add_request(ignores).unwrap();
    let passes = run_to_idle(&mut sim, 100);
    let mut tokens: HashMap<RequestId, Vec<u32>> = HashMap::new();
    for t in passes.iter().flat_map(|p| &p.tokens) {
        tokens.entry(t.request_id).or_default().push(t.token_id);
    }
    let done = finished(&passes);
    // min_tokens random tokens, then the first EOS id.
    assert_eq!(done[&RequestId(1)].reason, FinishReason::Eos);
    assert_eq!(tokens[&RequestId(1)].len(), 4);
    assert_eq!(tokens[&RequestId(1)][3], 5);
    // Random tokens never hit an EOS id by accident.
    assert!(
        tokens[&RequestId(1)][..3]
            .iter()
            .all(|t| ![5, 6].contains(t))
    );
    assert_eq!(done[&RequestId(2)].reason, FinishReason::Length);
    assert_eq!(tokens[&RequestId(2)].len(), 10);
    assert!(
        tokens[&RequestId(2)]
            .iter()
            .all(|t| *t < 8 && ![5, 6].contains(t))
    );
}

#[test]
fn same_seed_same_tokens() {
    let run = || {
        let mut sim = Simulator::new(small(), 42).unwrap();
        sim.add_request(MockRequest::new(RequestId(1), vec![1, 2, 3], 20))
            .unwrap();
        run_to_idle(&mut sim, 100)
            .iter()
            .flat_map(|p| p.tokens.iter().map(|t| t.token_id).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn cancel_and_reset_free_blocks_and_reset_clears_the_index() {
    let mut sim = Simulator::new(small(), 1).unwrap();
    sim.add_request(MockRequest::new(RequestId(1), (0..9).collect(), 50))
        .unwrap();
    sim.add_request(MockRequest::new(RequestId(2), (50..59).collect(), 50))
        .unwrap();
    sim.step();
    sim.step();
    assert!(sim.block_usage().in_use() > 0);
    let cancelled = sim.cancel(RequestId(1)).unwrap();
    assert_eq!(cancelled.reason, FinishReason::Cancelled);
    assert_eq!(cancelled.output_tokens, 2);
    assert!(sim.cancel(RequestId(1)).is_none());
    assert!(
        !sim.cached_blocks().is_empty(),
        "cancel keeps cached blocks"
    );
    let reset = sim.reset();
    assert_eq!(reset.len(), 1);
    assert_eq!(sim.block_usage().free, sim.block_usage().total);
    let events = sim.drain_events();
    assert_eq!(events.last().unwrap().event.data, KvCacheEventData::Cleared);
    assert!(sim.cached_blocks().is_empty());
}

#[test]
fn pass_duration_follows_the_timing_model() {
    let config = MockerConfig {
        speedup_ratio: 2.0,
        ..small()
    };
    let mut sim = Simulator::new(config, 1).unwrap();
    sim.add_request(MockRequest::new(RequestId(1), (0..100).collect(), 2))
        .unwrap();
    let prefill = sim.step();
    let expected = timing::prefill_ms(100) / 2.0;
    assert!((prefill.duration.as_secs_f64() * 1000.0 - expected).abs() < 1e-6);
    let decode = sim.step();
    let usage = 101.0 / (64.0 * 4.0);
    let expected = timing::decode_ms(usage) / 2.0;
    assert!((decode.duration.as_secs_f64() * 1000.0 - expected).abs() < 1e-6);
}

#[test]
fn load_metrics_track_prefill_and_decode() {
    let config = MockerConfig {
        max_num_batched_tokens: 8,
        ..small()
    };
    let mut sim = Simulator::new(config, 9).unwrap();
    sim.add_request(MockRequest::new(RequestId(1), (0..20).collect(), 3))
        .unwrap();
    let load = sim.load_metrics();
    assert_eq!(load.active_prefill_tokens, 20);
    assert_eq!(load.active_decode_blocks, 0);
    assert_eq!((load.num_waiting, load.num_running), (1, 0));
    sim.step(); // 8 of 20 prompt tokens
    let load = sim.load_metrics();
    assert_eq!(load.active_prefill_tokens, 12);
    assert_eq!(load.active_decode_blocks, 2);
    assert_eq!(load.worker_id, 9);
    assert!((load.kv_usage() - 2.0 / 64.0).abs() < 1e-12);
    sim.step();
    sim.step(); // prefill done, first token out
    let load = sim.load_metrics();
    assert_eq!(load.active_prefill_tokens, 0);
    assert_eq!(load.active_decode_blocks, 5);
}

#[test]
fn chunked_prefill_off_runs_a_prompt_whole() {
    let config = MockerConfig {
        enable_chunked_prefill: false,
        max_num_batched_tokens: 32,
        ..small()
    };
    let mut sim = Simulator::new(config, 1).unwrap();
    sim.add_request(MockRequest::new(RequestId(1), vec![1; 20], 2))
        .unwrap();
    sim.add_request(MockRequest::new(RequestId(2), vec![2; 20], 2))
        .unwrap();
    let first = sim.step();
    assert_eq!(
        first.prefill_tokens, 20,
        "the second prompt does not fit whole"
    );
    let second = sim.step();
    assert_eq!((second.prefill_tokens, second.decode_requests), (20, 1));
}

#[test]
fn a_long_prompt_is_chunked_to_the_token_budget() {
    let config = MockerConfig {
        max_num_batched_tokens: 8,
        ..small()
    };
    let mut sim = Simulator::new(config, 1).unwrap();
    sim.add_request(MockRequest::new(RequestId(1), (0..20).collect(), 2))
        .unwrap();
    let passes = run_to_idle(&mut sim, 100);
    let prefill: Vec<usize> = passes.iter().map(|p| p.prefill_tokens).collect();
    assert_eq!(prefill, [8, 8, 4, 0]);
    assert!(
        passes[..2].iter().all(|p| p.tokens.is_empty()),
        "no token before the prompt is done"
    );
    assert_eq!(passes[2].tokens.len(), 1);
}

#[test]
fn the_simulator_can_move_to_a_driver_thread() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<Simulator>();
}
