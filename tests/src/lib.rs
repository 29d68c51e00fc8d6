//! Helpers for Stator's end-to-end tests: frontend and worker processes on loopback with file
//! discovery in a temp dir (killed on drop), and a minimal HTTP/1.1 client that can also
//! read a response partly and hang up.
//!
//! The test binaries pass the process paths in (`env!("CARGO_BIN_EXE_e2e-frontend")`,
//! `env!("CARGO_BIN_EXE_e2e-worker")`), which cargo builds before the tests run.
//!
//! ```no_run
//! use stator_e2e::{Cluster, ClusterSpec};
//!
//! let cluster = Cluster::start(&ClusterSpec::echo("frontend-bin", "worker-bin"));
//! let models = cluster.get("/v1/models");
//! assert_eq!(models.status, 200);
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The served name of the shipped model.
pub const MODEL: &str = "qwen2.5-0.5b-mock";

/// Generous bound on anything a test waits for.
pub const PATIENCE: Duration = Duration::from_mins(2);

/// The shipped model directory.
pub fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/qwen2.5-0.5b-mock")
}

/// A free loopback port (released again; the process that takes it binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A child process that is killed when dropped.
pub struct Process {
    child: Child,
    /// Where its stderr goes.
    pub log: PathBuf,
}

impl Process {
    /// Starts `bin` with `args` and `envs`, logging to `log`.
    pub fn spawn(bin: &str, args: &[String], envs: &[(String, String)], log: PathBuf) -> Self {
        let stderr = std::fs::File::create(&log).expect("log file in the temp dir");
        let child = Command::new(bin)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .env("DYN_LOG", "info")
            .env_remove("DYN_SYSTEM_PORT")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        Self { child, log }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Path of the frontend binary.
    pub frontend_bin: String,
    /// Path of the worker binary.
    pub worker_bin: String,
    /// Extra worker flags (after `--engine echo` etc.).
    pub worker_args: Vec<String>,
    /// Extra worker environment.
    pub worker_env: Vec<(String, String)>,
    /// Extra frontend flags.
    pub frontend_args: Vec<String>,
    /// Extra frontend environment.
    pub frontend_env: Vec<(String, String)>,
    /// Discovery and plane flags for both processes; `None` means file discovery in the
    /// cluster's temp dir with the TCP request plane and ZMQ events.
    pub planes: Option<Vec<String>>,
}

impl ClusterSpec {
    /// One echo worker behind one frontend.
    pub fn echo(frontend_bin: &str, worker_bin: &str) -> Self {
        Self {
            frontend_bin: frontend_bin.to_owned(),
            worker_bin: worker_bin.to_owned(),
            worker_args: vec!["--engine".into(), "echo".into()],
            worker_env: Vec::new(),
            frontend_args: Vec::new(),
            frontend_env: Vec::new(),
            planes: None,
        }
    }
}

/// A frontend and a worker process sharing discovery (by default files in a temp dir).
pub struct Cluster {
    /// The frontend process.
    pub frontend: Process,
    /// The worker process.
    pub worker: Process,
    /// `127.0.0.1:port` of the frontend.
    pub addr: String,
    spec: ClusterSpec,
    dir: tempfile::TempDir,
}

/// Loopback addresses for every plane, then the spec's discovery and plane flags.
fn discovery_args(spec: &ClusterSpec, dir: &Path) -> Vec<String> {
    let mut args: Vec<String> = [
        "--tcp-rpc-host",
        "127.0.0.1",
        "--tcp-response-stream-host",
        "127.0.0.1",
        "--event-plane-host",
        "127.0.0.1",
    ]
    .map(str::to_owned)
    .to_vec();
    match &spec.planes {
        Some(planes) => args.extend(planes.iter().cloned()),
        None => args.extend([
            "--discovery-backend".to_owned(),
            "file".to_owned(),
            "--file-kv".to_owned(),
            dir.join("kv").to_string_lossy().into_owned(),
        ]),
    }
    args
}

impl Cluster {
    /// Starts the worker and the frontend and waits until the model is served.
    pub fn start(spec: &ClusterSpec) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("kv")).expect("discovery dir");
        let worker = spawn_worker(spec, dir.path(), "worker");
        let port = free_port();
        let mut frontend_args = vec![
            "--http-host".to_owned(),
            "127.0.0.1".to_owned(),
            "--http-port".to_owned(),
            port.to_string(),
            "--card-cache-dir".to_owned(),
            dir.path().join("cards").to_string_lossy().into_owned(),
        ];
        frontend_args.extend(discovery_args(spec, dir.path()));
        frontend_args.extend(spec.frontend_args.iter().cloned());
        let frontend = Process::spawn(
            &spec.frontend_bin,
            &frontend_args,
            &spec.frontend_env,
            dir.path().join("frontend.log"),
        );
        let cluster = Self {
            frontend,
            worker,
            addr: format!("127.0.0.1:{port}"),
            spec: spec.clone(),
            dir,
        };
        cluster.wait_until_served(MODEL);
        cluster
    }

    /// Starts one more worker process like the first, logging to `{name}.log`.
    pub fn add_worker(&self, name: &str) -> Process {
        spawn_worker(&self.spec, self.dir.path(), name)
    }

    /// The temp dir holding discovery, caches and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Polls `/v1/models` until `model` is listed.
    pub fn wait_until_served(&self, model: &str) {
        let start = Instant::now();
        loop {
            if let Ok(resp) = try_request(&self.addr, "GET", "/v1/models", &[], b"")
                && resp.status == 200
                && resp.json()["data"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|m| m["id"] == model))
            {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{model} was never served\nfrontend log:\n{}\nworker log:\n{}",
                self.frontend.log_text(),
                self.worker.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> HttpResponse {
        request(&self.addr, "GET", path, &[], b"")
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> HttpResponse {
        request(
            &self.addr,
            "POST",
            path,
            &[("content-type", "application/json")],
            body.to_string().as_bytes(),
        )
    }
}

/// A worker process of `spec` with its discovery under `dir`, serving the shipped model
/// unless the spec's worker flags name another `--model-path`.
fn spawn_worker(spec: &ClusterSpec, dir: &Path, name: &str) -> Process {
    let mut args = Vec::new();
    if !spec.worker_args.iter().any(|a| a == "--model-path") {
        args.extend([
            "--model-path".to_owned(),
            model_dir().to_string_lossy().into_owned(),
        ]);
    }
    args.extend(discovery_args(spec, dir));
    args.extend(spec.worker_args.iter().cloned());
    Process::spawn(
        &spec.worker_bin,
        &args,
        &spec.worker_env,
        dir.join(format!("{name}.log")),
    )
}

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The (de-chunked) body.
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The `data:` payloads of an SSE body, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(str::to_owned)
            .collect()
    }
}

/// Sends one request (`Connection: close`) and reads the whole response.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    try_request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path} on {addr}: {e}"))
}

fn write_request(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    // A server may answer (413) and close before reading an oversized body: keep going and
    // read its answer.
    if let Err(e) = stream.write_all(body) {
        eprintln!("request body not fully sent: {e}");
    }
    Ok(())
}

fn read_head(reader: &mut impl BufRead) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            return Ok((status, headers));
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
}

/// [`request`] returning I/O errors instead of panicking.
pub fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    write_request(&mut stream, method, path, headers, body)?;
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader)?;
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut raw = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16)
                .map_err(|e| std::io::Error::other(format!("chunk size {size:?}: {e}")))?;
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk)?;
            raw.extend_from_slice(&chunk[..n]);
        }
    } else {
        reader.read_to_end(&mut raw)?;
    }
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&raw).into_owned(),
    })
}

/// Starts a streaming request, waits for the first `data:` line, then hangs up.
pub fn stream_then_disconnect(addr: &str, path: &str, body: &Value) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the frontend");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("socket timeout");
    write_request(
        &mut stream,
        "POST",
        path,
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
    .expect("send the request");
    let mut reader = BufReader::new(stream);
    let (status, _) = read_head(&mut reader).expect("response head");
    assert_eq!(status, 200);
    let mut line = String::new();
    while !line.contains("data: ") {
        line.clear();
        reader.read_line(&mut line).expect("a chunk");
    }
    line
}

/// The sum of the frontend's `/metrics` samples whose line starts with `sample_prefix`.
pub fn metric_value(addr: &str, sample_prefix: &str) -> f64 {
    request(addr, "GET", "/metrics", &[], b"")
        .body
        .lines()
        .filter(|l| l.starts_with(sample_prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `/metrics` until the samples starting with `sample_prefix` sum to `value`.
pub fn wait_for_metric(addr: &str, sample_prefix: &str, value: f64) {
    wait_for_metric_where(addr, sample_prefix, |current| {
        (current - value).abs() < f64::EPSILON
    });
}

/// Polls `/metrics` until the samples starting with `sample_prefix` sum to a value that
/// satisfies `accept`.
pub fn wait_for_metric_where(addr: &str, sample_prefix: &str, accept: impl Fn(f64) -> bool) {
    let start = Instant::now();
    loop {
        let current = metric_value(addr, sample_prefix);
        if accept(current) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{sample_prefix} stayed at {current}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
