//! Frontend ⇄ worker wire types against the body observed from the Dynamo 1.6.1 frontend and
//! the minimal worker reply frames. `fixtures/preprocessed_request.json` is the observed body of
//! `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"temperature":0.5,…}`; the
//! reference elides the middle of `token_ids` (filled in with the shipped Qwen tokenizer's ids
//! for the default system prompt and "Hi") and of `mdc_sum` (completed to 64 hex digits).

use serde::Serialize;
use serde_json::{Value, json};
use stator_protocols::worker::{
    Annotated, FinishReason, LLMEngineOutput, OutputOptions, PreprocessedRequest, SamplingOptions,
    StopConditions, StopReason,
};

const FIXTURE: &str = include_str!("fixtures/preprocessed_request.json");

fn fixture() -> (Value, PreprocessedRequest) {
    let value: Value = serde_json::from_str(FIXTURE).unwrap();
    let request: PreprocessedRequest = serde_json::from_str(FIXTURE).unwrap();
    (value, request)
}

#[test]
fn observed_request_round_trips_through_json_unchanged() {
    let (value, request) = fixture();
    assert_eq!(request.model, "qwen-mock");
    assert_eq!(request.stop_conditions.max_tokens, Some(3));
    assert_eq!(
        request.stop_conditions.stop_token_ids_hidden,
        Some(vec![151_645, 151_643])
    );
    assert_eq!(request.sampling_options.temperature, Some(0.5));
    let routing = request.routing.as_ref().unwrap();
    assert_eq!(routing.expected_output_tokens, Some(10));
    assert_eq!(routing.priority_jump, Some(2.0));
    assert_eq!(routing.priority, Some(2));
    assert_eq!(serde_json::to_value(&request).unwrap(), value);
}

#[test]
fn msgpack_with_field_names_carries_the_same_map() {
    let (value, request) = fixture();
    let bytes = rmp_serde::to_vec_named(&request).unwrap();
    let back: PreprocessedRequest = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, request);
    let as_map: Value = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(as_map, value);
}

#[derive(Serialize)]
struct PackedRequest {
    model: String,
    token_ids: Vec<u8>,
    stop_conditions: StopConditions,
    sampling_options: SamplingOptions,
    output_options: OutputOptions,
}

#[test]
fn token_ids_may_arrive_as_packed_little_endian_bytes() {
    let ids = [151_644_u32, 8948, 198];
    let packed = PackedRequest {
        model: "m".into(),
        token_ids: ids.iter().flat_map(|t| t.to_le_bytes()).collect(),
        stop_conditions: StopConditions::default(),
        sampling_options: SamplingOptions::default(),
        output_options: OutputOptions::default(),
    };
    let mut bytes = Vec::new();
    let mut ser = rmp_serde::Serializer::new(&mut bytes)
        .with_struct_map()
        .with_bytes(rmp_serde::config::BytesMode::ForceAll);
    packed.serialize(&mut ser).unwrap();
    let request: PreprocessedRequest = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(request.token_ids, ids);
    assert!(request.eos_token_ids.is_empty());
}

#[test]
fn minimal_worker_reply_frames_parse() {
    let first: Annotated<LLMEngineOutput> =
        serde_json::from_value(json!({"data":{"token_ids":[9707],"finish_reason":null}})).unwrap();
    let data = first.data.unwrap();
    assert_eq!(data.token_ids, vec![9707]);
    assert_eq!(data.finish_reason, None);

    let last: Annotated<LLMEngineOutput> =
        serde_json::from_value(json!({"data":{"token_ids":[9708],"finish_reason":"length"}}))
            .unwrap();
    assert_eq!(last.data.unwrap().finish_reason, Some(FinishReason::Length));

    let bare: Annotated<LLMEngineOutput> =
        serde_json::from_value(json!({"data":{"token_ids":[1]}})).unwrap();
    assert!(!bare.is_error());
}

#[test]
fn finish_reasons_cover_every_wire_form() {
    let cases = [
        (json!("eos"), FinishReason::Eos),
        (json!("length"), FinishReason::Length),
        (json!("stop"), FinishReason::Stop),
        (json!("cancelled"), FinishReason::Cancelled),
        (json!("abort"), FinishReason::Cancelled),
        (json!("content_filter"), FinishReason::ContentFilter),
        (json!({"error":"boom"}), FinishReason::Error("boom".into())),
    ];
    for (wire, expected) in cases {
        let parsed: FinishReason = serde_json::from_value(wire.clone()).unwrap();
        assert_eq!(parsed, expected, "{wire}");
    }
    assert_eq!(
        serde_json::to_value(FinishReason::Error("boom".into())).unwrap(),
        json!({"error":"boom"})
    );
    assert_eq!(
        FinishReason::Eos.to_openai(),
        Some(stator_protocols::openai::FinishReason::Stop)
    );
    assert_eq!(FinishReason::Error("x".into()).to_openai(), None);
}

#[test]
fn engine_output_omits_unset_fields_and_round_trips_msgpack() {
    let minimal = LLMEngineOutput::tokens(vec![5]);
    assert_eq!(
        serde_json::to_string(&minimal).unwrap(),
        r#"{"token_ids":[5],"finish_reason":null}"#
    );
    let mut full = LLMEngineOutput::finished(vec![7, 8], FinishReason::Stop);
    full.text = Some("hi".into());
    full.stop_reason = Some(StopReason::Text("xyz".into()));
    full.index = Some(1);
    full.completion_usage = Some(stator_protocols::openai::Usage::new(3, 2));
    full.log_probs = Some(vec![-0.5, -1.25]);
    let item = Annotated::from_data(full);
    let bytes = rmp_serde::to_vec_named(&item).unwrap();
    let back: Annotated<LLMEngineOutput> = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, item);
}

#[test]
fn annotations_and_errors_keep_their_envelope() {
    let note: Annotated<LLMEngineOutput> =
        Annotated::from_annotation("token_ids", vec!["[1,2]".into()]);
    assert_eq!(
        serde_json::to_string(&note).unwrap(),
        r#"{"event":"token_ids","comment":["[1,2]"]}"#
    );
    let err: Annotated<LLMEngineOutput> = Annotated::from_error(json!({"message":"boom"}));
    assert!(err.is_error());
    let mapped = Annotated::from_data(3_u32).map_data(|x| x * 2);
    assert_eq!(mapped.data, Some(6));
}
