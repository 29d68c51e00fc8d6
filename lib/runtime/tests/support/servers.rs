//! Real etcd and NATS servers for tests and benches: free loopback ports, temp dirs,
//! killed on drop. A test that needs one skips (with a message) only when the binary is
//! not installed; `.ci/run` installs both (Debian `etcd-server`, `nats-server`).

// Each test crate includes this file and uses only the servers it needs.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Finds `name` on `PATH` or in the usual system directories (`nats-server` is in
/// `/usr/sbin` on Debian, often not on a user's `PATH`).
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Prints why a test is skipped; returns `None` so callers can `let Some(x) = … else { return }`.
fn missing(name: &str, package: &str) -> Option<PathBuf> {
    let found = find_binary(name);
    if found.is_none() {
        eprintln!("SKIP: `{name}` is not installed (apt-get install {package}); test skipped");
    }
    found
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral loopback port")
}

/// Polls `ready` until it holds, panicking with the server log after [`READY_TIMEOUT`].
fn wait_ready(child: &mut Child, log: &Path, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + READY_TIMEOUT;
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited with {status} before becoming ready:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "server not ready in {READY_TIMEOUT:?}:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a raw HTTP/1.0 GET to loopback `port` and returns the response, if any.
fn http_get(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).ok()?;
    Some(body)
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        // SIGKILL: the tests want crash semantics, and nothing to flush matters.
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A single-member etcd on loopback with its data in a temp dir.
pub struct EtcdServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl EtcdServer {
    /// Starts etcd, or returns `None` (after printing why) if it is not installed.
    pub fn start() -> Option<Self> {
        let binary = missing("etcd", "etcd-server")?;
        let mut server = Self {
            binary,
            dir: tempfile::tempdir().expect("temp dir"),
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
        };
        server.spawn();
        Some(server)
    }

    /// An etcd that is installed but not started yet (for startup-retry tests).
    pub fn unstarted() -> Option<Self> {
        let binary = missing("etcd", "etcd-server")?;
        Some(Self {
            binary,
            dir: tempfile::tempdir().expect("temp dir"),
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
        })
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// Starts the process (same ports and data dir as before) and waits until healthy.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "etcd already running");
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("etcd.log");
        let log_file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("etcd log file");
        let client = self.endpoint();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut child = Command::new(&self.binary)
            .args(["--name", "stator-test", "--data-dir"])
            .arg(&data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &format!("stator-test={peer}")])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .expect("spawn etcd");
        let port = self.client_port;
        wait_ready(&mut child, &log, || {
            http_get(port, "/health").is_some_and(|r| r.contains("\"health\":\"true\""))
        });
        self.child = Some(child);
    }

    /// SIGKILLs the process (data dir kept).
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }

    /// SIGKILLs the process and deletes its data: the next `spawn` is a brand-new cluster.
    pub fn kill_and_wipe(&mut self) {
        self.kill();
        let data = self.dir.path().join("data");
        if data.exists() {
            std::fs::remove_dir_all(&data).expect("remove etcd data dir");
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A nats-server on loopback (core NATS, no JetStream).
pub struct NatsServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts nats-server, or returns `None` (after printing why) if it is not installed.
    pub fn start() -> Option<Self> {
        let binary = missing("nats-server", "nats-server")?;
        let mut server = Self {
            binary,
            dir: tempfile::tempdir().expect("temp dir"),
            port: free_port(),
            child: None,
        };
        server.spawn();
        Some(server)
    }

    /// The client URL, e.g. `nats://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Starts the process on the same port as before and waits until it greets clients.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "nats-server already running");
        let log = self.dir.path().join("nats.log");
        let mut child = Command::new(&self.binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-l"])
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nats-server");
        let port = self.port;
        wait_ready(&mut child, &log, || {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            else {
                return false;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut greeting = [0_u8; 4];
            stream.read_exact(&mut greeting).is_ok() && &greeting == b"INFO"
        });
        self.child = Some(child);
    }

    /// SIGKILLs the process.
    pub fn kill(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
