//! The `worker` binary with the echo engine on file discovery: records in Dynamo's shape,
//! prompt tokens echoed, `max_tokens` honoured, clean unregistration on SIGTERM.

mod common;

use std::collections::BTreeSet;

use common::{
    PATIENCE, WorkerProcess, client_config, last, records, request, tokens, wait_for_records,
};
use serde_json::Value;
use stator_protocols::worker::{Annotated, FinishReason, LLMEngineOutput, PreprocessedRequest};
use stator_runtime::discovery::{DiscoveryRecord, RequestPlaneCodec, TransportType};
use stator_runtime::names::EndpointId;
use stator_runtime::{AsyncEngine, DistributedRuntime, Endpoint, Request};

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_worker_publishes_card_and_echoes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let worker = WorkerProcess::start(
        root,
        &[
            "--engine",
            "echo",
            "--endpoint",
            "dyn://testns.backend.generate",
        ],
    );

    let instances = wait_for_records(root, "v1/instances", 1, &worker);
    let models = wait_for_records(root, "v1/mdc", 1, &worker);
    let DiscoveryRecord::Endpoint(instance) = &instances[0] else {
        panic!("an Endpoint record: {instances:?}")
    };
    let DiscoveryRecord::Model(model) = &models[0] else {
        panic!("a Model record: {models:?}")
    };
    assert_eq!(
        (
            instance.namespace.as_str(),
            instance.component.as_str(),
            instance.endpoint.as_str()
        ),
        ("testns", "backend", "generate")
    );
    assert_eq!(
        instance.request_plane_codec,
        Some(RequestPlaneCodec::Msgpack)
    );
    let TransportType::Tcp(address) = &instance.transport else {
        panic!("TCP transport")
    };
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    assert_eq!(model.instance_id, instance.instance_id);
    assert_eq!(
        models[0].key(),
        format!("testns/backend/generate/{:x}", model.instance_id)
    );

    // The card has exactly the fields of the captured Dynamo card.
    let reference: Value = serde_json::from_str(include_str!("fixtures/mdc_example.json")).unwrap();
    let card = &model.card_json;
    assert_eq!(keys(card), keys(&reference["card_json"]));
    assert_eq!(
        keys(&card["runtime_config"]),
        keys(&reference["card_json"]["runtime_config"])
    );
    assert_eq!(card["display_name"], "qwen2.5-0.5b-mock");
    for file in ["model_info", "tokenizer", "prompt_formatter", "gen_config"] {
        let (kind, inner) = card[file].as_object().unwrap().iter().next().unwrap();
        let (ref_kind, ref_inner) = reference["card_json"][file]
            .as_object()
            .unwrap()
            .iter()
            .next()
            .unwrap();
        assert_eq!(kind, ref_kind);
        assert_eq!(inner["checksum"], ref_inner["checksum"], "{file} checksum");
    }

    let client_drt = DistributedRuntime::new(client_config(root)).await.unwrap();
    let endpoint = Endpoint::from_id(
        &client_drt,
        EndpointId::parse("dyn://testns.backend.generate").unwrap(),
    )
    .unwrap();
    let client = endpoint
        .client::<PreprocessedRequest, Annotated<LLMEngineOutput>>()
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, client.instances().wait_for_instances())
        .await
        .expect("the client sees the worker");

    let prompt: Vec<u32> = (100..120).collect();
    let items = client
        .generate(Request::new(request(&prompt, None)))
        .await
        .unwrap()
        .try_collect_items()
        .await
        .unwrap();
    assert_eq!(tokens(&items), prompt);
    assert_eq!(items.len(), prompt.len(), "one token per item");
    let usage = last(&items).completion_usage.clone().unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (20, 20));

    let items = client
        .generate(Request::new(request(&prompt, Some(5))))
        .await
        .unwrap()
        .try_collect_items()
        .await
        .unwrap();
    assert_eq!(tokens(&items), prompt[..5]);
    assert_eq!(last(&items).finish_reason, Some(FinishReason::Length));
    client_drt.shutdown().await;

    let status = worker.terminate();
    assert!(status.success(), "clean exit: {status}");
    assert!(records(root, "v1/instances").is_empty());
    assert!(records(root, "v1/mdc").is_empty());
}
