//! CPU time and resident memory of a process, read from Linux `/proc`.
//!
//! CPU is `utime + stime` of `/proc/PID/stat` (all threads, excluding reaped children) in clock
//! ticks, converted with `sysconf(_SC_CLK_TCK)`. RSS is `VmRSS` of `/proc/PID/status`, sampled
//! on a dedicated thread (file reads are blocking, so they stay off the tokio workers).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Errors reading `/proc`.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// The file could not be read (process gone, not Linux, no permission).
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file did not have the expected shape.
    #[error("unexpected format of {0}")]
    Format(PathBuf),
}

/// Which process to read: a PID or the load generator itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcTarget {
    /// `/proc/self`.
    SelfProcess,
    /// `/proc/<pid>`.
    Pid(u32),
}

impl ProcTarget {
    fn file(self, name: &str) -> PathBuf {
        match self {
            Self::SelfProcess => PathBuf::from(format!("/proc/self/{name}")),
            Self::Pid(pid) => PathBuf::from(format!("/proc/{pid}/{name}")),
        }
    }
}

fn read(path: PathBuf) -> Result<(String, PathBuf), ProcError> {
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((text, path)),
        Err(source) => Err(ProcError::Read { path, source }),
    }
}

/// Clock ticks per second for `/proc` CPU times (falls back to 100 if sysconf fails).
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// CPU seconds (user + system) consumed so far by `target`.
pub fn cpu_seconds(target: ProcTarget) -> Result<f64, ProcError> {
    let (text, path) = read(target.file("stat"))?;
    // The command name (field 2) may contain spaces and parentheses; fields resume after the
    // last ')'. utime and stime are fields 14 and 15, i.e. 12th and 13th after the name.
    let after_name = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| ProcError::Format(path.clone()))?;
    let mut fields = after_name.split_ascii_whitespace().skip(11);
    let mut tick_field = || {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| ProcError::Format(path.clone()))
    };
    let ticks = tick_field()? + tick_field()?;
    Ok(ticks as f64 / clock_ticks_per_second() as f64)
}

/// Current resident set size of `target` in KiB (`VmRSS`).
pub fn rss_kib(target: ProcTarget) -> Result<u64, ProcError> {
    let (text, path) = read(target.file("status"))?;
    text.lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_ascii_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or(ProcError::Format(path))
}

/// Busy and total jiffies of the whole machine (`/proc/stat`, first line).
pub fn machine_jiffies() -> Result<(u64, u64), ProcError> {
    let (text, path) = read(PathBuf::from("/proc/stat"))?;
    let values: Vec<u64> = text
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("cpu "))
        .map(|rest| {
            rest.split_ascii_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect()
        })
        .ok_or_else(|| ProcError::Format(path.clone()))?;
    if values.len() < 5 {
        return Err(ProcError::Format(path));
    }
    let total: u64 = values.iter().take(8).sum();
    // idle + iowait are not busy.
    let idle = values[3] + values[4];
    Ok((total - idle, total))
}

/// Samples `VmRSS` of a process on a background thread and keeps the maximum.
#[derive(Debug)]
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Option<u64>>,
}

impl RssSampler {
    /// Starts sampling `target` every `interval`.
    pub fn start(target: ProcTarget, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut max: Option<u64> = None;
            loop {
                if let Ok(kib) = rss_kib(target) {
                    max = Some(max.map_or(kib, |m| m.max(kib)));
                }
                if flag.load(Ordering::Relaxed) {
                    return max;
                }
                std::thread::park_timeout(interval);
            }
        });
        Self { stop, handle }
    }

    /// Stops sampling (after one last sample) and returns the maximum RSS seen, in KiB.
    pub fn finish(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.thread().unpark();
        self.handle.join().ok().flatten()
    }
}

/// CPU and machine counters at one instant, to difference over a measured window.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    /// CPU seconds of the sampled process, if any and readable.
    pub target: Option<f64>,
    /// Summed CPU seconds of the worker processes, if any were given and all are readable.
    pub workers: Option<f64>,
    /// CPU seconds of the load generator.
    pub own: Option<f64>,
    /// Machine busy/total jiffies.
    pub machine: Option<(u64, u64)>,
}

impl CpuSnapshot {
    /// Reads all counters now.
    pub fn take(target: Option<u32>, workers: &[u32]) -> Self {
        let workers = (!workers.is_empty())
            .then(|| {
                workers
                    .iter()
                    .map(|&pid| cpu_seconds(ProcTarget::Pid(pid)).ok())
                    .sum::<Option<f64>>()
            })
            .flatten();
        Self {
            target: target.and_then(|pid| cpu_seconds(ProcTarget::Pid(pid)).ok()),
            workers,
            own: cpu_seconds(ProcTarget::SelfProcess).ok(),
            machine: machine_jiffies().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CpuSnapshot, ProcTarget, RssSampler, cpu_seconds, machine_jiffies, rss_kib};
    use std::time::Duration;

    #[test]
    fn reads_own_process() {
        let before = cpu_seconds(ProcTarget::SelfProcess).unwrap_or(-1.0);
        assert!(before >= 0.0);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let after = cpu_seconds(ProcTarget::SelfProcess).unwrap_or(-1.0);
        assert!(after >= before);
        assert!(rss_kib(ProcTarget::SelfProcess).unwrap_or(0) > 0);
        let (busy, total) = machine_jiffies().unwrap_or((1, 0));
        assert!(busy <= total);
        let pid = std::process::id();
        let snapshot = CpuSnapshot::take(Some(pid), &[pid, pid]);
        assert!(snapshot.target.is_some() && snapshot.workers.is_some());
        assert!(CpuSnapshot::take(None, &[pid, u32::MAX]).workers.is_none());
    }

    #[test]
    fn missing_process_is_an_error_and_sampler_reports_max() {
        assert!(cpu_seconds(ProcTarget::Pid(u32::MAX)).is_err());
        let sampler = RssSampler::start(
            ProcTarget::Pid(std::process::id()),
            Duration::from_millis(10),
        );
        assert!(sampler.finish().unwrap_or(0) > 0);
        let gone = RssSampler::start(ProcTarget::Pid(u32::MAX), Duration::from_millis(10));
        assert_eq!(gone.finish(), None);
    }
}
