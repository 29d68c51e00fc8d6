//! Mooncake-trace replay through every indexer; prints a markdown table.
//!
//! `cargo bench -p stator-kv-router --bench kv_indexer_replay [-- --indexers flash,pool-1] [--trace T.jsonl] [--deep-only] [--depths 1024,2048]`
//!
//! Phases per indexer (see `docs/benchmarks/kv-indexer.md`):
//! * events: every KV event, as fast as possible; the clock stops after `flush`.
//! * mixed: events and queries in trace order, queries inline on the issuing thread, no
//!   barriers (writer lanes may lag); the clock stops after `flush`.
//! * consistent: as mixed, with a `flush` before each query that follows new events, so the
//!   answers are deterministic; their checksum must agree across indexers.
//! * deep: `find_matches` latency on a static index whose queries match 1K and 2K blocks
//!   (`--deep-only` skips the other phases, e.g. to profile one deep query).

mod corpus;
mod phases;

use std::path::PathBuf;
use std::time::Instant;

use corpus::{Spec, build, load_trace};
use phases::{Subject, run_all};
use stator_kv_router::indexer::{ConcurrentRadixTree, FlashIndexer, RadixTree, ThreadPoolIndexer};

const ALL: &[&str] = &["flash", "pool-1", "pool-2", "radix", "concurrent-radix"];

fn make(name: &str) -> Option<Box<dyn Subject>> {
    Some(match name {
        "flash" => Box::new(std::cell::RefCell::new(FlashIndexer::new())),
        "pool-1" => Box::new(ThreadPoolIndexer::new(1)),
        "pool-2" => Box::new(ThreadPoolIndexer::new(2)),
        "radix" => Box::new(std::cell::RefCell::new(RadixTree::new())),
        "concurrent-radix" => Box::new(ConcurrentRadixTree::new()),
        _ => return None,
    })
}

fn main() {
    let mut names: Vec<String> = ALL.iter().map(|s| (*s).to_string()).collect();
    let mut path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("benches/data/mooncake_fast25_conversation_trace.jsonl");
    let mut deep_only = false;
    let mut depths = vec![1024, 2048];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--deep-only" {
            deep_only = true;
            continue;
        }
        match (a.as_str(), args.next()) {
            ("--indexers", Some(list)) => names = list.split(',').map(str::to_string).collect(),
            ("--trace", Some(p)) => path = PathBuf::from(p),
            ("--depths", Some(list)) => {
                depths = list.split(',').filter_map(|d| d.parse().ok()).collect();
            }
            _ => {}
        }
    }
    let spec = Spec {
        workers: 32,
        blocks_per_worker: 16384,
        block_size: 16,
        trace_block_tokens: 512,
    };
    let t = Instant::now();
    let trace = match load_trace(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot load the trace: {e}");
            std::process::exit(1);
        }
    };
    let corpus = build(&trace, &spec);
    println!(
        "corpus: {} requests → {} queries ({} blocks), {} stored events ({} blocks), {} removed events ({} blocks); {} workers × {} blocks, block size {}; built in {:.1}s\n",
        trace.len(),
        corpus.queries,
        corpus.query_blocks,
        corpus.stored_events,
        corpus.stored_blocks,
        corpus.removed_events,
        corpus.removed_blocks,
        spec.workers,
        spec.blocks_per_worker,
        spec.block_size,
        t.elapsed().as_secs_f64()
    );
    let mut rows = Vec::new();
    for name in &names {
        let Some(_) = make(name) else {
            eprintln!("unknown indexer {name:?}; known: {ALL:?}");
            continue;
        };
        rows.push(run_all(
            name,
            &|| make(name).expect("known name"),
            &corpus,
            &depths,
            deep_only,
        ));
    }
    phases::print_table(&rows);
}
