//! Command-line flags of `loadgen` (each with a `LOADGEN_*` environment twin).

use std::path::PathBuf;

use clap::{ArgAction, Parser};

/// Closed-loop streaming chat load against an OpenAI-compatible frontend; prints one markdown
/// table row per concurrency.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadgen", version)]
pub struct Args {
    /// Base URL of the frontend.
    #[arg(long, env = "LOADGEN_URL", default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Request path appended to the URL.
    #[arg(long, env = "LOADGEN_PATH", default_value = "/v1/chat/completions")]
    pub path: String,
    /// Model name; default: the first model listed by `/v1/models`.
    #[arg(long, env = "LOADGEN_MODEL")]
    pub model: Option<String>,
    /// Concurrency levels, one table row each.
    #[arg(
        long,
        env = "LOADGEN_CONCURRENCY",
        value_delimiter = ',',
        default_value = "1,16,64"
    )]
    pub concurrency: Vec<usize>,
    /// Measured requests per concurrency level (one value for all, or one per level).
    #[arg(
        long,
        env = "LOADGEN_REQUESTS",
        value_delimiter = ',',
        default_value = "200,800,2000"
    )]
    pub requests: Vec<usize>,
    /// Unmeasured warm-up requests before each row.
    #[arg(long, env = "LOADGEN_WARMUP", default_value_t = 8)]
    pub warmup: usize,
    /// `max_tokens` of every request.
    #[arg(long, env = "LOADGEN_MAX_TOKENS", default_value_t = 64)]
    pub max_tokens: u32,
    /// Number of shared system prompts.
    #[arg(long, env = "LOADGEN_PREFIX_GROUPS", default_value_t = 4)]
    pub prefix_groups: usize,
    /// Words per shared system prompt.
    #[arg(long, env = "LOADGEN_PREFIX_WORDS", default_value_t = 400)]
    pub prefix_words: usize,
    /// Words unique to each request.
    #[arg(long, env = "LOADGEN_UNIQUE_WORDS", default_value_t = 100)]
    pub unique_words: usize,
    /// Seed of all prompt text.
    #[arg(long, env = "LOADGEN_SEED", default_value_t = 0)]
    pub seed: u64,
    /// Stream answers (`stream_options.include_usage` on); `--stream false` for unary requests.
    #[arg(long, env = "LOADGEN_STREAM", default_value_t = true, action = ArgAction::Set)]
    pub stream: bool,
    /// PID of the frontend process whose CPU and RSS are measured.
    #[arg(long, env = "LOADGEN_PID")]
    pub pid: Option<u32>,
    /// Worker PIDs (comma-separated) whose summed CPU is reported too (e.g. mocker processes).
    #[arg(long, env = "LOADGEN_WORKER_PID", value_delimiter = ',')]
    pub worker_pid: Vec<u32>,
    /// Shell command starting the frontend; it is measured (unless `--pid`) and stopped at the end.
    #[arg(long, env = "LOADGEN_SPAWN")]
    pub spawn: Option<String>,
    /// Seconds to wait for a spawned frontend to list the model.
    #[arg(long, env = "LOADGEN_READY_TIMEOUT_S", default_value_t = 120.0)]
    pub ready_timeout_s: f64,
    /// Label of the table rows.
    #[arg(long, env = "LOADGEN_LABEL", default_value = "stator")]
    pub label: String,
    /// Append one JSON object per row to this file.
    #[arg(long, env = "LOADGEN_JSON")]
    pub json: Option<PathBuf>,
    /// Per-request timeout in seconds.
    #[arg(long, env = "LOADGEN_TIMEOUT_S", default_value_t = 60.0)]
    pub timeout_s: f64,
    /// Tokio worker threads (default: one per core).
    #[arg(long, env = "LOADGEN_THREADS")]
    pub threads: Option<usize>,
}

impl Args {
    /// `(concurrency, requests)` per row, or an error when the lists do not pair up.
    pub fn rows(&self) -> Result<Vec<(usize, usize)>, String> {
        if self.concurrency.contains(&0) {
            return Err("--concurrency values must be at least 1".into());
        }
        match self.requests.as_slice() {
            [n] => Ok(self.concurrency.iter().map(|&c| (c, *n)).collect()),
            list if list.len() == self.concurrency.len() => Ok(self
                .concurrency
                .iter()
                .copied()
                .zip(list.iter().copied())
                .collect()),
            list => Err(format!(
                "--requests has {} values but --concurrency has {}; give one value or one per level",
                list.len(),
                self.concurrency.len()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Args;
    use clap::Parser;

    fn parse(extra: &[&str]) -> Args {
        let mut argv = vec!["loadgen"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).expect("valid test arguments")
    }

    #[test]
    fn defaults_follow_the_peer_workload() {
        let args = parse(&[]);
        assert_eq!(args.rows(), Ok(vec![(1, 200), (16, 800), (64, 2000)]));
        assert_eq!(
            (
                args.warmup,
                args.max_tokens,
                args.prefix_groups,
                args.prefix_words,
                args.unique_words
            ),
            (8, 64, 4, 400, 100)
        );
        assert!(args.stream);
    }

    #[test]
    fn requests_pair_with_concurrency() {
        assert_eq!(
            parse(&["--concurrency", "2,4", "--requests", "10"]).rows(),
            Ok(vec![(2, 10), (4, 10)])
        );
        assert!(
            parse(&["--concurrency", "2,4", "--requests", "1,2,3"])
                .rows()
                .is_err()
        );
        assert!(parse(&["--concurrency", "0"]).rows().is_err());
        assert!(!parse(&["--stream", "false"]).stream);
    }
}
