//! Interoperability with real Dynamo 1.6.1 processes (its Python runtime), run by hand:
//!
//! ```text
//! python -m venv /tmp/dynvenv
//! /tmp/dynvenv/bin/pip install --no-deps ai-dynamo==1.6.1 ai-dynamo-runtime==1.6.1  # + their small deps
//! STATOR_DYNAMO_PYTHON=/tmp/dynvenv/bin/python cargo test -p stator-runtime --test dynamo_interop
//! ```
//!
//! Without `STATOR_DYNAMO_PYTHON` every test returns at once (CI has no Dynamo). Both
//! directions run over file discovery and the TCP request plane with Stator's defaults, inline
//! responses on: a Stator client adds its inline header to requests for the Dynamo worker,
//! which must ignore it and dial back; a Dynamo client never sends it, so the Stator worker
//! must dial back.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stator_runtime::discovery::FileDiscoveryConfig;
use stator_runtime::{
    DiscoveryBackend, DistributedRuntime, EndpointId, PushRouter, Request, RuntimeConfig,
};

const GENEROUS: Duration = Duration::from_secs(45);

/// Calls an endpoint three times with the Dynamo Python client; prints `ITEMS <json list>`.
const PY_CLIENT: &str = r#"
import asyncio, json, sys
from dynamo.runtime import DistributedRuntime

async def main(path):
    rt = DistributedRuntime(asyncio.get_running_loop(), "file", "tcp")
    client = await rt.endpoint(path).client()
    await asyncio.wait_for(client.wait_for_instances(), 45)
    for payload in [{"prompt": "hello"}, [1, 2, 3], "text"]:
        stream = await client.round_robin(payload)
        items = [item.data() async for item in stream]
        print("ITEMS", json.dumps(items), flush=True)
    rt.shutdown()

asyncio.run(main(sys.argv[1]))
"#;

/// A Dynamo Python worker streaming `{"echo": request, "index": i}` three times.
const PY_WORKER: &str = r#"
import asyncio, sys
from dynamo.runtime import DistributedRuntime

async def main(path):
    rt = DistributedRuntime(asyncio.get_running_loop(), "file", "tcp")
    endpoint = rt.endpoint(path)

    async def generate(request, context=None):
        for i in range(3):
            yield {"echo": request, "index": i}

    print("READY", flush=True)
    await endpoint.serve_endpoint(generate)

asyncio.run(main(sys.argv[1]))
"#;

fn dynamo_python() -> Option<PathBuf> {
    let python = std::env::var_os("STATOR_DYNAMO_PYTHON").map(PathBuf::from);
    if python.is_none() {
        eprintln!("STATOR_DYNAMO_PYTHON is not set: Dynamo interop check skipped");
    }
    python
}

fn echo_worker_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps")
        .join("examples")
        .join("echo_worker")
}

/// A child process whose stdout lines are collected; killed when dropped.
struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn spawn(mut cmd: Command, kv: &Path) -> Self {
        cmd.env("DYN_FILE_KV", kv)
            .env("DYN_TCP_RPC_HOST", "127.0.0.1")
            .env("DYN_TCP_RESPONSE_STREAM_HOST", "127.0.0.1")
            .env("DYN_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    fn expect_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + GENEROUS;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line starting with {prefix:?}: {e}"),
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn expected(payload: &Value) -> Vec<Value> {
    (0..3)
        .map(|i| json!({"echo": payload, "index": i}))
        .collect()
}

#[test]
fn a_dynamo_python_client_calls_the_stator_echo_worker() {
    let Some(python) = dynamo_python() else {
        return;
    };
    let kv = tempfile::tempdir().expect("tempdir");
    let mut worker = Command::new(echo_worker_binary());
    worker.args([
        "--endpoint",
        "dyn://interop.stator.generate",
        "--discovery-backend",
        "file",
        "--items",
        "3",
        "--annotated",
    ]);
    let worker = Process::spawn(worker, kv.path());
    worker.expect_line("READY ");
    let script = kv.path().join("client.py");
    std::fs::write(&script, PY_CLIENT).expect("script");
    let mut client = Command::new(python);
    client.arg(&script).arg("dyn://interop.stator.generate");
    let client = Process::spawn(client, kv.path());
    for payload in [json!({"prompt": "hello"}), json!([1, 2, 3]), json!("text")] {
        let line = client.expect_line("ITEMS ");
        let items: Vec<Value> =
            serde_json::from_str(line.trim_start_matches("ITEMS ")).expect("json items");
        assert_eq!(items, expected(&payload));
    }
    for _ in 0..3 {
        assert!(worker.expect_line("END ").ends_with(" done"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stator_client_calls_a_dynamo_python_worker() {
    let Some(python) = dynamo_python() else {
        return;
    };
    let kv = tempfile::tempdir().expect("tempdir");
    let script = kv.path().join("worker.py");
    std::fs::write(&script, PY_WORKER).expect("script");
    let mut worker = Command::new(python);
    worker.arg(&script).arg("dyn://interop.dynamo.generate");
    let worker = Process::spawn(worker, kv.path());
    worker.expect_line("READY");

    let config = RuntimeConfig {
        discovery_backend: DiscoveryBackend::File,
        file_discovery: FileDiscoveryConfig::new(kv.path()),
        request_plane: stator_runtime::RequestPlaneConfig {
            rpc_host: Some("127.0.0.1".to_owned()),
            response_host: Some("127.0.0.1".to_owned()),
            ..Default::default()
        },
        ..RuntimeConfig::default()
    };
    assert!(
        config.request_plane.inline_responses,
        "the client asks for inline responses; Dynamo must ignore it"
    );
    let drt = DistributedRuntime::new(config).await.expect("runtime");
    let id = EndpointId::parse("dyn://interop.dynamo.generate").expect("endpoint");
    let router: PushRouter<Value, Value> = stator_runtime::Endpoint::from_id(&drt, id)
        .expect("endpoint")
        .client()
        .await
        .expect("router");
    tokio::time::timeout(GENEROUS, router.instances().wait_for_instances())
        .await
        .expect("the Dynamo worker registers");
    for payload in [json!({"prompt": "hello"}), json!([1, 2, 3]), json!("text")] {
        let items = tokio::time::timeout(GENEROUS, async {
            let stream = router
                .generate_with(Request::new(payload.clone()), router.mode())
                .await
                .expect("accepted");
            stream.try_collect_items().await.expect("complete")
        })
        .await
        .expect("in time");
        // Dynamo's Python worker wraps each item as `Annotated`: `{"data": item, …}`.
        let data: Vec<Value> = items.iter().map(|i| i["data"].clone()).collect();
        assert_eq!(data, expected(&payload), "{items:?}");
    }
    drop(worker);
    drt.shutdown().await;
}
