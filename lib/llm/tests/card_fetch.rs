//! Card files served by a worker (`/v1/metadata/...`) and fetched by a frontend.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

use stator_llm::Error;
use stator_llm::model_card::{CardFileCache, ModelDeploymentCard};
use stator_llm::preprocess::ModelPreprocessor;

/// A tiny HTTP server answering GETs from `routes`, with chunked or content-length bodies;
/// returns its `host:port`. The thread lives as long as the test process.
fn serve(routes: HashMap<String, Vec<u8>>, chunked: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let authority = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let path = request_line.split_whitespace().nth(1).unwrap_or_default();
            let response = match routes.get(path) {
                None => b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec(),
                Some(body) if chunked => {
                    let mut r = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
                    for chunk in body.chunks(4096) {
                        r.extend(format!("{:x}\r\n", chunk.len()).bytes());
                        r.extend(chunk);
                        r.extend(b"\r\n");
                    }
                    r.extend(b"0\r\n\r\n");
                    r
                }
                Some(body) => {
                    let mut r =
                        format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len())
                            .into_bytes();
                    r.extend(body);
                    r
                }
            };
            let _ = stream.write_all(&response);
        }
    });
    authority
}

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/qwen2.5-0.5b-mock")
}

/// A card rewritten for self-hosting on a server that serves `routes` (possibly altered).
fn hosted_card(
    chunked: bool,
    alter: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>,
) -> ModelDeploymentCard {
    let mut card = ModelDeploymentCard::from_local_path(model_dir(), Some("qwen-mock")).unwrap();
    let mut probe = card.clone();
    let table = probe.self_host("unused", "ns", "backend", "generate", "_base");
    let routes = table
        .into_iter()
        .filter_map(|(route, file)| {
            let bytes = std::fs::read(file).unwrap();
            alter(&route, bytes).map(|b| (route, b))
        })
        .collect();
    let authority = serve(routes, chunked);
    card.self_host(&authority, "ns", "backend", "generate", "_base");
    card
}

#[test]
fn frontend_fetches_verified_files_from_the_worker() {
    for chunked in [false, true] {
        let card = hosted_card(chunked, |_, bytes| Some(bytes));
        let path = card.files()[0].path.clone();
        assert!(
            path.starts_with("http://127.0.0.1:")
                && path.ends_with("/v1/metadata/ns/backend/generate/qwen-mock/_base/config.json"),
            "{path}"
        );
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = CardFileCache::new(cache_dir.path());
        let local = cache.localize(&card).unwrap();
        assert!(local.files().iter().all(|f| f.is_local()));
        assert_eq!(local.mdc_sum(), card.mdc_sum());
        let pre = ModelPreprocessor::from_card(&local).unwrap();
        assert_eq!(pre.eos_token_ids(), [151_645, 151_643]);
        // A second localize is served from the cache.
        assert_eq!(cache.localize(&card).unwrap(), local);
    }
}

#[test]
fn tampered_download_is_rejected() {
    let card = hosted_card(false, |route, mut bytes| {
        if route.ends_with("tokenizer_config.json") {
            bytes.push(b' ');
        }
        Some(bytes)
    });
    let cache_dir = tempfile::tempdir().unwrap();
    let err = CardFileCache::new(cache_dir.path())
        .localize(&card)
        .unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
}

#[test]
fn missing_file_is_a_fetch_error() {
    let card = hosted_card(false, |route, bytes| {
        (!route.ends_with("generation_config.json")).then_some(bytes)
    });
    let cache_dir = tempfile::tempdir().unwrap();
    let err = CardFileCache::new(cache_dir.path())
        .localize(&card)
        .unwrap_err();
    assert!(matches!(err, Error::Fetch { .. }), "{err}");
    assert!(err.to_string().contains("404"), "{err}");
}
