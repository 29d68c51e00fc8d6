use prometheus::{IntCounter, Opts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[test]
fn config_from_variables() {
    let vars = |name: &str| match name {
        "DYN_SYSTEM_PORT" => Some("9090".to_owned()),
        "DYN_SYSTEM_HOST" => Some("127.0.0.1".to_owned()),
        "DYN_SYSTEM_STARTING_HEALTH_STATUS" => Some("ready".to_owned()),
        "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS" => Some(r#"["generate","clear"]"#.to_owned()),
        _ => None,
    };
    let c = SystemStatusConfig::from_lookup(vars);
    assert_eq!(c.port, Some(9090));
    assert_eq!(c.host, "127.0.0.1");
    assert!(c.starting_ready);
    assert_eq!(c.required_endpoints, ["generate", "clear"]);
    let disabled =
        SystemStatusConfig::from_lookup(|n| (n == "DYN_SYSTEM_PORT").then(|| "-1".to_owned()));
    assert_eq!(disabled.port, None);
    assert_eq!(disabled, SystemStatusConfig::default());
    assert_eq!(parse_name_list("a, b,,c"), ["a", "b", "c"]);
}

/// One HTTP/1.1 request over a raw socket; returns (status code, body).
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn serves_health_live_and_metrics_over_http() {
    let config = SystemStatusConfig {
        host: "127.0.0.1".into(),
        port: Some(0),
        ..SystemStatusConfig::default()
    };
    let health = config.health_state();
    let registry = Registry::new();
    let counter = IntCounter::with_opts(Opts::new(
        "dynamo_component_requests_total",
        "Requests handled",
    ))
    .unwrap();
    registry.register(Box::new(counter.clone())).unwrap();
    counter.inc_by(3);
    let files = FileRoutes::default();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokenizer.json");
    std::fs::write(&file, b"{\"model\":{}}").unwrap();
    assert!(files.insert(
        "/v1/metadata/ns/backend/generate/m/_base/tokenizer.json",
        &file
    ));
    assert!(!files.insert("/etc/passwd", &file), "only metadata routes");
    let server = SystemStatusServer::start(&config, health.clone(), registry, files.clone())
        .await
        .unwrap()
        .expect("enabled");
    let addr = server.local_addr();
    assert!(
        server
            .advertised_authority()
            .ends_with(&format!(":{}", addr.port()))
    );

    let (code, body) = get(
        addr,
        "/v1/metadata/ns/backend/generate/m/_base/tokenizer.json",
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "{\"model\":{}}"));
    assert_eq!(
        get(addr, "/v1/metadata/ns/backend/generate/m/_base/other.json")
            .await
            .0,
        404
    );
    files.remove("/v1/metadata/ns/backend/generate/m/_base/tokenizer.json");
    assert_eq!(
        get(
            addr,
            "/v1/metadata/ns/backend/generate/m/_base/tokenizer.json"
        )
        .await
        .0,
        404
    );

    health.set_endpoint("generate", false);
    let (code, body) = get(addr, "/health").await;
    assert_eq!(code, 503);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "notready");
    assert_eq!(json["endpoints"]["generate"], "notready");

    health.set_ready(true);
    health.set_endpoint("generate", true);
    for path in ["/health", "/live"] {
        let (code, body) = get(addr, path).await;
        assert_eq!(code, 200, "{path}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["status"], "ready");
        assert!(json["uptime"]["secs"].is_u64());
    }

    let (code, body) = get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(body.contains("dynamo_component_requests_total 3"), "{body}");
    assert_eq!(get(addr, "/nope").await.0, 404);
    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn disabled_without_a_port() {
    let server = SystemStatusServer::start(
        &SystemStatusConfig::default(),
        HealthState::default(),
        Registry::new(),
        FileRoutes::default(),
    )
    .await
    .unwrap();
    assert!(server.is_none());
}
