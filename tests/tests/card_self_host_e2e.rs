//! A worker with a system status server publishes its model card's files as URLs on that
//! server (`/v1/metadata/…`, Dynamo's self-hosted metadata), and the frontend fetches them
//! from there: the worker's model directory is a private copy the frontend never reads.

use serde_json::{Value, json};
use stator_e2e::{Cluster, ClusterSpec, MODEL, model_dir};

/// Copies the shipped model directory into `dir`.
fn private_model_copy(dir: &std::path::Path) -> std::path::PathBuf {
    let copy = dir.join(MODEL);
    std::fs::create_dir_all(&copy).expect("model copy dir");
    for entry in std::fs::read_dir(model_dir()).expect("shipped model") {
        let entry = entry.expect("dir entry");
        std::fs::copy(entry.path(), copy.join(entry.file_name())).expect("copy model file");
    }
    copy
}

#[test]
fn the_frontend_fetches_self_hosted_card_files() {
    let private = tempfile::tempdir().expect("temp dir");
    let model = private_model_copy(private.path());
    let mut spec = ClusterSpec::echo(
        env!("CARGO_BIN_EXE_e2e-frontend"),
        env!("CARGO_BIN_EXE_e2e-worker"),
    );
    spec.worker_args.extend(
        [
            "--model-path",
            model.to_str().expect("utf-8 path"),
            "--system-host",
            "127.0.0.1",
            "--system-port",
            "0",
        ]
        .map(str::to_owned),
    );
    let c = Cluster::start(&spec);

    let cards: Vec<Value> = std::fs::read_dir(c.dir().join("kv/v1/mdc"))
        .expect("model cards in discovery")
        .map(|entry| {
            let text = std::fs::read_to_string(entry.expect("card file").path()).expect("read");
            serde_json::from_str(&text).expect("card JSON")
        })
        .collect();
    assert_eq!(cards.len(), 1);
    let tokenizer = cards[0]["card_json"]["tokenizer"]["hf_tokenizer_json"]["path"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        tokenizer.starts_with("http://127.0.0.1:")
            && tokenizer.contains("/v1/metadata/dynamo/backend/generate/")
            && tokenizer.ends_with("/_base/tokenizer.json"),
        "{}",
        cards[0]
    );

    let resp = c.post_json(
        "/v1/chat/completions",
        &json!({"model": MODEL, "messages": [{"role": "user", "content": "Hello there"}], "max_tokens": 3}),
    );
    assert_eq!(resp.status, 200, "{}", resp.body);
    assert_eq!(resp.json()["usage"]["completion_tokens"], 3);
}
