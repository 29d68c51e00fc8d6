//! The frontend and an echo worker as separate processes over loopback (file discovery):
//! the OpenAI routes, their errors, and the service routes.

use serde_json::{Value, json};
use stator_e2e::{Cluster, ClusterSpec, MODEL, request};
use stator_runtime::EndpointId;
use stator_runtime::discovery::{Discovery, DiscoveryQuery, FileDiscovery, FileDiscoveryConfig};

fn cluster() -> Cluster {
    let mut spec = ClusterSpec::echo(
        env!("CARGO_BIN_EXE_e2e-frontend"),
        env!("CARGO_BIN_EXE_e2e-worker"),
    );
    spec.frontend_env
        .push(("DYN_HTTP_BODY_LIMIT_MB".into(), "1".into()));
    Cluster::start(&spec)
}

fn chat(content: &str, extra: &Value) -> Value {
    let mut body = json!({"model": MODEL, "messages": [{"role": "user", "content": content}]});
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    body
}

#[test]
fn openai_routes_serve_the_echo_worker() {
    let c = cluster();

    // Unary chat: the echo worker returns the prompt's tokens, so the answer is the rendered
    // prompt (special tokens skipped), cut at max_tokens.
    let resp = c.post_json(
        "/v1/chat/completions",
        &chat("Hello there", &json!({"max_tokens": 4})),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 4);
    let prompt_tokens = body["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt_tokens > 10);
    assert_eq!(body["usage"]["total_tokens"], prompt_tokens + 4);
    assert_eq!(body["choices"][0]["message"]["content"], "system\nYou");

    // Streaming chat with usage: role-first chunk, content, finish chunk, usage chunk, DONE.
    let resp = c.post_json(
        "/v1/chat/completions",
        &chat(
            "Hello there",
            &json!({"max_tokens": 3, "stream": true, "stream_options": {"include_usage": true}}),
        ),
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let data = resp.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "system\n");

    // Stop strings cut the text and end with `stop`.
    let resp = c.post_json(
        "/v1/chat/completions",
        &chat("Hello there", &json!({"max_tokens": 40, "stop": ["You"]})),
    );
    let body = resp.json();
    assert_eq!(body["choices"][0]["message"]["content"], "system\n");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");

    // n = 2 really yields two choices.
    let resp = c.post_json(
        "/v1/chat/completions",
        &chat("Hi", &json!({"max_tokens": 2, "n": 2})),
    );
    let body = resp.json();
    let indexes: Vec<u64> = body["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1]);
    assert_eq!(body["usage"]["completion_tokens"], 4);

    // Completions: unary with a batch, and streaming.
    let resp = c.post_json(
        "/v1/completions",
        &json!({"model": MODEL, "prompt": ["one two three four", "five"], "max_tokens": 3}),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["object"], "text_completion");
    assert_eq!(body["choices"][0]["text"], "one two three");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["choices"][1]["index"], 1);
    let resp = c.post_json(
        "/v1/completions",
        &json!({"model": MODEL, "prompt": "one two three", "max_tokens": 2, "stream": true}),
    );
    let data = resp.sse_data();
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let first: Value = serde_json::from_str(&data[0]).unwrap();
    assert_eq!(first["choices"][0]["text"], "one");

    // Models, model by id, readiness, health, live.
    let models = c.get("/v1/models").json();
    assert_eq!(models["data"][0]["id"], MODEL);
    assert_eq!(c.get(&format!("/v1/models/{MODEL}")).json()["id"], MODEL);
    let ready = c.get(&format!("/v1/models/{MODEL}/ready")).json();
    assert_eq!(ready["ready"], true);
    assert_eq!(
        ready["namespaces"]["dynamo"]["worker_types"]["aggregated"]["workers"],
        1
    );
    let health = c.get("/health").json();
    assert_eq!(health["status"], "healthy");
    assert_eq!(
        health["endpoints"],
        json!(["dyn://dynamo.backend.generate"])
    );
    assert_eq!(c.get("/live").json()["status"], "live");

    // x-request-id is echoed; x-dynamo-request-id becomes the response id.
    let resp = request(
        &c.addr,
        "POST",
        "/v1/chat/completions",
        &[
            ("content-type", "application/json"),
            ("x-request-id", "golden-req-1"),
            (
                "x-dynamo-request-id",
                "7d3e5c1a-0000-4000-8000-000000000001",
            ),
        ],
        chat("Hi", &json!({"max_tokens": 1})).to_string().as_bytes(),
    );
    assert_eq!(resp.header("x-request-id"), Some("golden-req-1"));
    assert_eq!(
        resp.json()["id"],
        "chatcmpl-7d3e5c1a-0000-4000-8000-000000000001"
    );

    // Metrics carry Dynamo's names and labels.
    let metrics = c.get("/metrics").body;
    assert!(metrics.contains(&format!(
        "dynamo_frontend_requests_total{{endpoint=\"chat_completions\",error_type=\"\",model=\"{MODEL}\",request_type=\"unary\",status=\"success\"}}"
    )));
    assert!(metrics.contains(&format!(
        "dynamo_frontend_model_ready{{model=\"{MODEL}\"}} 1"
    )));
    assert!(metrics.contains("dynamo_frontend_time_to_first_token_seconds_bucket"));
    assert!(metrics.contains("dynamo_frontend_output_tokens_total"));
}

#[test]
fn errors_have_the_reference_shape() {
    let c = cluster();
    let error = |resp: &stator_e2e::HttpResponse| (resp.status, resp.body.clone());

    let resp = c.post_json(
        "/v1/chat/completions",
        &json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(
        error(&resp),
        (
            404,
            r#"{"message":"Model not found","type":"Not Found","code":404}"#.to_owned()
        )
    );
    let malformed = request(
        &c.addr,
        "POST",
        "/v1/chat/completions",
        &[("content-type", "application/json")],
        br#"{"model": "m", "messages": ["#,
    );
    assert_eq!(malformed.status, 400);
    assert!(malformed.json()["message"].as_str().unwrap().starts_with(
        "Failed to deserialize the JSON body into the target type: EOF while parsing"
    ));
    assert_eq!(malformed.json()["type"], "Bad Request");
    let resp = c.post_json(
        "/v1/chat/completions",
        &chat("x", &json!({"temperature": 5})),
    );
    assert_eq!(
        error(&resp),
        (400, r#"{"message":"Validation: Temperature must be between 0 and 2, got 5","type":"Bad Request","code":400}"#.to_owned())
    );
    let resp = c.post_json(
        "/v1/chat/completions",
        &chat("x", &json!({"bogus_field": 1})),
    );
    assert_eq!(
        resp.json()["message"],
        "Validation: Unsupported parameter(s): `bogus_field`"
    );
    let resp = request(
        &c.addr,
        "POST",
        "/v1/chat/completions",
        &[("content-type", "text/plain")],
        b"{}",
    );
    assert_eq!(
        error(&resp),
        (415, r#"{"message":"Expected request with Content-Type application/json","type":"Unsupported Media Type","code":415}"#.to_owned())
    );
    let big = vec![b' '; 2 * 1024 * 1024];
    let resp = request(
        &c.addr,
        "POST",
        "/v1/chat/completions",
        &[("content-type", "application/json")],
        &big,
    );
    assert_eq!(
        error(&resp),
        (413, r#"{"message":"Request body exceeds the limit of 1 MB set by DYN_HTTP_BODY_LIMIT_MB","type":"Payload Too Large","code":413}"#.to_owned())
    );
    let resp = c.get("/v1/chat/completions");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));
    let resp = request(&c.addr, "POST", "/v1/nothing", &[], b"");
    assert_eq!(
        error(&resp),
        (
            404,
            r#"{"message":"Route not found: POST /v1/nothing","type":"Not Found","code":404}"#
                .to_owned()
        )
    );
    let resp = c.get("/v1/models/nope");
    assert_eq!(resp.status, 404);
}

/// The generate endpoint's instance ids, read from the cluster's file discovery.
fn worker_instances(c: &Cluster) -> Vec<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let discovery = FileDiscovery::open(FileDiscoveryConfig::new(c.dir().join("kv")))
            .await
            .expect("discovery dir");
        let endpoint = EndpointId::parse("dynamo/backend/generate").expect("valid endpoint");
        let records = discovery
            .list(&DiscoveryQuery::Endpoint(endpoint))
            .await
            .expect("list instances");
        records.iter().map(|r| r.instance_id().0).collect()
    })
}

#[test]
fn extra_fields_report_the_worker_and_timing() {
    let c = cluster();
    let instances = worker_instances(&c);
    assert_eq!(instances.len(), 1, "one echo worker: {instances:?}");
    let nvext = json!({"nvext": {"extra_fields": ["worker_id", "timing"]}, "max_tokens": 3});

    let resp = c.post_json("/v1/chat/completions", &chat("Hello there", &nvext));
    assert_eq!(resp.status, 200, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["nvext"]["worker_id"]["decode_worker_id"], instances[0]);
    assert_eq!(
        body["nvext"]["worker_id"]["prefill_worker_id"],
        instances[0]
    );
    let timing = &body["nvext"]["timing"];
    assert!(timing["request_received_ms"].as_u64().unwrap() > 1_600_000_000_000);
    let ttft = timing["ttft_ms"].as_f64().unwrap();
    let total = timing["total_time_ms"].as_f64().unwrap();
    assert!(ttft > 0.0 && ttft <= total, "{timing}");

    let mut stream = nvext.clone();
    stream["stream"] = json!(true);
    let resp = c.post_json(
        "/v1/completions",
        &json!({"model": MODEL, "prompt": "Hello there", "max_tokens": 3, "stream": true,
                "nvext": {"extra_fields": ["worker_id"]}}),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    let data = resp.sse_data();
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk json"))
        .collect();
    let last = chunks.last().expect("a finish chunk");
    assert!(last["choices"][0]["finish_reason"].is_string(), "{last}");
    assert_eq!(last["nvext"]["worker_id"]["decode_worker_id"], instances[0]);
    assert!(last["nvext"].get("timing").is_none());
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.get("nvext").is_none())
    );

    let resp = c.post_json("/v1/chat/completions", &chat("Hello there", &stream));
    let data = resp.sse_data();
    let last: Value = serde_json::from_str(&data[data.len() - 2]).expect("chunk json");
    assert_eq!(last["nvext"]["worker_id"]["decode_worker_id"], instances[0]);
    assert!(last["nvext"]["timing"]["total_time_ms"].as_f64().unwrap() > 0.0);

    // Without extra_fields no nvext appears.
    let resp = c.post_json(
        "/v1/chat/completions",
        &chat("Hello there", &json!({"max_tokens": 2})),
    );
    assert!(resp.json().get("nvext").is_none());
}
