//! `loadgen`: drives an OpenAI-compatible frontend with the shared-prefix streaming chat
//! workload and prints one markdown row per concurrency level (see the crate README).

mod cli;
mod spawn;

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::Parser;
use serde::Serialize;
use stator_loadgen::{
    RowPlan, RowReport, Workload, WorkloadSpec, clock_ticks_per_second, http_client, model_ids,
    run_row, wait_for_model,
};

use crate::cli::Args;
use crate::spawn::Spawned;

/// One `--json` line: the row plus what produced it.
#[derive(Serialize)]
struct JsonRow<'a> {
    #[serde(flatten)]
    report: &'a RowReport,
    unix_time_s: u64,
    url: &'a str,
    model: &'a str,
    max_tokens: u32,
    prefix_groups: usize,
    prefix_words: usize,
    unique_words: usize,
    seed: u64,
    stream: bool,
    warmup: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    runtime.block_on(async {
        tokio::select! {
            result = run(&args) => result,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        }
    })
}

async fn run(args: &Args) -> anyhow::Result<()> {
    let rows = args.rows().map_err(anyhow::Error::msg)?;
    let max_concurrency = rows.iter().map(|(c, _)| *c).max().unwrap_or(1);
    let client = http_client(max_concurrency);
    let base = args.url.trim_end_matches('/');
    let uri: hyper::Uri = format!("{base}{}", args.path)
        .parse()
        .with_context(|| format!("bad URL {base}{}", args.path))?;

    let mut spawned = match &args.spawn {
        Some(command) => {
            Some(Spawned::start(command).with_context(|| format!("spawning {command}"))?)
        }
        None => None,
    };
    let ready_timeout = Duration::from_secs_f64(args.ready_timeout_s);
    let model = if spawned.is_some() {
        wait_for_model(&client, base, args.model.as_deref(), ready_timeout).await?
    } else if let Some(model) = &args.model {
        model.clone()
    } else {
        model_ids(&client, base)
            .await?
            .into_iter()
            .next()
            .context("the server lists no model")?
    };
    let target_pid = args.pid.or(spawned.as_ref().map(Spawned::pid));
    eprintln!(
        "loadgen: {uri} model={model} target_pid={} clock_ticks={}/s stream={}",
        target_pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
        clock_ticks_per_second(),
        args.stream
    );

    let workload = Workload::new(WorkloadSpec {
        model: model.clone(),
        prefix_groups: args.prefix_groups,
        prefix_words: args.prefix_words,
        unique_words: args.unique_words,
        max_tokens: args.max_tokens,
        stream: args.stream,
        seed: args.seed,
    });
    let mut json = match &args.json {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?,
        ),
        None => None,
    };

    println!(
        "{}",
        RowReport::markdown_header(!args.worker_pid.is_empty())
    );
    let mut first_index = 0u64;
    for (concurrency, requests) in rows {
        if let Some(status) = spawned.as_mut().and_then(Spawned::exited) {
            bail!("the spawned frontend exited ({status})");
        }
        let plan = RowPlan {
            uri: uri.clone(),
            concurrency,
            requests,
            warmup: args.warmup,
            timeout: Duration::from_secs_f64(args.timeout_s),
            first_index,
            target_pid,
            worker_pids: args.worker_pid.clone(),
        };
        first_index += (args.warmup + requests) as u64;
        let measurement = run_row(&client, &workload, &plan).await;
        let report = RowReport::new(&args.label, &plan, &measurement);
        println!("{}", report.markdown_row());
        std::io::stdout().flush().context("writing the table")?;
        if report.errors > 0 {
            eprintln!(
                "loadgen: c={concurrency}: {} errors {:?}, e.g. {:?}",
                report.errors, report.error_kinds, report.error_samples
            );
        }
        if let Some(file) = json.as_mut() {
            let line = JsonRow {
                report: &report,
                unix_time_s: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
                url: base,
                model: &model,
                max_tokens: args.max_tokens,
                prefix_groups: args.prefix_groups,
                prefix_words: args.prefix_words,
                unique_words: args.unique_words,
                seed: args.seed,
                stream: args.stream,
                warmup: args.warmup,
            };
            writeln!(file, "{}", serde_json::to_string(&line)?)
                .context("appending to the JSON file")?;
        }
    }
    Ok(())
}
