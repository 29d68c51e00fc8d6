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

/// PEM files of a throwaway CA, an etcd server certificate for 127.0.0.1 and a client
/// certificate, made with the `openssl` command line tool.
pub struct TlsFiles {
    /// CA certificate.
    pub ca: PathBuf,
    /// Server certificate and key.
    pub server: (PathBuf, PathBuf),
    /// Client certificate and key.
    pub client: (PathBuf, PathBuf),
}

impl TlsFiles {
    /// Generates the files in `dir`, or returns `None` if `openssl` is not installed.
    pub fn generate(dir: &Path) -> Option<Self> {
        let openssl = missing("openssl", "openssl")?;
        let run = |args: &[&str]| {
            let out = Command::new(&openssl)
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=stator-test-ca",
            ],
        ]
        .concat());
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            std::fs::write(
                dir.join(format!("{name}.ext")),
                format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
            )
            .expect("write extension file");
            let (key, csr, pem, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            run(&[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN={name}"),
                ],
            ]
            .concat());
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ]);
        }
        Some(Self {
            ca: dir.join("ca.pem"),
            server: (dir.join("server.pem"), dir.join("server.key")),
            client: (dir.join("client.pem"), dir.join("client.key")),
        })
    }
}

/// A single-member etcd on loopback with its data in a temp dir.
pub struct EtcdServer {
    binary: PathBuf,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    tls: Option<TlsFiles>,
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
            tls: None,
        };
        server.spawn();
        Some(server)
    }

    /// Starts etcd serving clients over mutual TLS only (see [`EtcdServer::tls`]), or
    /// returns `None` if etcd or openssl is not installed.
    pub fn start_tls() -> Option<Self> {
        let binary = missing("etcd", "etcd-server")?;
        let dir = tempfile::tempdir().expect("temp dir");
        let tls = TlsFiles::generate(dir.path())?;
        let mut server = Self {
            binary,
            dir,
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
            tls: Some(tls),
        };
        server.spawn();
        Some(server)
    }

    /// The certificates of a TLS server.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
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
            tls: None,
        })
    }

    /// The client URL, e.g. `http://127.0.0.1:40123` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
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
        let mut command = Command::new(&self.binary);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(&tls.server.0)
                .arg("--key-file")
                .arg(&tls.server.1)
                .arg("--trusted-ca-file")
                .arg(&tls.ca)
                .arg("--client-cert-auth");
        }
        let mut child = command
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
        if self.tls.is_some() {
            // Plain HTTP cannot ask a TLS-only server; an open port is enough, clients retry.
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            wait_ready(&mut child, &log, || {
                TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            });
        } else {
            wait_ready(&mut child, &log, || {
                http_get(port, "/health").is_some_and(|r| r.contains("\"health\":\"true\""))
            });
        }
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
