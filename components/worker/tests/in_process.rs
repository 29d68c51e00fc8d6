//! Workers started through the library API on a shared in-process store and bus (what an
//! embedding frontend does): registrations, echo across several workers, and a killed request
//! that stops the simulator's work.

mod common;

use std::time::{Duration, Instant};

use clap::Parser;
use common::{PATIENCE, last, model_dir, request, tokens};
use futures::StreamExt;
use stator_kv_router::protocols::ActiveLoad;
use stator_protocols::worker::{Annotated, FinishReason, LLMEngineOutput, PreprocessedRequest};
use stator_runtime::discovery::{Discovery, DiscoveryQuery, DiscoveryRecord, EventScope, MemStore};
use stator_runtime::event_plane::LocalBus;
use stator_runtime::router::PushRouter;
use stator_runtime::{AsyncEngine, DistributedRuntime, Endpoint, Request};
use worker::publish::KV_METRICS_TOPIC;
use worker::{Plumbing, WorkerArgs, run_workers};

type Client = PushRouter<PreprocessedRequest, Annotated<LLMEngineOutput>>;

fn args(extra: &[&str]) -> WorkerArgs {
    let model = model_dir();
    let mut argv = vec![
        "worker",
        "--model-path",
        model.to_str().unwrap(),
        "--discovery-backend",
        "mem",
        "--tcp-rpc-host",
        "127.0.0.1",
        "--tcp-response-stream-host",
        "127.0.0.1",
    ];
    argv.extend_from_slice(extra);
    WorkerArgs::try_parse_from(argv).unwrap()
}

/// A client runtime sharing the workers' store and bus, once it sees `n` workers.
async fn client(
    store: &MemStore,
    bus: &LocalBus,
    args: &WorkerArgs,
    n: usize,
) -> (DistributedRuntime, Client) {
    let drt = DistributedRuntime::in_process(store, bus, args.runtime_config().unwrap())
        .await
        .unwrap();
    let endpoint = Endpoint::from_id(&drt, args.endpoint_id().unwrap()).unwrap();
    let client: Client = endpoint.client().await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    while client.instances().list().len() < n {
        assert!(
            Instant::now() < deadline,
            "the client never saw {n} workers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (drt, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_workers_register_serve_and_unregister() {
    let args = args(&[
        "--engine",
        "echo",
        "--num-workers",
        "2",
        "--model-name",
        "echo-model",
    ]);
    let (store, bus) = (MemStore::new(), LocalBus::new());
    let group = run_workers(
        &args,
        &Plumbing::InProcess {
            store: store.clone(),
            bus: bus.clone(),
        },
    )
    .await
    .unwrap();
    let ids = group.instance_ids();
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);

    let observer = store.client();
    let models = observer.list(&DiscoveryQuery::AllModels).await.unwrap();
    let mut model_ids: Vec<_> = models.iter().map(DiscoveryRecord::instance_id).collect();
    model_ids.sort();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(model_ids, sorted);
    let DiscoveryRecord::Model(model) = &models[0] else {
        panic!("a Model record")
    };
    assert_eq!(model.card_json["display_name"], "echo-model");
    assert_eq!(
        model.card_json["runtime_config"]["kv_event_publishing_enabled"],
        false
    );

    let (drt, client) = client(&store, &bus, &args, 2).await;
    let prompt: Vec<u32> = (1..=9).collect();
    for &id in &ids {
        let items = client
            .direct(Request::new(request(&prompt, Some(4))), id)
            .await
            .unwrap()
            .try_collect_items()
            .await
            .unwrap();
        assert_eq!(tokens(&items), [1, 2, 3, 4]);
        assert_eq!(last(&items).finish_reason, Some(FinishReason::Length));
    }
    drt.shutdown().await;

    assert!(group.shutdown().await);
    assert!(
        observer
            .list(&DiscoveryQuery::AllModels)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        observer
            .list(&DiscoveryQuery::AllEndpoints)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_request_stops_the_simulated_work() {
    // Slow enough that 4000 tokens would take minutes.
    let args = args(&[
        "--engine",
        "mocker",
        "--block-size",
        "16",
        "--speedup-ratio",
        "0.1",
    ]);
    let (store, bus) = (MemStore::new(), LocalBus::new());
    let group = run_workers(
        &args,
        &Plumbing::InProcess {
            store: store.clone(),
            bus: bus.clone(),
        },
    )
    .await
    .unwrap();
    let worker_id = group.instance_ids()[0];
    let (drt, client) = client(&store, &bus, &args, 1).await;

    let scope = EventScope::Endpoint {
        endpoint: args.endpoint_id().unwrap(),
    };
    let mut loads = drt
        .event_plane()
        .subscribe(scope, KV_METRICS_TOPIC)
        .await
        .unwrap();
    let mut next_load = async || {
        let (_, load) = tokio::time::timeout(PATIENCE, loads.next_typed::<ActiveLoad>())
            .await
            .expect("load keeps being published")
            .expect("event plane open")
            .expect("an ActiveLoad");
        assert_eq!(load.worker_id, worker_id.0);
        load
    };

    let err = client
        .generate(Request::new(request(&[1, 2, 3], None)))
        .await
        .expect_err("max_tokens is required");
    assert_eq!(err.http_status(), 400);

    let prompt: Vec<u32> = (0..32).collect();
    let mut stream = client
        .generate(Request::new(request(&prompt, Some(4000))))
        .await
        .unwrap();
    let first = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.data.unwrap().token_ids.len(), 1);
    while next_load().await.active_decode_blocks.unwrap_or(0) == 0 {}

    stream.context().kill();
    drop(stream);
    loop {
        let load = next_load().await;
        if load.active_decode_blocks == Some(0) && load.active_prefill_tokens == Some(0) {
            break;
        }
    }
    drt.shutdown().await;
    assert!(group.shutdown().await);
}
