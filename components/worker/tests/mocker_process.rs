//! The `worker` binary with two mocker workers on file discovery: separate registrations,
//! `max_tokens` tokens, prompt cache hits in usage, KV events over ZMQ that replay into a
//! router indexer, and the typed 400-class error for a request without `max_tokens`.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{PATIENCE, WorkerProcess, client_config, last, request, tokens, wait_for_records};
use stator_kv_router::protocols::KvEventsPayload;
use stator_kv_router::{FlashIndexer, Indexer, RouterEvent, WorkerWithDpRank};
use stator_protocols::worker::{Annotated, FinishReason, LLMEngineOutput, PreprocessedRequest};
use stator_runtime::discovery::{DiscoveryRecord, EventScope};
use stator_runtime::event_plane::{EventPlane, EventSubscriber, ZmqConfig};
use stator_runtime::names::EndpointId;
use stator_runtime::router::PushRouter;
use stator_runtime::{DistributedRuntime, Endpoint, ErrorClass, InstanceId, Request};
use stator_tokens::{SaltSeed, block_hashes};

const BLOCK_SIZE: usize = 16;

type Client = PushRouter<PreprocessedRequest, Annotated<LLMEngineOutput>>;

async fn generate(
    client: &Client,
    prompt: &[u32],
    max_tokens: u32,
    worker: InstanceId,
) -> Vec<Annotated<LLMEngineOutput>> {
    client
        .direct(Request::new(request(prompt, Some(max_tokens))), worker)
        .await
        .expect("request accepted")
        .try_collect_items()
        .await
        .expect("stream completes")
}

/// The next `kv-events` message: one simulator step's events (a msgpack array, as Dynamo).
async fn next_events(events: &mut EventSubscriber, wait: Duration) -> Option<Vec<RouterEvent>> {
    match tokio::time::timeout(wait, events.next_typed::<KvEventsPayload>()).await {
        Ok(Some(Ok((_, payload)))) => {
            assert!(
                matches!(payload, KvEventsPayload::Batch(_)),
                "kv-events payloads are arrays"
            );
            Some(payload.into_events())
        }
        Ok(Some(Err(e))) => panic!("undecodable KV event: {e}"),
        Ok(None) => panic!("event plane closed"),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mocker_workers_serve_cache_and_publish_kv_events() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let worker = WorkerProcess::start(
        root,
        &[
            "--engine",
            "mocker",
            "--num-workers",
            "2",
            "--block-size",
            "16",
            "--num-gpu-blocks-override",
            "1024",
            "--speedup-ratio",
            "0",
        ],
    );
    let instances = wait_for_records(root, "v1/instances", 2, &worker);
    let models = wait_for_records(root, "v1/mdc", 2, &worker);
    // kv-events and kv_metrics of each worker.
    wait_for_records(root, "v1/event_channels", 4, &worker);
    let ids: BTreeSet<InstanceId> = instances.iter().map(DiscoveryRecord::instance_id).collect();
    assert_eq!(ids.len(), 2, "each worker has its own instance id");
    let model_ids: BTreeSet<InstanceId> = models.iter().map(DiscoveryRecord::instance_id).collect();
    assert_eq!(ids, model_ids);
    let DiscoveryRecord::Model(model) = &models[0] else {
        panic!("a Model record")
    };
    assert_eq!(model.card_json["kv_cache_block_size"], 16);
    assert_eq!(model.card_json["runtime_config"]["total_kv_blocks"], 1024);
    assert_eq!(
        model.card_json["runtime_config"]["kv_event_publishing_enabled"],
        true
    );

    let client_drt = DistributedRuntime::new(client_config(root)).await.unwrap();
    let endpoint_id = EndpointId::parse("dyn://dynamo.backend.generate").unwrap();
    let endpoint = Endpoint::from_id(&client_drt, endpoint_id.clone()).unwrap();
    let client: Client = endpoint.client().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    while client.instances().list().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the client never saw both workers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let target = *ids.first().unwrap();

    let plane = EventPlane::zmq(client_drt.discovery().clone(), ZmqConfig::loopback());
    let mut events = plane
        .subscribe(
            EventScope::Endpoint {
                endpoint: endpoint_id,
            },
            "kv-events",
        )
        .await
        .unwrap();
    let mut indexer = FlashIndexer::new();
    // ZMQ subscriptions join asynchronously: warm up until the target's events arrive.
    let mut warmup = 0_u32;
    loop {
        assert!(Instant::now() < deadline, "no KV event ever arrived");
        warmup += 1;
        let prompt: Vec<u32> = (0..32).map(|i| warmup * 1000 + i).collect();
        generate(&client, &prompt, 1, target).await;
        if let Some(batch) = next_events(&mut events, Duration::from_secs(1)).await {
            for event in batch {
                assert_eq!(event.worker_id, target.0, "events carry the instance id");
                // Events whose parent was published before the subscription joined are
                // refused.
                let _ = indexer.apply_event(event);
            }
            break;
        }
    }

    let prompt: Vec<u32> = (50_000..50_064).collect();
    let first = generate(&client, &prompt, 8, target).await;
    assert_eq!(tokens(&first).len(), 8);
    assert_eq!(last(&first).finish_reason, Some(FinishReason::Length));
    let second = generate(&client, &prompt, 8, target).await;
    assert_eq!(tokens(&second).len(), 8);
    let usage = last(&second).completion_usage.clone().expect("usage");
    assert_eq!(usage.prompt_tokens, 64);
    let cached = usage
        .prompt_tokens_details
        .and_then(|d| d.cached_tokens)
        .expect("cached tokens reported");
    assert!(cached > 0, "the identical prompt hits the prefix cache");

    // Replayed events reproduce the prompt's blocks in the router's indexer.
    let query = block_hashes(&prompt, BLOCK_SIZE, SaltSeed::default());
    let owner = WorkerWithDpRank::new(target.0, 0);
    while indexer.find_matches(&query).depth(owner) < 4 {
        assert!(
            Instant::now() < deadline,
            "the prompt's blocks never showed up"
        );
        for event in next_events(&mut events, Duration::from_secs(1))
            .await
            .unwrap_or_default()
        {
            assert_eq!(event.worker_id, target.0);
            // Events whose parent was published before the subscription joined are refused.
            let _ = indexer.apply_event(event);
        }
    }
    assert_eq!(indexer.find_matches(&query).depth(owner), 4);

    let err = client
        .direct(Request::new(request(&prompt, None)), target)
        .await
        .expect_err("the mocker needs max_tokens");
    assert_eq!(
        err.class().normalized(),
        ErrorClass::InvalidRequest,
        "{err}"
    );
    assert_eq!(err.http_status(), 400);
    assert!(err.to_string().contains("max_tokens"), "{err}");

    drop(events);
    client_drt.shutdown().await;
    assert!(worker.terminate().success());
}
