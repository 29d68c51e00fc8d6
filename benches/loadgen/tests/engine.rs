//! The load engine against a real loopback SSE server.

use std::sync::atomic::Ordering;
use std::time::Duration;

use stator_loadgen::{
    MOCK_CACHED_TOKENS, MOCK_PROMPT_TOKENS, MockOptions, MockServer, ModelsError, RequestError,
    RowPlan, RowReport, Workload, WorkloadSpec, http_client, model_ids, run_closed_loop, run_row,
    wait_for_model,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn workload(model: &str, max_tokens: u32) -> Workload {
    Workload::new(spec(model, max_tokens))
}

fn spec(model: &str, max_tokens: u32) -> WorkloadSpec {
    WorkloadSpec {
        model: model.into(),
        prefix_groups: 2,
        prefix_words: 20,
        unique_words: 5,
        max_tokens,
        stream: true,
        seed: 3,
    }
}

/// A mock that splits every event into 7-byte HTTP chunks (lines and UTF-8 straddle chunks).
async fn start() -> MockServer {
    let options = MockOptions {
        piece_size: Some(7),
    };
    MockServer::start(([127, 0, 0, 1], 0).into(), options)
        .await
        .expect("bind loopback")
}

fn uri(base: &str) -> hyper::Uri {
    format!("{base}/v1/chat/completions")
        .parse()
        .expect("valid test uri")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn successful_stream_counts_tokens_usage_and_reuses_connections() {
    let server = start().await;
    let client = http_client(4);
    let w = workload("ok", 12);
    let bodies = (0..20).map(|i| w.body(i)).collect();
    let outcomes = run_closed_loop(&client, &uri(&server.base_url()), bodies, 2, TIMEOUT).await;
    assert_eq!(outcomes.len(), 20);
    for outcome in &outcomes {
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.content_chunks, 12);
        let usage = outcome.usage.expect("usage chunk parsed");
        assert_eq!(
            (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens
            ),
            (MOCK_PROMPT_TOKENS, 12, MOCK_CACHED_TOKENS)
        );
        let ttft = outcome.ttft.expect("first content seen");
        assert!(ttft <= outcome.e2e);
        assert!(outcome.itl().is_some());
    }
    // Each of the 2 tasks owns one keep-alive connection, and the next loop reuses them.
    assert_eq!(server.connections.load(Ordering::Relaxed), 2);
    let bodies = (20..30).map(|i| w.body(i)).collect();
    let again = run_closed_loop(&client, &uri(&server.base_url()), bodies, 2, TIMEOUT).await;
    assert!(again.iter().all(|outcome| outcome.error.is_none()));
    assert_eq!(server.connections.load(Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_classified() {
    let server = start().await;
    let client = http_client(4);
    let endpoint = uri(&server.base_url());
    let run = |model: &str, timeout: Duration| {
        let bodies = (0..3).map(|i| workload(model, 4).body(i)).collect();
        run_closed_loop(&client, &endpoint, bodies, 3, timeout)
    };
    for outcome in run("http500", TIMEOUT).await {
        assert!(
            matches!(outcome.error, Some(RequestError::Status { status: 500, ref body }) if body.contains("Internal"))
        );
    }
    for outcome in run("sse-error", TIMEOUT).await {
        assert!(
            matches!(outcome.error, Some(RequestError::Sse(ref text)) if text.contains("worker died"))
        );
        assert_eq!(outcome.content_chunks, 1);
    }
    for outcome in run("truncated", TIMEOUT).await {
        assert_eq!(outcome.error, Some(RequestError::Incomplete));
    }
    for outcome in run("empty", TIMEOUT).await {
        assert_eq!(outcome.error, Some(RequestError::Empty));
    }
    for outcome in run("hang", Duration::from_millis(300)).await {
        assert_eq!(outcome.error, Some(RequestError::Timeout));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_answers_count_usage_without_ttft() {
    let server = start().await;
    let client = http_client(2);
    let w = Workload::new(WorkloadSpec {
        stream: false,
        ..spec("ok", 6)
    });
    let bodies = (0..4).map(|i| w.body(i)).collect();
    let outcomes = run_closed_loop(&client, &uri(&server.base_url()), bodies, 2, TIMEOUT).await;
    for outcome in outcomes {
        assert_eq!(outcome.error, None);
        assert_eq!(outcome.ttft, None);
        assert_eq!(outcome.tokens(), 6);
        assert_eq!(
            outcome.usage.map(|u| u.cached_tokens),
            Some(MOCK_CACHED_TOKENS)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_report_summarizes_a_measured_window() {
    let server = start().await;
    let client = http_client(4);
    let plan = RowPlan {
        uri: uri(&server.base_url()),
        concurrency: 3,
        requests: 9,
        warmup: 2,
        timeout: TIMEOUT,
        first_index: 0,
        target_pid: Some(std::process::id()),
        worker_pids: vec![std::process::id()],
    };
    let measurement = run_row(&client, &workload("ok", 8), &plan).await;
    let report = RowReport::new("test", &plan, &measurement);
    assert_eq!((report.requests, report.ok, report.errors), (9, 9, 0));
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    assert!(close(report.completion_tokens_per_req, 8.0));
    assert!(close(
        report.cached_tokens_per_req,
        MOCK_CACHED_TOKENS as f64
    ));
    let expected_rate = MOCK_CACHED_TOKENS as f64 / MOCK_PROMPT_TOKENS as f64;
    assert!(
        report
            .cache_hit_rate
            .is_some_and(|r| close(r, expected_rate))
    );
    assert!(report.req_per_s > 0.0);
    assert!(report.ttft_ms.is_some() && report.itl_ms.is_some() && report.e2e_ms.is_some());
    assert!(report.target_cpu_ms_per_req.is_some());
    assert!(report.target_rss_max_mb.is_some_and(|mb| mb > 0.0));
    assert!(report.target_rss_start_mb.is_some_and(|mb| mb > 0.0));
    assert!(report.worker_cpu_pct.is_some());
    assert!(report.markdown_row().starts_with("| test | 3 | 9 | 0 |"));

    let failing = RowPlan {
        requests: 4,
        worker_pids: Vec::new(),
        ..plan
    };
    let measurement = run_row(&client, &workload("http500", 8), &failing).await;
    let report = RowReport::new("test", &failing, &measurement);
    assert_eq!((report.ok, report.errors), (0, 4));
    assert_eq!(report.error_kinds.get("http_status"), Some(&4));
    assert_eq!(report.error_samples.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_listed_and_unreachable_server_is_an_error() {
    let server = start().await;
    let client = http_client(1);
    assert_eq!(
        model_ids(&client, &server.base_url()).await.ok(),
        Some(vec!["mock".to_owned()])
    );
    let ready = wait_for_model(&client, &server.base_url(), None, TIMEOUT)
        .await
        .ok();
    assert_eq!(ready.as_deref(), Some("mock"));
    let missing = wait_for_model(
        &client,
        &server.base_url(),
        Some("other"),
        Duration::from_millis(300),
    )
    .await;
    assert!(matches!(missing, Err(ModelsError::NotReady { .. })));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let dead = format!("http://{}", closed.local_addr().expect("local addr"));
    drop(closed);
    assert!(matches!(
        model_ids(&client, &dead).await,
        Err(ModelsError::Transport(_))
    ));
}
