//! Request and worker lifecycles across processes: client disconnects reach the worker, and
//! a crashed worker makes its model unavailable.

use std::thread;
use std::time::Duration;

use serde_json::json;
use stator_e2e::{Cluster, ClusterSpec, MODEL, stream_then_disconnect, wait_for_metric};

#[test]
fn client_disconnect_kills_the_request_on_the_worker() {
    // The worker takes one request at a time and echoes slowly: a second request is served
    // only once the first one is gone from the worker.
    let mut spec = ClusterSpec::echo(
        env!("CARGO_BIN_EXE_e2e-frontend"),
        env!("CARGO_BIN_EXE_e2e-worker"),
    );
    spec.worker_args
        .extend(["--echo-delay-ms".into(), "500".into()]);
    spec.worker_env
        .push(("DYN_ENGINE_REQUEST_LIMIT".into(), "1".into()));
    let c = Cluster::start(&spec);
    let long = "word ".repeat(400);
    let first = stream_then_disconnect(
        &c.addr,
        "/v1/chat/completions",
        &json!({"model": MODEL, "messages": [{"role": "user", "content": long}],
                "max_tokens": 400, "stream": true}),
    );
    assert!(first.contains("chat.completion.chunk"));
    wait_for_metric(&c.addr, "dynamo_frontend_disconnected_clients", 1.0);
    wait_for_metric(
        &c.addr,
        &format!(
            "dynamo_frontend_model_cancellation_total{{endpoint=\"chat_completions\",model=\"{MODEL}\",request_type=\"stream\"}}"
        ),
        1.0,
    );
    // Without the kill this would wait for 400 slow tokens (over three minutes).
    let resp = c.post_json(
        "/v1/chat/completions",
        &json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["usage"]["completion_tokens"], 2);
}

#[test]
fn a_crashed_worker_makes_the_model_unavailable() {
    let mut c = Cluster::start(&ClusterSpec::echo(
        env!("CARGO_BIN_EXE_e2e-frontend"),
        env!("CARGO_BIN_EXE_e2e-worker"),
    ));
    c.worker.kill();
    // Its records stay until the file TTL expires: the model is registered but cannot serve.
    let body =
        json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = c.post_json("/v1/chat/completions", &body);
        statuses.push(resp.status);
        thread::sleep(Duration::from_millis(100));
    }
    assert!(statuses.iter().all(|&s| s == 503), "{statuses:?}");
}
