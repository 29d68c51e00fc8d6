//! Multi-process tests: the `echo_worker` example in its own process, registered through file
//! discovery in a temporary directory, called from this process over loopback (TCP request
//! plane, and NATS request plane through a real `nats-server`).
//!
//! The worker binary is the example built by `cargo test` (examples are built with the
//! tests); when a filtered run skipped it, build it with
//! `cargo build -p stator-runtime --example echo_worker`.

#[path = "support/servers.rs"]
mod servers;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use stator_runtime::discovery::{Bucket, DiscoveryQuery, FileDiscoveryConfig};
use stator_runtime::{
    Context, DiscoveryBackend, DistributedRuntime, EndpointId, ErrorClass, PushRouter, Request,
    RuntimeConfig,
};

const GENEROUS: Duration = Duration::from_secs(30);
const ENDPOINT: &str = "dyn://mptest.echo.generate";

fn echo_worker_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps");
    let worker = profile_dir.join("examples").join("echo_worker");
    assert!(
        worker.exists(),
        "{} is missing: run `cargo build -p stator-runtime --example echo_worker` (plain `cargo test` builds it)",
        worker.display()
    );
    worker
}

/// A worker child process; killed when dropped.
struct Worker {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Worker {
    fn spawn(kv: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(echo_worker_binary());
        cmd.args(["--endpoint", ENDPOINT, "--discovery-backend", "file"])
            .args(args)
            .env("DYN_FILE_KV", kv)
            .env("DYN_TCP_RPC_HOST", "127.0.0.1")
            .env("DYN_TCP_RESPONSE_STREAM_HOST", "127.0.0.1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn echo worker");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let worker = Self { child, lines };
        worker.expect_line(|l| l.starts_with("READY "));
        worker
    }

    /// Waits (generously) for a stdout line matching `pred`.
    fn expect_line(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + GENEROUS;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!("worker never printed the expected line: {e}"),
            }
        }
    }

    fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL the worker");
        self.child.wait().expect("reap the worker");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn client_runtime(kv: &Path, ttl: Duration) -> DistributedRuntime {
    client_runtime_with_nats(kv, ttl, stator_runtime::event_plane::NatsConfig::default()).await
}

async fn client_runtime_with_nats(
    kv: &Path,
    ttl: Duration,
    nats: stator_runtime::event_plane::NatsConfig,
) -> DistributedRuntime {
    let mut file_discovery = FileDiscoveryConfig::new(kv);
    file_discovery.ttl = ttl;
    let config = RuntimeConfig {
        discovery_backend: DiscoveryBackend::File,
        file_discovery,
        request_plane: stator_runtime::RequestPlaneConfig {
            rpc_host: Some("127.0.0.1".to_owned()),
            response_host: Some("127.0.0.1".to_owned()),
            nats,
            ..Default::default()
        },
        ..RuntimeConfig::default()
    };
    DistributedRuntime::new(config)
        .await
        .expect("client runtime")
}

async fn router(drt: &DistributedRuntime) -> PushRouter<Value, Value> {
    let id = EndpointId::parse(ENDPOINT).expect("endpoint");
    let endpoint = stator_runtime::Endpoint::from_id(drt, id).expect("endpoint");
    let router = endpoint.client().await.expect("router");
    within(router.instances().wait_for_instances()).await;
    router
}

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GENEROUS, fut)
        .await
        .expect("finished within the generous timeout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_process_streams_echo_items_to_a_client() {
    let kv = tempfile::tempdir().expect("tempdir");
    let _worker = Worker::spawn(kv.path(), &["--items", "4"], &[]);
    let drt = client_runtime(kv.path(), Duration::from_secs(10)).await;

    let records = drt
        .discovery()
        .list(&DiscoveryQuery::Endpoint(
            EndpointId::parse(ENDPOINT).expect("id"),
        ))
        .await
        .expect("list");
    assert_eq!(records.len(), 1);
    assert!(kv.path().join(Bucket::Instances.as_str()).is_dir());

    let router = router(&drt).await;
    for payload in [json!({"prompt": "hello"}), json!([1, 2, 3]), json!("text")] {
        let stream = within(router.generate_with(Request::new(payload.clone()), router.mode()))
            .await
            .expect("accepted");
        let items = within(stream.try_collect_items()).await.expect("complete");
        let expected: Vec<Value> = (0..4)
            .map(|i| json!({"echo": payload, "index": i}))
            .collect();
        assert_eq!(items, expected);
    }
    drt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_worker_process_streams_echo_items_to_a_client() {
    let Some(nats) = servers::NatsServer::start() else {
        return;
    };
    let kv = tempfile::tempdir().expect("tempdir");
    let url = nats.url();
    let worker = Worker::spawn(
        kv.path(),
        &["--items", "3"],
        &[("DYN_REQUEST_PLANE", "nats"), ("NATS_SERVER", &url)],
    );
    let drt = client_runtime_with_nats(
        kv.path(),
        Duration::from_secs(10),
        stator_runtime::event_plane::NatsConfig::new(url.clone()),
    )
    .await;
    let router = router(&drt).await;
    let instances = router.instances().list();
    let [entry] = instances.as_slice() else {
        panic!("expected one instance, got {instances:?}")
    };
    let stator_runtime::request_plane::RequestTarget::Nats(target) = &entry.target else {
        panic!("the worker registered a NATS transport: {entry:?}")
    };
    assert_eq!(
        target.subject,
        format!("mptest_echo.generate-{:x}", entry.id.0)
    );

    let stream = within(router.generate_with(Request::new(json!("hi")), router.mode()))
        .await
        .expect("accepted over NATS");
    let items = within(stream.try_collect_items()).await.expect("complete");
    let expected: Vec<Value> = (0..3).map(|i| json!({"echo": "hi", "index": i})).collect();
    assert_eq!(items, expected);

    drop(worker);
    drt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_reaches_the_worker_as_kill() {
    let kv = tempfile::tempdir().expect("tempdir");
    let worker = Worker::spawn(
        kv.path(),
        &["--items", "100000", "--item-delay-ms", "10"],
        &[],
    );
    let drt = client_runtime(kv.path(), Duration::from_secs(10)).await;
    let router = router(&drt).await;

    let ctx = Context::with_id("disconnect-me");
    let mut stream =
        within(router.generate_with(Request::with_context(json!("x"), ctx), router.mode()))
            .await
            .expect("accepted");
    within(stream.next())
        .await
        .expect("an item")
        .expect("ok item");
    drop(stream);
    let line = worker.expect_line(|l| l.starts_with("END disconnect-me"));
    assert_eq!(line, "END disconnect-me killed");
    drt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_worker_gives_disconnected_and_expires_from_discovery() {
    let kv = tempfile::tempdir().expect("tempdir");
    let ttl = Duration::from_secs(2);
    let mut worker = Worker::spawn(
        kv.path(),
        &[
            "--items",
            "100000",
            "--item-delay-ms",
            "10",
            "--file-kv-ttl-secs",
            "2",
        ],
        &[],
    );
    let drt = client_runtime(kv.path(), ttl).await;
    let router = router(&drt).await;

    let mut stream = within(router.generate_with(Request::new(json!("x")), router.mode()))
        .await
        .expect("accepted");
    within(stream.next())
        .await
        .expect("an item")
        .expect("ok item");
    worker.sigkill();

    let err = within(async {
        loop {
            match stream.next().await {
                Some(Ok(_)) => {}
                Some(Err(err)) => return err,
                None => panic!("stream ended without an error"),
            }
        }
    })
    .await;
    assert_eq!(err.specific_class(), ErrorClass::Disconnected);
    assert!(stream.next().await.is_none(), "the error ends the stream");
    assert!(
        router.available().is_empty(),
        "the failed instance is inhibited"
    );

    within(async {
        while !router.instances().list().is_empty() {
            router.instances().changed().await;
        }
    })
    .await;
    drt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_worker_answers_overloaded() {
    let kv = tempfile::tempdir().expect("tempdir");
    let _worker = Worker::spawn(
        kv.path(),
        &["--items", "100000", "--item-delay-ms", "10"],
        &[
            ("DYN_TCP_WORKER_POOL_SIZE", "1"),
            ("DYN_TCP_WORK_QUEUE_SIZE", "0"),
        ],
    );
    let drt = client_runtime(kv.path(), Duration::from_secs(10)).await;
    let router = router(&drt).await;

    let mut busy = within(router.generate_with(Request::new(json!("busy")), router.mode()))
        .await
        .expect("first request takes the only slot");
    within(busy.next())
        .await
        .expect("an item")
        .expect("ok item");
    let err = within(router.generate_with(Request::new(json!("more")), router.mode()))
        .await
        .expect_err("no slot and no queue");
    assert_eq!(err.specific_class(), ErrorClass::WorkerOverloaded);
    assert_eq!(err.message(), "Server overloaded: worker at capacity");
    drop(busy);
    drt.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_fails_every_inline_stream_sharing_the_connection() {
    let kv = tempfile::tempdir().expect("tempdir");
    let mut worker = Worker::spawn(
        kv.path(),
        &["--items", "100000", "--item-delay-ms", "10"],
        &[],
    );
    let drt = client_runtime(kv.path(), Duration::from_secs(10)).await;
    assert!(drt.config().request_plane.inline_responses);
    let router = router(&drt).await;

    let mut streams = Vec::new();
    for i in 0..3 {
        let mut stream = within(router.generate_with(Request::new(json!(i)), router.mode()))
            .await
            .expect("accepted");
        within(stream.next())
            .await
            .expect("an item")
            .expect("ok item");
        streams.push(stream);
    }
    worker.sigkill();
    for mut stream in streams {
        let err = within(async {
            loop {
                match stream.next().await {
                    Some(Ok(_)) => {}
                    Some(Err(err)) => return err,
                    None => panic!("stream ended without an error"),
                }
            }
        })
        .await;
        assert_eq!(err.specific_class(), ErrorClass::Disconnected);
    }
    drt.shutdown().await;
}
