//! etcd liveness across processes: the `etcd_register` example holds a registration in its
//! own process; SIGKILL leaves the key to expire with the lease, SIGTERM revokes it at once.
//! Needs the example binary, which plain `cargo test` builds.

#[path = "support/servers.rs"]
mod servers;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use servers::EtcdServer;
use stator_runtime::discovery::{
    Discovery, DiscoveryEvent, DiscoveryQuery, DiscoveryStream, EtcdConfig, EtcdDiscovery,
};
use stator_runtime::names::{EndpointId, InstanceId};

/// Generous, and still shorter than the 30 s lease of the SIGTERM test.
const WAIT: Duration = Duration::from_secs(15);
const ENDPOINT: &str = "dyn://mp.echo.generate";

fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/<profile>/deps")
        .join("examples")
        .join("etcd_register");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p stator-runtime --example etcd_register` (plain `cargo test` builds it)",
        binary.display()
    );
    binary
}

/// The registering child; killed when dropped.
struct Registrant {
    child: Child,
    id: InstanceId,
}

impl Registrant {
    async fn spawn(server: &EtcdServer, ttl_secs: u64) -> Self {
        let mut child = Command::new(example_binary())
            .args(["--endpoint", ENDPOINT])
            .env("ETCD_ENDPOINTS", server.endpoint())
            .env("ETCD_LEASE_TTL", ttl_secs.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn etcd_register");
        let stdout = child.stdout.take().expect("piped stdout");
        let line = tokio::time::timeout(
            WAIT,
            tokio::task::spawn_blocking(move || {
                let mut line = String::new();
                BufReader::new(stdout).read_line(&mut line).map(|_| line)
            }),
        )
        .await
        .expect("READY within the timeout")
        .expect("reader thread")
        .expect("read child stdout");
        let hex = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let id = InstanceId::from_hex(hex).expect("hex instance id");
        Self { child, id }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}

impl Drop for Registrant {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn next(watch: &mut DiscoveryStream) -> DiscoveryEvent {
    tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("watch event within the timeout")
        .expect("watch open")
}

async fn watcher(server: &EtcdServer) -> (EtcdDiscovery, DiscoveryStream) {
    let watcher = EtcdDiscovery::connect(EtcdConfig::new([server.endpoint()]))
        .await
        .expect("connect");
    let endpoint = EndpointId::parse(ENDPOINT).expect("valid endpoint");
    let mut watch = watcher
        .watch(&DiscoveryQuery::Endpoint(endpoint))
        .await
        .expect("watch");
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Resync(vec![]));
    (watcher, watch)
}

async fn added_instance(watch: &mut DiscoveryStream) -> InstanceId {
    match next(watch).await {
        DiscoveryEvent::Added(record) => record.instance_id(),
        other => panic!("expected Added, got {other:?}"),
    }
}

#[tokio::test]
async fn a_sigkilled_process_vanishes_when_its_lease_expires() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let (watcher, mut watch) = watcher(&server).await;
    let mut registrant = Registrant::spawn(&server, 2).await;
    assert_eq!(added_instance(&mut watch).await, registrant.id);

    registrant.child.kill().expect("SIGKILL");
    registrant.child.wait().expect("reap");
    match next(&mut watch).await {
        DiscoveryEvent::Removed(id) => assert_eq!(id.instance_id(), registrant.id),
        other => panic!("expected Removed, got {other:?}"),
    }
    watcher.shutdown().await;
}

#[tokio::test]
async fn sigterm_revokes_the_lease_at_once() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let (watcher, mut watch) = watcher(&server).await;
    // A 30 s lease: a removal seen within WAIT comes from the revoke, not from expiry.
    let mut registrant = Registrant::spawn(&server, 30).await;
    assert_eq!(added_instance(&mut watch).await, registrant.id);

    registrant.signal("TERM");
    match next(&mut watch).await {
        DiscoveryEvent::Removed(id) => assert_eq!(id.instance_id(), registrant.id),
        other => panic!("expected Removed, got {other:?}"),
    }
    let status = registrant.child.wait().expect("reap");
    assert!(status.success(), "clean exit after SIGTERM: {status}");
    watcher.shutdown().await;
}
