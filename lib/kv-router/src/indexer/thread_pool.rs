//! The flash index with writes on a pool of lanes and reads on the callers' threads.
//!
//! Each owner (worker, dp rank) is assigned a lane on first sight (round robin) and keeps it:
//! all its events are applied in order by that lane's thread, which also owns its reverse
//! lookup, so writes need no owner-level locking. Every lane writes its own positional table
//! (a shard holding only its owners), so lanes never contend for a chunk lock or a cache line
//! of an entry; `find_matches` runs inline on the calling thread, searches every shard and
//! joins the answers (owner sets are disjoint), seeing whatever the lanes have applied so far.
//! `flush` is the barrier that makes every event enqueued before it visible.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use stator_tokens::LocalBlockHash;

use super::flash::{DEFAULT_JUMP_SIZE, PrefetchStage, Shared, Writer, find_matches_in};
use super::{Indexer, IndexerError};
use crate::protocols::{OverlapScores, RouterEvent, WorkerId, WorkerWithDpRank};

/// How long an idle lane spins before it blocks (a blocked lane costs the sender a wake-up).
const LANE_SPIN: Duration = Duration::from_micros(50);
/// How long [`ThreadPoolIndexer::flush`] polls the lanes' progress before it falls back to a
/// barrier message and blocks, when the lanes leave a CPU free for the caller: a blocked
/// caller's wake-up costs tens of microseconds on a virtual machine whose idle CPU has halted,
/// more than a short flush takes. With a lane on every CPU the caller blocks at once, since
/// polling would take a CPU from the lanes it waits for.
const FLUSH_POLL: Duration = Duration::from_micros(100);

/// One lane's event counts, each on a cache line of its own: `enqueued` is counted by the
/// submitting threads, `applied` published by the lane whenever it has drained its channel.
#[derive(Debug, Default)]
struct Progress {
    enqueued: PaddedCounter,
    applied: PaddedCounter,
}

/// A counter alone on its cache lines (two, against the adjacent-line prefetcher).
#[derive(Debug, Default)]
#[repr(align(128))]
struct PaddedCounter(AtomicU64);

enum LaneMsg {
    Event(RouterEvent),
    RemoveWorker(WorkerId, Sender<()>),
    Flush(Sender<()>),
    Dump(Sender<Vec<RouterEvent>>),
}

/// The flash indexer behind a pool of writer lanes; `Send + Sync`, every method takes `&self`.
///
/// Events are applied asynchronously: [`ThreadPoolIndexer::apply_event`] only enqueues, and
/// event errors (unknown parent, unknown block) are counted in
/// [`ThreadPoolIndexer::error_count`] and logged at debug level.
#[derive(Debug)]
pub struct ThreadPoolIndexer {
    /// One positional table per lane (same index as `lanes`), holding that lane's owners.
    shards: Vec<Arc<Shared>>,
    lanes: Vec<Sender<LaneMsg>>,
    /// Events enqueued and applied per lane (same index as `lanes`).
    progress: Vec<Arc<Progress>>,
    assignment: RwLock<FxHashMap<WorkerWithDpRank, usize>>,
    next_lane: AtomicUsize,
    errors: Arc<AtomicU64>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    jump: usize,
    /// How long `flush` polls before it blocks ([`FLUSH_POLL`], or zero with a lane per CPU).
    flush_poll: Duration,
}

impl std::fmt::Debug for LaneMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Event(_) => "Event",
            Self::RemoveWorker(..) => "RemoveWorker",
            Self::Flush(_) => "Flush",
            Self::Dump(_) => "Dump",
        })
    }
}

impl ThreadPoolIndexer {
    /// A pool of `lanes` writer threads (at least 1) with the default jump size.
    pub fn new(lanes: usize) -> Self {
        Self::with_jump_size(lanes, DEFAULT_JUMP_SIZE)
    }

    /// A pool of `lanes` writer threads whose readers probe `jump` positions ahead.
    pub fn with_jump_size(lanes: usize, jump: usize) -> Self {
        let errors = Arc::new(AtomicU64::new(0));
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        let mut shards = Vec::new();
        let mut progress = Vec::new();
        for i in 0..lanes.max(1) {
            let (tx, rx) = mpsc::channel();
            let shared = Arc::new(Shared::default());
            shards.push(Arc::clone(&shared));
            let lane_progress = Arc::new(Progress::default());
            progress.push(Arc::clone(&lane_progress));
            let errors = Arc::clone(&errors);
            let handle = std::thread::Builder::new()
                .name(format!("kv-index-lane-{i}"))
                .spawn(move || run_lane(&shared, &rx, &errors, &lane_progress))
                .expect("spawning an indexer lane thread");
            senders.push(tx);
            threads.push(handle);
        }
        Self {
            shards,
            lanes: senders,
            progress,
            assignment: RwLock::new(FxHashMap::default()),
            next_lane: AtomicUsize::new(0),
            errors,
            flush_poll: flush_poll(lanes.max(1)),
            threads: Mutex::new(threads),
            jump: jump.max(1),
        }
    }

    fn lane_of(&self, owner: WorkerWithDpRank) -> usize {
        if let Some(&lane) = self.assignment.read().get(&owner) {
            return lane;
        }
        *self
            .assignment
            .write()
            .entry(owner)
            .or_insert_with(|| self.next_lane.fetch_add(1, Ordering::Relaxed) % self.lanes.len())
    }

    /// Enqueue one event on its owner's lane.
    pub fn apply_event(&self, event: RouterEvent) -> Result<(), IndexerError> {
        let lane = self.lane_of(event.owner());
        self.progress[lane]
            .enqueued
            .0
            .fetch_add(1, Ordering::Relaxed);
        self.lanes[lane]
            .send(LaneMsg::Event(event))
            .map_err(|_| IndexerError::Closed)
    }

    /// Overlap of `query` with every owner, computed on the calling thread.
    pub fn find_matches(&self, query: &[LocalBlockHash]) -> OverlapScores {
        find_matches_in(&self.shards, query, self.jump)
    }

    /// Wait until every event enqueued before this call is applied.
    ///
    /// Polls the lanes' applied counts for up to [`FLUSH_POLL`] when the lanes leave a CPU
    /// free, then sends the lanes still behind a barrier message and blocks until each has
    /// answered.
    pub fn flush(&self) {
        let mut behind: Vec<(usize, u64)> = self
            .progress
            .iter()
            .enumerate()
            .map(|(lane, p)| (lane, p.enqueued.0.load(Ordering::Acquire)))
            .collect();
        let start = Instant::now();
        loop {
            behind.retain(|&(lane, target)| {
                self.progress[lane].applied.0.load(Ordering::Acquire) < target
            });
            if behind.is_empty() || start.elapsed() >= self.flush_poll {
                break;
            }
            std::thread::yield_now();
        }
        // A lane that stopped has nothing left to apply.
        self.ask(behind.iter().map(|&(lane, _)| lane), LaneMsg::Flush);
    }

    /// Forget every dp rank of `worker_id`; returns once readers no longer see it.
    pub fn remove_worker(&self, worker_id: WorkerId) {
        self.ask(0..self.lanes.len(), |done| {
            LaneMsg::RemoveWorker(worker_id, done)
        });
        self.assignment
            .write()
            .retain(|o, _| o.worker_id != worker_id);
    }

    /// A snapshot of every lane as `Stored` events (after the events enqueued so far).
    pub fn dump_events(&self) -> Vec<RouterEvent> {
        let mut out: Vec<RouterEvent> = self
            .ask(0..self.lanes.len(), LaneMsg::Dump)
            .into_iter()
            .flatten()
            .collect();
        for (i, ev) in out.iter_mut().enumerate() {
            ev.event.event_id = i as u64;
        }
        out
    }

    /// Send `request(reply)` to each of `lanes`, all before waiting, and collect the answers
    /// (a lane that has stopped answers nothing).
    fn ask<T>(
        &self,
        lanes: impl IntoIterator<Item = usize>,
        request: impl Fn(Sender<T>) -> LaneMsg,
    ) -> Vec<T> {
        let waits: Vec<Receiver<T>> = lanes
            .into_iter()
            .filter_map(|lane| {
                let (tx, rx) = mpsc::channel();
                self.lanes[lane].send(request(tx)).ok().map(|()| rx)
            })
            .collect();
        waits.into_iter().filter_map(|rx| rx.recv().ok()).collect()
    }

    /// Events rejected so far (unknown parent, unknown removed block, position too deep).
    pub fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Number of writer lanes.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Whether the index holds no block (call [`Self::flush`] first for a settled answer).
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|s| s.is_empty())
    }
}

impl Drop for ThreadPoolIndexer {
    fn drop(&mut self) {
        self.lanes.clear();
        for handle in self.threads.lock().drain(..) {
            let _ = handle.join();
        }
    }
}

impl Indexer for ThreadPoolIndexer {
    fn apply_event(&mut self, event: RouterEvent) -> Result<(), IndexerError> {
        ThreadPoolIndexer::apply_event(self, event)
    }

    fn find_matches(&self, query: &[LocalBlockHash]) -> OverlapScores {
        ThreadPoolIndexer::find_matches(self, query)
    }

    fn remove_worker(&mut self, worker_id: WorkerId) {
        ThreadPoolIndexer::remove_worker(self, worker_id);
    }

    fn dump_events(&self) -> Vec<RouterEvent> {
        ThreadPoolIndexer::dump_events(self)
    }
}

/// [`FLUSH_POLL`] when `lanes` leave this process a CPU to poll on, zero otherwise.
fn flush_poll(lanes: usize) -> Duration {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    if lanes < cpus {
        FLUSH_POLL
    } else {
        Duration::ZERO
    }
}

/// Queued events that a lane looks at ahead of the one it applies (one per prefetch stage).
const LOOKAHEAD: usize = PREFETCH_STAGES.len();
/// The prefetch stages an event goes through while it waits, in order.
const PREFETCH_STAGES: [PrefetchStage; 4] = [
    PrefetchStage::Index,
    PrefetchStage::Record,
    PrefetchStage::Headers,
    PrefetchStage::Buckets,
];
/// Messages a lane takes off its channel at once (at least [`LOOKAHEAD`] + 1).
const BATCH: usize = 16;

fn run_lane(shared: &Shared, rx: &Receiver<LaneMsg>, errors: &AtomicU64, progress: &Progress) {
    let mut writer = Writer::default();
    let mut queue: VecDeque<LaneMsg> = VecDeque::with_capacity(BATCH);
    let mut idle_since: Option<Instant> = None;
    let mut closed = false;
    // Events applied, published to `progress` only when the lane has drained its channel: a
    // store per event would bounce the counter's line to a polling `flush` once per event.
    let mut applied = 0u64;
    loop {
        while !closed && queue.len() < BATCH {
            match rx.try_recv() {
                Ok(msg) => queue.push_back(msg),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => closed = true,
            }
        }
        if queue.is_empty() {
            if closed {
                return;
            }
            if idle_since.is_none() {
                progress.applied.0.store(applied, Ordering::Release);
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < LANE_SPIN {
                std::hint::spin_loop();
                continue;
            }
            match rx.recv() {
                Ok(msg) => queue.push_back(msg),
                Err(_) => return,
            }
        }
        idle_since = None;
        // Software pipelining across events: the event `d` places ahead goes through stage
        // `LOOKAHEAD - d`, so by its turn its first lines are on their way or there.
        for (k, &stage) in PREFETCH_STAGES.iter().enumerate() {
            if let Some(LaneMsg::Event(event)) = queue.get(LOOKAHEAD - k) {
                writer.prefetch(shared, event, stage);
            }
        }
        let Some(msg) = queue.pop_front() else {
            continue;
        };
        match msg {
            LaneMsg::Event(event) => {
                if let Err(err) = writer.apply(shared, &event) {
                    errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%err, "kv event rejected");
                }
                applied += 1;
            }
            LaneMsg::RemoveWorker(worker_id, done) => {
                writer.remove_worker(shared, worker_id);
                let _ = done.send(());
            }
            LaneMsg::Flush(done) => {
                let _ = done.send(());
            }
            LaneMsg::Dump(reply) => {
                let mut out = Vec::new();
                writer.dump(&mut 0, &mut out);
                let _ = reply.send(out);
            }
        }
    }
}
