//! Property tests: any `PreprocessedRequest` / `LLMEngineOutput` survives JSON and
//! msgpack-with-field-names encoding unchanged.

use proptest::prelude::*;
use stator_protocols::worker::{
    Annotated, FinishReason, LLMEngineOutput, PreprocessedRequest, RoutingHints, StopConditions,
};

fn stop_conditions() -> impl Strategy<Value = StopConditions> {
    (
        proptest::option::of(1_u32..100_000),
        proptest::option::of(proptest::collection::vec("[a-z\n ]{1,6}", 0..4)),
        proptest::option::of(proptest::collection::vec(any::<u32>(), 0..4)),
        proptest::option::of(0_u32..64),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(
            |(max_tokens, stop, hidden, min_tokens, ignore_eos)| StopConditions {
                max_tokens,
                stop,
                stop_token_ids_hidden: hidden,
                min_tokens,
                ignore_eos,
                ..StopConditions::default()
            },
        )
}

fn routing() -> impl Strategy<Value = Option<RoutingHints>> {
    proptest::option::of(
        (
            proptest::option::of(any::<u64>()),
            proptest::option::of(0_u32..1000),
            proptest::option::of(-10_i32..10),
            proptest::option::of("[a-z]{0,8}"),
        )
            .prop_map(
                |(backend_instance_id, expected_output_tokens, priority, cache_salt)| {
                    RoutingHints {
                        backend_instance_id,
                        expected_output_tokens,
                        priority,
                        priority_jump: priority.map(f64::from),
                        cache_salt,
                        ..RoutingHints::default()
                    }
                },
            ),
    )
}

fn request() -> impl Strategy<Value = PreprocessedRequest> {
    (
        "[a-z0-9./-]{1,16}",
        proptest::collection::vec(any::<u32>(), 0..64),
        stop_conditions(),
        proptest::option::of(0.0_f32..2.0),
        proptest::option::of(any::<i64>()),
        routing(),
        proptest::collection::vec("[a-z_]{1,12}", 0..3),
    )
        .prop_map(
            |(model, token_ids, stop_conditions, temperature, seed, routing, annotations)| {
                let mut req = PreprocessedRequest {
                    model,
                    token_ids,
                    stop_conditions,
                    routing,
                    annotations,
                    eos_token_ids: vec![151_645, 151_643],
                    ..PreprocessedRequest::default()
                };
                req.sampling_options.temperature = temperature;
                req.sampling_options.seed = seed;
                req
            },
        )
}

fn finish_reason() -> impl Strategy<Value = Option<FinishReason>> {
    proptest::option::of(prop_oneof![
        Just(FinishReason::Eos),
        Just(FinishReason::Length),
        Just(FinishReason::Stop),
        Just(FinishReason::Cancelled),
        Just(FinishReason::ContentFilter),
        "[a-z ]{0,12}".prop_map(FinishReason::Error),
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn preprocessed_request_round_trips(req in request()) {
        let json = serde_json::to_vec(&req).unwrap();
        prop_assert_eq!(&serde_json::from_slice::<PreprocessedRequest>(&json).unwrap(), &req);
        let packed = rmp_serde::to_vec_named(&req).unwrap();
        prop_assert_eq!(&rmp_serde::from_slice::<PreprocessedRequest>(&packed).unwrap(), &req);
    }

    #[test]
    fn engine_output_round_trips(
        token_ids in proptest::collection::vec(any::<u32>(), 0..8),
        text in proptest::option::of("\\PC{0,12}"),
        finish_reason in finish_reason(),
        index in proptest::option::of(0_u32..8),
    ) {
        let item = Annotated::from_data(LLMEngineOutput {
            token_ids,
            text,
            finish_reason,
            index,
            ..LLMEngineOutput::default()
        });
        let json = serde_json::to_vec(&item).unwrap();
        prop_assert_eq!(&serde_json::from_slice::<Annotated<LLMEngineOutput>>(&json).unwrap(), &item);
        let packed = rmp_serde::to_vec_named(&item).unwrap();
        prop_assert_eq!(&rmp_serde::from_slice::<Annotated<LLMEngineOutput>>(&packed).unwrap(), &item);
    }
}
