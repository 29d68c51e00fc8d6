//! Helpers shared by the worker's end-to-end tests: the worker binary as a child process,
//! discovery-file polling, a client runtime and hand-built requests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stator_protocols::worker::{Annotated, LLMEngineOutput, PreprocessedRequest, StopConditions};
use stator_runtime::discovery::{DiscoveryRecord, FileDiscoveryConfig};
use stator_runtime::{DiscoveryBackend, RequestPlaneConfig, RuntimeConfig};

/// Generous bound on anything a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// The shipped model directory.
pub fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/qwen2.5-0.5b-mock")
}

/// A worker binary running against file discovery under `root`; killed on drop.
pub struct WorkerProcess {
    child: Child,
    pub log: PathBuf,
}

impl WorkerProcess {
    /// Starts `worker` with `args` plus loopback hosts and `DYN_FILE_KV=root`.
    pub fn start(root: &Path, args: &[&str]) -> Self {
        let log = root.join(format!("worker-{}.log", rand_suffix()));
        let stderr = std::fs::File::create(&log).expect("log file in the temp dir");
        let model = model_dir();
        let child = Command::new(env!("CARGO_BIN_EXE_worker"))
            .args(["--model-path", model.to_str().expect("utf-8 path")])
            .args(["--discovery-backend", "file"])
            .args(["--tcp-rpc-host", "127.0.0.1"])
            .args(["--tcp-response-stream-host", "127.0.0.1"])
            .args(["--event-plane-host", "127.0.0.1"])
            .args(args)
            .env("DYN_FILE_KV", root)
            .env("DYN_LOG", "info")
            .env_remove("DYN_SYSTEM_PORT")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("worker binary starts");
        Self { child, log }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait on the worker") {
                return status;
            }
            assert!(start.elapsed() < PATIENCE, "worker did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The worker's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The records currently stored in `bucket` (e.g. `v1/mdc`) of file discovery under `root`.
pub fn records(root: &Path, bucket: &str) -> Vec<DiscoveryRecord> {
    let Ok(entries) = std::fs::read_dir(root.join(bucket)) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect()
}

/// Waits until `bucket` holds exactly `n` records and returns them.
pub fn wait_for_records(
    root: &Path,
    bucket: &str,
    n: usize,
    worker: &WorkerProcess,
) -> Vec<DiscoveryRecord> {
    let start = Instant::now();
    loop {
        let found = records(root, bucket);
        if found.len() == n {
            return found;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{bucket}: {} records, want {n}; worker log:\n{}",
            found.len(),
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A client runtime configuration on file discovery under `root`, loopback only.
pub fn client_config(root: &Path) -> RuntimeConfig {
    RuntimeConfig {
        discovery_backend: DiscoveryBackend::File,
        file_discovery: FileDiscoveryConfig::new(root),
        request_plane: RequestPlaneConfig {
            rpc_host: Some("127.0.0.1".into()),
            response_host: Some("127.0.0.1".into()),
            ..RequestPlaneConfig::default()
        },
        ..RuntimeConfig::default()
    }
}

/// A preprocessed request for `tokens`, built by hand.
pub fn request(tokens: &[u32], max_tokens: Option<u32>) -> PreprocessedRequest {
    PreprocessedRequest {
        model: "qwen2.5-0.5b-mock".into(),
        token_ids: tokens.to_vec(),
        stop_conditions: StopConditions {
            max_tokens,
            ..StopConditions::default()
        },
        eos_token_ids: vec![151_645, 151_643],
        ..PreprocessedRequest::default()
    }
}

/// Every generated token of a collected stream.
pub fn tokens(items: &[Annotated<LLMEngineOutput>]) -> Vec<u32> {
    items
        .iter()
        .filter_map(|i| i.data.as_ref())
        .flat_map(|d| d.token_ids.iter().copied())
        .collect()
}

/// The last item's engine output (finish reason, usage).
pub fn last(items: &[Annotated<LLMEngineOutput>]) -> &LLMEngineOutput {
    items
        .last()
        .and_then(|i| i.data.as_ref())
        .expect("a final data item")
}
