//! The `loadgen` binary end to end against the `loadgen-mock` binary.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the mock on drop so a failing assertion leaves no process behind.
struct MockProcess(Child);

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `loadgen-mock` on an OS-assigned port and reads the URL it reports.
fn start_mock() -> (MockProcess, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen-mock"))
        .args(["--addr", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen-mock");
    let stderr = child.stderr.take().expect("piped stderr");
    let mock = MockProcess(child);
    let mut line = String::new();
    BufReader::new(stderr)
        .read_line(&mut line)
        .expect("read the mock's address line");
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .expect("address at the end of the line")
        .to_owned();
    (mock, url)
}

fn json_rows(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("read json output")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

#[test]
fn measures_a_pid_and_writes_table_and_json() {
    let (mock, url) = start_mock();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("rows.jsonl");
    let pid = mock.0.id().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--url",
            &url,
            "--pid",
            &pid,
            "--worker-pid",
            &pid,
            "--concurrency",
            "1,4",
        ])
        .args([
            "--requests",
            "6,12",
            "--warmup",
            "2",
            "--max-tokens",
            "5",
            "--label",
            "cli",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run loadgen");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "header, separator and two rows: {stdout}");
    assert!(lines[0].ends_with("| worker CPU % |"));
    assert!(lines[2].starts_with("| cli | 1 | 6 | 0 |"));
    assert!(lines[3].starts_with("| cli | 4 | 12 | 0 |"));
    let rows = json_rows(&json);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["ok"], 12);
    assert_eq!(rows[1]["model"], "mock");
    assert_eq!(rows[1]["completion_tokens_per_req"], 5.0);
    assert_eq!(rows[1]["target_pid"], mock.0.id());
    assert!(
        rows[1]["target_rss_max_mb"]
            .as_f64()
            .is_some_and(|mb| mb > 0.0)
    );
}

#[test]
fn spawned_server_is_measured_and_stopped() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("pick a free port")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("rows.jsonl");
    let spawn = format!(
        "{} --addr 127.0.0.1:{port}",
        env!("CARGO_BIN_EXE_loadgen-mock")
    );
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--url",
            &format!("http://127.0.0.1:{port}"),
            "--spawn",
            &spawn,
        ])
        .args([
            "--concurrency",
            "2",
            "--requests",
            "4",
            "--warmup",
            "1",
            "--ready-timeout-s",
            "30",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run loadgen");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows = json_rows(&json);
    assert_eq!(rows[0]["ok"], 4);
    let pid = rows[0]["target_pid"]
        .as_u64()
        .expect("the spawned pid is measured");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the spawned server was stopped"
    );
}

#[test]
fn mismatched_lists_are_rejected() {
    let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--url",
            "http://127.0.0.1:9",
            "--concurrency",
            "1,2",
            "--requests",
            "1,2,3",
        ])
        .output()
        .expect("run loadgen");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--requests has 3 values"));
}
