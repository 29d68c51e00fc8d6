//! Turns a row's raw measurements into the summary row: JSON for `--json`, markdown for people.
//!
//! Metric definitions follow `peer-results.md` so the numbers compare with the Dynamo peer:
//! latencies are over successful requests; CPU % is the process's `utime + stime` delta over the
//! measured window (100 % = one core); CPU ms/request = CPU seconds × 1000 / successful requests
//! (= CPU % × 10 / req/s); RSS is the largest sampled `VmRSS`, in MiB.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::engine::{RowMeasurement, RowPlan};
use crate::stats::Quantiles;

/// Distinct error messages kept per row.
const ERROR_SAMPLES: usize = 3;

/// The summary of one row.
#[derive(Debug, Clone, Serialize)]
pub struct RowReport {
    /// Free-form label (`--label`).
    pub label: String,
    /// Concurrency.
    pub concurrency: usize,
    /// Measured requests sent.
    pub requests: usize,
    /// Successful requests.
    pub ok: usize,
    /// Failed requests.
    pub errors: usize,
    /// Failed requests per error class.
    pub error_kinds: BTreeMap<&'static str, usize>,
    /// A few distinct error messages.
    pub error_samples: Vec<String>,
    /// Measured window, seconds.
    pub window_s: f64,
    /// Successful requests per second.
    pub req_per_s: f64,
    /// Output tokens per second (successful requests).
    pub out_tok_per_s: f64,
    /// Time to first token, ms.
    pub ttft_ms: Option<Quantiles>,
    /// Inter-token latency per request, ms.
    pub itl_ms: Option<Quantiles>,
    /// End-to-end latency, ms.
    pub e2e_ms: Option<Quantiles>,
    /// Mean `usage.prompt_tokens` per successful request.
    pub prompt_tokens_per_req: f64,
    /// Mean `usage.prompt_tokens_details.cached_tokens` per successful request.
    pub cached_tokens_per_req: f64,
    /// Sum of cached over sum of prompt tokens.
    pub cache_hit_rate: Option<f64>,
    /// Mean output tokens per successful request.
    pub completion_tokens_per_req: f64,
    /// Successful requests that reported usage.
    pub with_usage: usize,
    /// Sampled process id.
    pub target_pid: Option<u32>,
    /// CPU of the sampled process over the window, % of one core.
    pub target_cpu_pct: Option<f64>,
    /// CPU milliseconds of the sampled process per successful request.
    pub target_cpu_ms_per_req: Option<f64>,
    /// Largest sampled RSS of the process, MiB.
    pub target_rss_max_mb: Option<f64>,
    /// RSS of the process when the measured window started, MiB.
    pub target_rss_start_mb: Option<f64>,
    /// Worker process ids (`--worker-pid`).
    pub worker_pids: Vec<u32>,
    /// Summed CPU of the worker processes over the window, % of one core.
    pub worker_cpu_pct: Option<f64>,
    /// CPU of the load generator itself over the window, % of one core.
    pub loadgen_cpu_pct: Option<f64>,
    /// Whole-machine busy CPU over the window, % of all cores.
    pub machine_busy_pct: Option<f64>,
}

fn ms(samples: impl Iterator<Item = std::time::Duration>) -> Option<Quantiles> {
    let values: Vec<f64> = samples.map(|d| d.as_secs_f64() * 1000.0).collect();
    Quantiles::of(&values)
}

fn per(total: u64, count: usize) -> f64 {
    if count == 0 {
        0.0
    } else {
        total as f64 / count as f64
    }
}

impl RowReport {
    /// Summarizes `m`, measured under `plan`.
    pub fn new(label: &str, plan: &RowPlan, m: &RowMeasurement) -> Self {
        let ok: Vec<_> = m.outcomes.iter().filter(|o| o.error.is_none()).collect();
        let mut error_kinds = BTreeMap::new();
        let mut error_samples: Vec<String> = Vec::new();
        for error in m.outcomes.iter().filter_map(|o| o.error.as_ref()) {
            *error_kinds.entry(error.kind()).or_insert(0) += 1;
            let text = error.to_string();
            if error_samples.len() < ERROR_SAMPLES && !error_samples.contains(&text) {
                error_samples.push(text);
            }
        }
        let window_s = m.window.as_secs_f64();
        let tokens: u64 = ok.iter().map(|o| o.tokens()).sum();
        let usages: Vec<_> = ok.iter().filter_map(|o| o.usage).collect();
        let prompt: u64 = usages.iter().map(|u| u.prompt_tokens).sum();
        let cached: u64 = usages.iter().map(|u| u.cached_tokens).sum();
        let rate = |seconds: f64| {
            if window_s > 0.0 {
                seconds / window_s * 100.0
            } else {
                0.0
            }
        };
        let target_cpu_s = m.cpu_start.target.zip(m.cpu_end.target).map(|(a, b)| b - a);
        let machine_busy_pct = m
            .cpu_start
            .machine
            .zip(m.cpu_end.machine)
            .and_then(|(a, b)| {
                let total = b.1.saturating_sub(a.1);
                (total > 0).then(|| b.0.saturating_sub(a.0) as f64 / total as f64 * 100.0)
            });
        Self {
            label: label.to_owned(),
            concurrency: plan.concurrency,
            requests: m.outcomes.len(),
            ok: ok.len(),
            errors: m.outcomes.len() - ok.len(),
            error_kinds,
            error_samples,
            window_s,
            req_per_s: if window_s > 0.0 {
                ok.len() as f64 / window_s
            } else {
                0.0
            },
            out_tok_per_s: if window_s > 0.0 {
                tokens as f64 / window_s
            } else {
                0.0
            },
            ttft_ms: ms(ok.iter().filter_map(|o| o.ttft)),
            itl_ms: ms(ok.iter().filter_map(|o| o.itl())),
            e2e_ms: ms(ok.iter().map(|o| o.e2e)),
            prompt_tokens_per_req: per(prompt, usages.len()),
            cached_tokens_per_req: per(cached, usages.len()),
            cache_hit_rate: (prompt > 0).then(|| cached as f64 / prompt as f64),
            completion_tokens_per_req: per(tokens, ok.len()),
            with_usage: usages.len(),
            target_pid: plan.target_pid,
            target_cpu_pct: target_cpu_s.map(rate),
            target_cpu_ms_per_req: target_cpu_s
                .filter(|_| !ok.is_empty())
                .map(|s| s * 1000.0 / ok.len() as f64),
            target_rss_max_mb: m.target_rss_max_kib.map(|kib| kib as f64 / 1024.0),
            target_rss_start_mb: m.target_rss_start_kib.map(|kib| kib as f64 / 1024.0),
            worker_pids: plan.worker_pids.clone(),
            worker_cpu_pct: m
                .cpu_start
                .workers
                .zip(m.cpu_end.workers)
                .map(|(a, b)| rate(b - a)),
            loadgen_cpu_pct: m.cpu_start.own.zip(m.cpu_end.own).map(|(a, b)| rate(b - a)),
            machine_busy_pct,
        }
    }

    /// The markdown table header matching [`RowReport::markdown_row`]; `with_workers` adds the
    /// worker CPU column that rows with `--worker-pid` carry.
    pub fn markdown_header(with_workers: bool) -> String {
        let mut columns = vec![
            "label",
            "c",
            "requests",
            "errors",
            "req/s",
            "out tok/s",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "ITL p50 ms",
            "ITL p99 ms",
            "e2e p50 ms",
            "cached tok/req",
            "cache hit",
            "frontend CPU %",
            "CPU ms/req",
            "frontend RSS max MB",
            "loadgen CPU %",
        ];
        if with_workers {
            columns.push("worker CPU %");
        }
        let sep = vec!["---"; columns.len()];
        format!("| {} |\n|{}|", columns.join(" | "), sep.join("|"))
    }

    /// This row as a markdown table row (`-` where a value is unavailable).
    pub fn markdown_row(&self) -> String {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), sig);
        let whole = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        let mut cells = vec![
            self.label.clone(),
            self.concurrency.to_string(),
            self.requests.to_string(),
            self.errors.to_string(),
            sig(self.req_per_s),
            format!("{:.0}", self.out_tok_per_s),
            opt(self.ttft_ms.map(|q| q.p50)),
            opt(self.ttft_ms.map(|q| q.p99)),
            opt(self.itl_ms.map(|q| q.p50)),
            opt(self.itl_ms.map(|q| q.p99)),
            opt(self.e2e_ms.map(|q| q.p50)),
            format!("{:.0}", self.cached_tokens_per_req),
            self.cache_hit_rate
                .map_or_else(|| "-".to_owned(), |r| format!("{:.0} %", r * 100.0)),
            whole(self.target_cpu_pct),
            opt(self.target_cpu_ms_per_req),
            self.target_rss_max_mb
                .map_or_else(|| "-".to_owned(), |v| format!("{v:.1}")),
            whole(self.loadgen_cpu_pct),
        ];
        if !self.worker_pids.is_empty() {
            cells.push(whole(self.worker_cpu_pct));
        }
        format!("| {} |", cells.join(" | "))
    }
}

/// Three significant digits, without exponent, for table cells.
fn sig(value: f64) -> String {
    let magnitude = if value == 0.0 {
        0
    } else {
        value.abs().log10().floor() as i32
    };
    let decimals = (2 - magnitude).clamp(0, 4) as usize;
    format!("{value:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::{RowReport, sig};
    use crate::chunk::Usage;
    use crate::engine::{RowMeasurement, RowPlan};
    use crate::procstat::CpuSnapshot;
    use crate::request::{RequestError, RequestOutcome};
    use std::time::Duration;

    #[test]
    fn significant_digits() {
        assert_eq!(sig(0.0), "0.00");
        assert_eq!(sig(0.05712), "0.0571");
        assert_eq!(sig(4.123), "4.12");
        assert_eq!(sig(95.44), "95.4");
        assert_eq!(sig(23922.4), "23922");
    }

    fn report(worker_pids: Vec<u32>) -> RowReport {
        let plan = RowPlan {
            uri: "http://127.0.0.1:1/v1/chat/completions"
                .parse()
                .expect("static uri"),
            concurrency: 2,
            requests: 2,
            warmup: 0,
            timeout: Duration::from_secs(1),
            first_index: 0,
            target_pid: Some(1),
            worker_pids,
        };
        let ok = RequestOutcome {
            ttft: Some(Duration::from_millis(2)),
            e2e: Duration::from_millis(65),
            content_chunks: 64,
            usage: Some(Usage {
                prompt_tokens: 500,
                completion_tokens: 64,
                cached_tokens: 384,
            }),
            error: None,
        };
        let failed = RequestOutcome {
            error: Some(RequestError::Timeout),
            ..ok.clone()
        };
        let snapshot = |cpu: f64| CpuSnapshot {
            target: Some(cpu),
            workers: Some(cpu),
            own: Some(cpu),
            machine: None,
        };
        let measurement = RowMeasurement {
            outcomes: vec![ok, failed],
            window: Duration::from_secs(2),
            cpu_start: snapshot(1.0),
            cpu_end: snapshot(1.5),
            target_rss_max_kib: Some(2048),
            target_rss_start_kib: Some(1024),
        };
        RowReport::new("x", &plan, &measurement)
    }

    #[test]
    fn summary_follows_the_peer_definitions() {
        let r = report(Vec::new());
        assert_eq!((r.requests, r.ok, r.errors), (2, 1, 1));
        assert_eq!(r.error_kinds.get("timeout"), Some(&1));
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        assert!(close(Some(r.req_per_s), 0.5));
        assert!(close(Some(r.out_tok_per_s), 32.0));
        assert!(close(r.target_cpu_pct, 25.0));
        // CPU ms/request = CPU % x 10 / req/s.
        assert!(close(r.target_cpu_ms_per_req, 25.0 * 10.0 / 0.5));
        assert!(close(r.itl_ms.map(|q| q.p50), 1.0));
        assert!(close(r.cache_hit_rate, 384.0 / 500.0));
        assert!(close(r.target_rss_max_mb, 2.0));
        assert_eq!(r.worker_cpu_pct, Some(25.0));
    }

    #[test]
    fn header_and_row_have_the_same_width() {
        let width = |line: &str| line.matches('|').count();
        for (workers, columns) in [(Vec::new(), 17), (vec![1], 18)] {
            let header = RowReport::markdown_header(!workers.is_empty());
            let lines: Vec<&str> = header.lines().collect();
            let row = report(workers).markdown_row();
            assert_eq!(width(lines[0]), columns + 1);
            assert_eq!(width(lines[1]), columns + 1);
            assert_eq!(width(&row), columns + 1);
        }
        assert!(
            report(Vec::new())
                .markdown_row()
                .starts_with("| x | 2 | 2 | 1 | 0.500 | 32 | 2.00 |")
        );
    }
}
