//! Turn the Mooncake trace into a KV event + query stream with a per-worker LRU block cache.
//!
//! Each trace `hash_id` stands for 512 prompt tokens; with 16-token engine blocks that is 32
//! blocks whose tokens are the hash id repeated (as upstream's bench synthesizes prompts), so
//! the 32 blocks share one local hash and differ in sequence hash. A request goes to worker
//! `splitmix(request index) % workers`. Its query (all its block hashes) is issued first;
//! then the worker's cache touches the request's blocks, evicts least-recently-used blocks
//! to make room (one `Removed` event) and stores the blocks it did not have (one `Stored`
//! event under the cached prefix). Blocks are touched last-to-first, so a request's prefix is
//! more recent than its tail and eviction takes tails first, as an engine's free order does.

use std::collections::BTreeMap;
use std::path::Path;

use rustc_hash::{FxHashMap, FxHashSet};
use stator_kv_router::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheRemoveData, KvCacheStoreData, KvCacheStoredBlockData,
    RouterEvent,
};
use stator_tokens::{LocalBlockHash, SaltSeed, SequenceHash, block_hash, sequence_hashes};

/// Replay parameters.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub workers: u64,
    pub blocks_per_worker: usize,
    pub block_size: usize,
    pub trace_block_tokens: usize,
}

/// One entry of the merged stream.
pub enum Item {
    Query(Vec<LocalBlockHash>),
    Event(RouterEvent),
}

/// The generated stream and its counts.
pub struct Corpus {
    pub items: Vec<Item>,
    pub queries: usize,
    pub query_blocks: usize,
    pub stored_events: usize,
    pub stored_blocks: usize,
    pub removed_events: usize,
    pub removed_blocks: usize,
}

impl Corpus {
    pub fn event_blocks(&self) -> usize {
        self.stored_blocks + self.removed_blocks
    }

    pub fn block_ops(&self) -> usize {
        self.query_blocks + self.event_blocks()
    }
}

/// One request of the trace: its hash ids and prompt length.
pub struct Request {
    pub hash_ids: Vec<u64>,
    pub input_length: usize,
}

/// Parse the JSONL trace (`hash_ids`, `input_length` per line).
pub fn load_trace(path: &Path) -> Result<Vec<Request>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        let hash_ids = v["hash_ids"]
            .as_array()
            .ok_or_else(|| format!("line {}: no hash_ids", i + 1))?
            .iter()
            .filter_map(serde_json::Value::as_u64)
            .collect();
        let input_length = v["input_length"].as_u64().unwrap_or(u64::MAX) as usize;
        out.push(Request {
            hash_ids,
            input_length,
        });
    }
    Ok(out)
}

pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The local hashes of a request's blocks.
fn request_blocks(
    req: &Request,
    spec: &Spec,
    cache: &mut FxHashMap<u64, LocalBlockHash>,
) -> Vec<LocalBlockHash> {
    let per_hash = spec.trace_block_tokens / spec.block_size;
    let n = (req.input_length / spec.block_size).min(req.hash_ids.len() * per_hash);
    (0..n)
        .map(|i| {
            let h = req.hash_ids[i / per_hash];
            *cache.entry(h).or_insert_with(|| {
                block_hash(&vec![h as u32; spec.block_size], SaltSeed::default())
            })
        })
        .collect()
}

/// A worker's LRU block cache.
#[derive(Default)]
struct Lru {
    stamp_of: FxHashMap<SequenceHash, u64>,
    by_stamp: BTreeMap<u64, SequenceHash>,
    clock: u64,
}

impl Lru {
    fn touch(&mut self, seq: SequenceHash) {
        self.clock += 1;
        if let Some(old) = self.stamp_of.insert(seq, self.clock) {
            self.by_stamp.remove(&old);
        }
        self.by_stamp.insert(self.clock, seq);
    }

    /// Evict LRU blocks not in `keep` until `room` more blocks fit.
    fn evict(
        &mut self,
        capacity: usize,
        room: usize,
        keep: &FxHashSet<SequenceHash>,
    ) -> Vec<SequenceHash> {
        let mut out = Vec::new();
        let mut skipped = Vec::new();
        while self.stamp_of.len() + room > capacity {
            let Some((stamp, seq)) = self.by_stamp.pop_first() else {
                break;
            };
            if keep.contains(&seq) {
                skipped.push((stamp, seq));
                continue;
            }
            self.stamp_of.remove(&seq);
            out.push(seq);
        }
        self.by_stamp.extend(skipped);
        out
    }
}

fn event(worker: u64, event_id: u64, data: KvCacheEventData) -> RouterEvent {
    RouterEvent::new(
        worker,
        KvCacheEvent {
            event_id,
            data,
            dp_rank: 0,
        },
    )
}

/// Generate the stream.
pub fn build(trace: &[Request], spec: &Spec) -> Corpus {
    let mut caches: Vec<Lru> = (0..spec.workers).map(|_| Lru::default()).collect();
    let mut local_cache = FxHashMap::default();
    let mut corpus = Corpus {
        items: Vec::new(),
        queries: 0,
        query_blocks: 0,
        stored_events: 0,
        stored_blocks: 0,
        removed_events: 0,
        removed_blocks: 0,
    };
    let mut event_id = 0u64;
    for (i, req) in trace.iter().enumerate() {
        let locals = request_blocks(req, spec, &mut local_cache);
        if locals.is_empty() {
            continue;
        }
        let seqs = sequence_hashes(&locals);
        let mut rng = i as u64;
        let worker = splitmix(&mut rng) % spec.workers;
        corpus.queries += 1;
        corpus.query_blocks += locals.len();
        corpus.items.push(Item::Query(locals.clone()));

        let cache = &mut caches[worker as usize];
        let first_miss = seqs
            .iter()
            .position(|s| !cache.stamp_of.contains_key(s))
            .unwrap_or(seqs.len());
        let new: Vec<usize> = (first_miss..seqs.len())
            .filter(|&j| !cache.stamp_of.contains_key(&seqs[j]))
            .collect();
        if !new.is_empty() {
            let keep: FxHashSet<SequenceHash> = seqs.iter().copied().collect();
            let evicted = cache.evict(spec.blocks_per_worker, new.len(), &keep);
            if !evicted.is_empty() {
                corpus.removed_events += 1;
                corpus.removed_blocks += evicted.len();
                corpus.items.push(Item::Event(event(
                    worker,
                    event_id,
                    KvCacheEventData::Removed(KvCacheRemoveData {
                        block_hashes: evicted,
                    }),
                )));
                event_id += 1;
            }
            let blocks: Vec<KvCacheStoredBlockData> = (first_miss..seqs.len())
                .map(|j| KvCacheStoredBlockData {
                    block_hash: seqs[j],
                    tokens_hash: locals[j],
                })
                .collect();
            corpus.stored_events += 1;
            corpus.stored_blocks += blocks.len();
            corpus.items.push(Item::Event(event(
                worker,
                event_id,
                KvCacheEventData::Stored(KvCacheStoreData {
                    parent_hash: first_miss.checked_sub(1).map(|p| seqs[p]),
                    start_position: None,
                    blocks,
                }),
            )));
            event_id += 1;
        }
        for s in seqs.iter().rev() {
            cache.touch(*s);
        }
    }
    corpus
}
