//! Frontend and mocker workers as separate processes on the cluster backends, against real
//! servers on loopback: etcd discovery with the TCP request plane, and etcd with the NATS
//! request and event planes. Covers lease expiry after SIGKILL, etcd and NATS restarts, and
//! a process shutting down when its lease is lost. Each test skips (with a message) only when
//! the server binary is missing; `.ci/run` installs both.

#[path = "../../lib/runtime/tests/support/servers.rs"]
mod servers;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use servers::{EtcdServer, NatsServer};
use stator_e2e::{
    Cluster, ClusterSpec, MODEL, PATIENCE, metric_value, try_request, wait_for_metric,
    wait_for_metric_where,
};
use stator_runtime::discovery::{
    Discovery, DiscoveryQuery, DiscoveryRecord, EtcdConfig, EtcdDiscovery,
};
use stator_runtime::names::EndpointId;

/// Short enough that expiry tests finish quickly, long enough for keep-alive on a busy box.
const LEASE_TTL_SECS: &str = "5";

fn kv_metric(name: &str) -> String {
    format!("dynamo_frontend_kv_router_{name}{{model=\"{MODEL}\"}}")
}

fn spec(planes: Vec<String>, workers: u32) -> ClusterSpec {
    let mut spec = ClusterSpec::echo(
        env!("CARGO_BIN_EXE_e2e-frontend"),
        env!("CARGO_BIN_EXE_e2e-worker"),
    );
    spec.worker_args = vec![
        "--engine".into(),
        "mocker".into(),
        "--num-workers".into(),
        workers.to_string(),
        "--speedup-ratio".into(),
        "0".into(),
        "--block-size".into(),
        "16".into(),
    ];
    spec.frontend_args = vec!["--router-mode".into(), "kv".into()];
    spec.planes = Some(planes);
    spec
}

fn etcd_planes(etcd: &EtcdServer) -> Vec<String> {
    vec![
        "--discovery-backend".into(),
        "etcd".into(),
        "--etcd-endpoints".into(),
        etcd.endpoint(),
        "--etcd-lease-ttl".into(),
        LEASE_TTL_SECS.into(),
    ]
}

/// A chat request whose prompt fills several 16-token KV blocks, so the mockers store
/// blocks and publish KV events for it.
fn chat(n: usize) -> Value {
    let topic = "tell me about etcd leases, NATS subjects and KV cache blocks. ".repeat(8);
    json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": format!("Request {n}: {topic}")}],
        "max_tokens": 4,
    })
}

/// Sends a chat request, retrying transport failures and 5xx answers (a plane is coming
/// back) until one succeeds.
fn chat_until_ok(c: &Cluster, n: usize) -> Value {
    let start = Instant::now();
    loop {
        let body = chat(n).to_string();
        let headers = [("content-type", "application/json")];
        match try_request(
            &c.addr,
            "POST",
            "/v1/chat/completions",
            &headers,
            body.as_bytes(),
        ) {
            Ok(resp) if resp.status == 200 => return resp.json(),
            Ok(resp) if resp.status < 500 => panic!("{}: {}", resp.status, resp.body),
            _ => {}
        }
        assert!(
            start.elapsed() < PATIENCE,
            "no successful request\nfrontend log:\n{}",
            c.frontend.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The generate endpoint's instance ids and the cards' instance ids as etcd lists them.
fn registered(etcd: &EtcdServer) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let discovery = EtcdDiscovery::connect(EtcdConfig::new([etcd.endpoint()]))
            .await
            .expect("etcd reachable");
        let endpoint = EndpointId::parse("dynamo/backend/generate").expect("valid endpoint");
        let ids = |records: Vec<DiscoveryRecord>| -> BTreeSet<u64> {
            records.iter().map(|r| r.instance_id().0).collect()
        };
        let instances = discovery
            .list(&DiscoveryQuery::Endpoint(endpoint))
            .await
            .expect("list instances");
        let cards = discovery
            .list(&DiscoveryQuery::AllModels)
            .await
            .expect("list cards");
        discovery.shutdown().await;
        (ids(instances), ids(cards))
    })
}

fn wait_registered(etcd: &EtcdServer, want: impl Fn(&BTreeSet<u64>, &BTreeSet<u64>) -> bool) {
    let start = Instant::now();
    loop {
        let (instances, cards) = registered(etcd);
        if want(&instances, &cards) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "etcd still lists instances {instances:?}, cards {cards:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn etcd_discovery_with_tcp_survives_a_killed_worker() {
    let Some(etcd) = EtcdServer::start() else {
        return;
    };
    let mut c = Cluster::start(&spec(etcd_planes(&etcd), 1));
    assert!(chat_until_ok(&c, 0)["choices"][0]["message"]["content"].is_string());
    wait_registered(&etcd, |i, m| i.len() == 1 && m.len() == 1);
    let (first, _) = registered(&etcd);

    let _second = c.add_worker("worker-2");
    wait_registered(&etcd, |i, m| i.len() == 2 && m.len() == 2);
    wait_for_metric_where(&c.addr, &kv_metric("workers"), |n| n >= 2.0);

    // SIGKILL: no unregistration; etcd drops the records when the lease runs out.
    c.worker.kill();
    wait_registered(&etcd, |i, m| {
        i.len() == 1 && m.len() == 1 && i.is_disjoint(&first) && m.is_disjoint(&first)
    });
    // The frontend dropped the dead worker and its blocks from the KV index...
    wait_for_metric(&c.addr, &kv_metric("workers"), 1.0);
    wait_for_metric_where(&c.addr, &kv_metric("workers_removed_total"), |n| n >= 1.0);
    // ...and routes everything to the survivor.
    for n in 1..=8 {
        let resp = c.post_json("/v1/chat/completions", &chat(n));
        assert_eq!(resp.status, 200, "{}", resp.body);
    }
}

#[test]
fn etcd_and_nats_planes_route_on_kv_events_and_survive_restarts() {
    let (Some(mut etcd), Some(mut nats)) = (EtcdServer::start(), NatsServer::start()) else {
        return;
    };
    let mut planes = etcd_planes(&etcd);
    // A longer lease: etcd is down for a moment below and must come back within it.
    planes[5] = "15".into();
    planes.extend([
        "--request-plane".into(),
        "nats".into(),
        "--event-plane".into(),
        "nats".into(),
        "--nats-server".into(),
        nats.url(),
    ]);
    let c = Cluster::start(&spec(planes, 2));
    chat_until_ok(&c, 0);
    // The mockers' KV events reach the router over NATS subjects.
    wait_for_metric_where(&c.addr, &kv_metric("events_applied_total"), |n| n > 0.0);
    wait_for_metric_where(&c.addr, &kv_metric("metrics_received_total"), |n| n > 0.0);

    nats.kill();
    nats.spawn();
    let before = metric_value(&c.addr, &kv_metric("events_applied_total"));
    for n in 1..=4 {
        chat_until_ok(&c, n);
    }
    // Publishers and subscribers reconnected: new requests produce new events.
    wait_for_metric_where(&c.addr, &kv_metric("events_applied_total"), |n| n > before);

    etcd.kill();
    etcd.spawn();
    // Watches resume after the restart: a worker that registers now is seen.
    let _third = c.add_worker("worker-3");
    wait_for_metric_where(&c.addr, &kv_metric("workers"), |n| n >= 3.0);
    for n in 5..=8 {
        chat_until_ok(&c, n);
    }
}

#[test]
fn a_worker_whose_lease_is_lost_shuts_down() {
    let Some(mut etcd) = EtcdServer::start() else {
        return;
    };
    let mut c = Cluster::start(&spec(etcd_planes(&etcd), 1));
    // etcd comes back empty: the lease is gone for good, so the worker must exit.
    etcd.kill_and_wipe();
    etcd.spawn();
    let status = c.worker.wait_exit(PATIENCE);
    let log = c.worker.log_text();
    let status = status.unwrap_or_else(|| panic!("worker still running\n{log}"));
    assert!(!status.success(), "{log}");
    assert!(log.contains("lease"), "{log}");
}
