//! The timed phases and the report table.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use stator_kv_router::indexer::{ConcurrentRadixTree, Indexer, ThreadPoolIndexer};
use stator_kv_router::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheStoreData, KvCacheStoredBlockData, OverlapScores,
    RouterEvent,
};
use stator_tokens::{LocalBlockHash, sequence_hashes};

use crate::corpus::{Corpus, Item, splitmix};

/// What the phases need from an indexer, whatever its threading.
pub trait Subject {
    fn apply(&self, ev: RouterEvent);
    fn find(&self, q: &[LocalBlockHash]) -> OverlapScores;
    fn flush(&self);
    fn remove_worker(&self, worker: u64);
    fn is_async(&self) -> bool;
}

impl<I: Indexer> Subject for RefCell<I> {
    fn apply(&self, ev: RouterEvent) {
        // Rejected events (none in this corpus) are part of the workload, as upstream counts.
        let _ = self.borrow_mut().apply_event(ev);
    }
    fn find(&self, q: &[LocalBlockHash]) -> OverlapScores {
        self.borrow().find_matches(q)
    }
    fn flush(&self) {}
    fn remove_worker(&self, worker: u64) {
        self.borrow_mut().remove_worker(worker);
    }
    fn is_async(&self) -> bool {
        false
    }
}

impl Subject for ThreadPoolIndexer {
    fn apply(&self, ev: RouterEvent) {
        self.apply_event(ev).expect("indexer lanes running");
    }
    fn find(&self, q: &[LocalBlockHash]) -> OverlapScores {
        self.find_matches(q)
    }
    fn flush(&self) {
        ThreadPoolIndexer::flush(self);
    }
    fn remove_worker(&self, worker: u64) {
        ThreadPoolIndexer::remove_worker(self, worker);
    }
    fn is_async(&self) -> bool {
        true
    }
}

impl Subject for ConcurrentRadixTree {
    fn apply(&self, ev: RouterEvent) {
        let _ = self.apply_event(ev);
    }
    fn find(&self, q: &[LocalBlockHash]) -> OverlapScores {
        self.find_matches(q)
    }
    fn flush(&self) {}
    fn remove_worker(&self, worker: u64) {
        ConcurrentRadixTree::remove_worker(self, worker);
    }
    fn is_async(&self) -> bool {
        false
    }
}

/// One indexer's results.
pub struct Row {
    name: String,
    events_mops: f64,
    mixed_mops: f64,
    consistent_mops: f64,
    checksum: u64,
    query_p50_p99: (f64, f64),
    deep: Vec<Deep>,
    remove_ms: f64,
}

struct Deep {
    depth: usize,
    p50_p99: (f64, f64),
    checksum: u64,
}

fn fold(x: u64, s: &OverlapScores) -> u64 {
    let workers = s.scores.len() as u64;
    let max = u64::from(s.scores.values().copied().max().unwrap_or(0));
    let sum: u64 = s.scores.values().map(|&d| u64::from(d)).sum();
    (x.rotate_left(9) ^ workers ^ (max << 20) ^ sum.wrapping_mul(0xA24B_AED4_963E_E407))
        .wrapping_mul(0x9FB2_1C65_1E98_DF25)
}

fn percentiles(mut ns: Vec<u64>) -> (f64, f64) {
    if ns.is_empty() {
        return (0.0, 0.0);
    }
    ns.sort_unstable();
    let at = |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize] as f64 / 1e3;
    (at(0.50), at(0.99))
}

fn events_of(corpus: &Corpus) -> Vec<RouterEvent> {
    corpus
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Event(e) => Some(e.clone()),
            Item::Query(_) => None,
        })
        .collect()
}

enum Op<'a> {
    Event(RouterEvent),
    Query(&'a [LocalBlockHash]),
}

fn ops_of(corpus: &Corpus) -> Vec<Op<'_>> {
    corpus
        .items
        .iter()
        .map(|i| match i {
            Item::Event(e) => Op::Event(e.clone()),
            Item::Query(q) => Op::Query(q),
        })
        .collect()
}

/// Run every phase (only the deep ones, at `depths`, with `deep_only`) on fresh instances
/// from `make`.
pub fn run_all(
    name: &str,
    make: &dyn Fn() -> Box<dyn Subject>,
    corpus: &Corpus,
    depths: &[usize],
    deep_only: bool,
) -> Row {
    let deep_phases = || depths.iter().map(|&d| run_deep(make, corpus, d)).collect();
    if deep_only {
        return Row {
            name: name.to_string(),
            events_mops: 0.0,
            mixed_mops: 0.0,
            consistent_mops: 0.0,
            checksum: 0,
            query_p50_p99: (0.0, 0.0),
            deep: deep_phases(),
            remove_ms: 0.0,
        };
    }
    // events only
    let s = make();
    let events = events_of(corpus);
    let t = Instant::now();
    for ev in events {
        s.apply(ev);
    }
    s.flush();
    let events_mops = corpus.event_blocks() as f64 / t.elapsed().as_secs_f64() / 1e6;
    drop(s);

    // mixed, no barriers
    let s = make();
    let ops = ops_of(corpus);
    let t = Instant::now();
    for op in ops {
        match op {
            Op::Event(ev) => s.apply(ev),
            Op::Query(q) => {
                black_box(s.find(q));
            }
        }
    }
    s.flush();
    let mixed_mops = corpus.block_ops() as f64 / t.elapsed().as_secs_f64() / 1e6;
    drop(s);

    // consistent
    let s = make();
    let ops = ops_of(corpus);
    let mut lat = Vec::with_capacity(corpus.queries);
    let mut checksum = 0u64;
    let mut dirty = false;
    let t = Instant::now();
    for op in ops {
        match op {
            Op::Event(ev) => {
                s.apply(ev);
                dirty = true;
            }
            Op::Query(q) => {
                if dirty && s.is_async() {
                    s.flush();
                }
                dirty = false;
                let qt = Instant::now();
                let out = s.find(q);
                lat.push(qt.elapsed().as_nanos() as u64);
                checksum = fold(checksum, &out);
            }
        }
    }
    s.flush();
    let consistent_mops = corpus.block_ops() as f64 / t.elapsed().as_secs_f64() / 1e6;
    let t = Instant::now();
    for w in 0..32 {
        s.remove_worker(w);
    }
    s.flush();
    let remove_ms = t.elapsed().as_secs_f64() * 1e3;
    drop(s);

    let deep = deep_phases();
    Row {
        name: name.to_string(),
        events_mops,
        mixed_mops,
        consistent_mops,
        checksum,
        query_p50_p99: percentiles(lat),
        deep,
        remove_ms,
    }
}

/// Up to 64 distinct corpus prompts of at least `depth` blocks, truncated to `depth`, each
/// stored on 4 of 64 workers (one whole, three cut in the second half); then every prompt is
/// queried for at least 0.3 s.
fn run_deep(make: &dyn Fn() -> Box<dyn Subject>, corpus: &Corpus, depth: usize) -> Deep {
    let mut long: Vec<&Vec<LocalBlockHash>> = corpus
        .items
        .iter()
        .filter_map(|i| match i {
            Item::Query(q) if q.len() >= depth => Some(q),
            _ => None,
        })
        .collect();
    long.sort();
    long.dedup();
    let n = long.len().min(64);
    let seqs: Vec<Vec<LocalBlockHash>> = (0..n)
        .map(|i| long[i * long.len() / n][..depth].to_vec())
        .collect();
    let s = make();
    let mut rng = depth as u64;
    for q in &seqs {
        let hashes = sequence_hashes(q);
        let mut chosen: Vec<u64> = Vec::new();
        while chosen.len() < 4 {
            let w = splitmix(&mut rng) % 64;
            if !chosen.contains(&w) {
                chosen.push(w);
            }
        }
        for (k, w) in chosen.into_iter().enumerate() {
            let len = if k == 0 {
                depth
            } else {
                depth / 2 + (splitmix(&mut rng) as usize % (depth / 2 + 1))
            };
            let blocks = q[..len]
                .iter()
                .zip(&hashes)
                .map(|(&tokens_hash, &block_hash)| KvCacheStoredBlockData {
                    block_hash,
                    tokens_hash,
                })
                .collect();
            s.apply(RouterEvent::new(
                1000 + w,
                KvCacheEvent {
                    event_id: 0,
                    data: KvCacheEventData::Stored(KvCacheStoreData {
                        parent_hash: None,
                        start_position: None,
                        blocks,
                    }),
                    dp_rank: 0,
                },
            ));
        }
    }
    s.flush();
    let mut checksum = 0;
    for q in &seqs {
        checksum = fold(checksum, &s.find(q));
    }
    let mut lat = Vec::new();
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(300) {
        for q in &seqs {
            let qt = Instant::now();
            black_box(s.find(q));
            lat.push(qt.elapsed().as_nanos() as u64);
        }
    }
    Deep {
        depth,
        p50_p99: percentiles(lat),
        checksum,
    }
}

/// Print the markdown tables.
pub fn print_table(rows: &[Row]) {
    println!(
        "| indexer | events only (M block-ops/s) | mixed (M block-ops/s) | consistent (M block-ops/s) | find_matches p50 / p99 (µs), consistent | answer checksum | remove 32 workers (ms) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.2} / {:.2} | {:016x} | {:.1} |",
            r.name,
            r.events_mops,
            r.mixed_mops,
            r.consistent_mops,
            r.query_p50_p99.0,
            r.query_p50_p99.1,
            r.checksum,
            r.remove_ms
        );
    }
    println!();
    println!("| indexer | depth | find_matches p50 (µs) | p99 (µs) | checksum |");
    println!("|---|---|---|---|---|");
    for r in rows {
        for d in &r.deep {
            println!(
                "| {} | {} | {:.2} | {:.2} | {:016x} |",
                r.name, d.depth, d.p50_p99.0, d.p50_p99.1, d.checksum
            );
        }
    }
}
