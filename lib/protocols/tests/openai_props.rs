//! Property tests: OpenAI requests survive a JSON round trip through their flattened layout
//! (OpenAI part, extensions, passthrough extras, `nvext` and unknown keys all land back in
//! their own place).

use proptest::prelude::*;
use serde_json::{Map, Value};
use stator_protocols::nvext::NvExt;
use stator_protocols::openai::{
    ChatCompletionRequest, ChatMessage, CompletionRequest, Prompt, Stop,
};

fn message() -> impl Strategy<Value = ChatMessage> {
    prop_oneof![
        "\\PC{0,16}".prop_map(ChatMessage::user),
        "\\PC{0,16}".prop_map(ChatMessage::system),
    ]
}

fn stop() -> impl Strategy<Value = Option<Stop>> {
    proptest::option::of(prop_oneof![
        "[a-z]{1,4}".prop_map(Stop::One),
        proptest::collection::vec("[a-z]{1,4}", 0..4).prop_map(Stop::Many),
    ])
}

fn unknown_keys() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map("x_[a-z]{1,6}", any::<i32>(), 0..3)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
}

fn nvext() -> impl Strategy<Value = Option<NvExt>> {
    proptest::option::of(
        (
            proptest::option::of(proptest::collection::vec("[a-z_]{1,8}", 0..3)),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(|(annotations, backend_instance_id, greed_sampling)| NvExt {
                annotations,
                backend_instance_id,
                greed_sampling,
                ..NvExt::default()
            }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn chat_request_round_trips(
        messages in proptest::collection::vec(message(), 1..4),
        max_tokens in proptest::option::of(1_u32..100_000),
        temperature in proptest::option::of(0.0_f32..2.0),
        stop in stop(),
        top_k in proptest::option::of(-1_i32..100),
        cache_salt in proptest::option::of("[a-z]{0,8}"),
        nvext in nvext(),
        unsupported in unknown_keys(),
    ) {
        let mut req = ChatCompletionRequest::new("m", messages);
        req.inner.max_tokens = max_tokens;
        req.inner.temperature = temperature;
        req.inner.stop = stop;
        req.common.top_k = top_k;
        req.passthrough.cache_salt = cache_salt;
        req.nvext = nvext;
        req.unsupported = unsupported;
        let json = serde_json::to_string(&req).unwrap();
        prop_assert_eq!(serde_json::from_str::<ChatCompletionRequest>(&json).unwrap(), req);
    }

    #[test]
    fn completion_request_round_trips(
        prompt in prop_oneof![
            "\\PC{0,16}".prop_map(Prompt::Text),
            proptest::collection::vec("\\PC{1,8}", 1..3).prop_map(Prompt::TextBatch),
            proptest::collection::vec(any::<u32>(), 1..8).prop_map(Prompt::Tokens),
            proptest::collection::vec(proptest::collection::vec(any::<u32>(), 1..4), 1..3)
                .prop_map(Prompt::TokensBatch),
        ],
        echo in proptest::option::of(any::<bool>()),
        logprobs in proptest::option::of(0_u8..=5),
        min_tokens in proptest::option::of(0_u32..64),
        unsupported in unknown_keys(),
    ) {
        let mut req = CompletionRequest::new("m", prompt);
        req.inner.echo = echo;
        req.inner.logprobs = logprobs;
        req.common.min_tokens = min_tokens;
        req.unsupported = unsupported;
        let json = serde_json::to_string(&req).unwrap();
        prop_assert_eq!(serde_json::from_str::<CompletionRequest>(&json).unwrap(), req);
    }
}
