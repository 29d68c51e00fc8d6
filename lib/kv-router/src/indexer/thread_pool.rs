//! The flash index with writes on a pool of lanes and reads on the callers' threads.
//!
//! Each owner (worker, dp rank) is assigned a lane on first sight (round robin) and keeps it.
//! Applying an event has two halves (see the flash indexer's `work` module): the owner pass,
//! which updates the owner's held blocks and gaps and works out the table writes, and the table
//! pass, which writes them. The lane's thread always runs the table pass, in submission order.
//! Where the owner pass runs depends on the CPUs ([`OwnerPasses`]): on the thread that submits
//! the event, under the lane's writer lock, while the lanes leave a CPU for it, so that a
//! submitting thread and a lane work on different events at once; otherwise on the lane too,
//! which then prefetches across the events it has queued. Every lane writes its own positional
//! table (a shard holding only its owners), so lanes never contend for a chunk lock or a cache
//! line of an entry; `find_matches` runs inline on the calling thread, searches every shard and
//! joins the answers (owner sets are disjoint), seeing whatever the lanes have applied so far.
//! `flush` is the barrier that makes every event submitted before it visible.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;
use stator_tokens::LocalBlockHash;

use super::flash::{
    DEFAULT_JUMP_SIZE, PrefetchStage, Shared, TableWork, TableWriter, Writer, find_matches_in,
};
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

/// Where a [`ThreadPoolIndexer`] runs the owner half of applying an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OwnerPasses {
    /// [`OwnerPasses::Submitter`] while the lanes leave this process a CPU (fewer lanes than
    /// the CPUs it may use), [`OwnerPasses::Lane`] otherwise.
    #[default]
    Auto,
    /// In [`ThreadPoolIndexer::apply_event`], on the submitting thread: the lanes only write
    /// their tables, and a submitting thread and a lane work on different events at once.
    Submitter,
    /// On the lanes: `apply_event` only enqueues the event.
    Lane,
}

impl OwnerPasses {
    /// The concrete choice for `lanes` lanes on this process's CPUs.
    fn resolve(self, lanes: usize) -> Self {
        match self {
            Self::Auto if lanes < available_cpus() => Self::Submitter,
            Self::Auto => Self::Lane,
            chosen => chosen,
        }
    }
}

/// One lane's message counts, each on a cache line of its own: `enqueued` is counted by the
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
    /// Table writes of an event whose owner pass has run.
    Work(TableWork),
    /// An event whose owner pass the lane runs ([`OwnerPasses::Lane`]).
    Event(RouterEvent),
    Flush(Sender<()>),
}

impl std::fmt::Debug for LaneMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Work(_) => "Work",
            Self::Event(_) => "Event",
            Self::Flush(_) => "Flush",
        })
    }
}

/// The owner side of a lane, behind its lock: locked by a submitting thread for each owner
/// pass it runs ([`OwnerPasses::Submitter`]), by the lane for each event it plans
/// ([`OwnerPasses::Lane`]), and by `remove_worker` and `dump_events`.
#[derive(Debug)]
struct OwnerSide {
    writer: Writer,
    /// Work the lane has applied and sent back, reused for the next event: its buffer was
    /// allocated by a submitting thread, which frees or reuses it best (a free on the lane
    /// goes through the allocator's slow path for memory of another thread).
    spent: Receiver<TableWork>,
}

/// What submitting threads share with one lane.
#[derive(Debug)]
struct Lane {
    /// The owner passes of the lane's owners; held while a pass runs and its work is sent,
    /// so that the lane receives each owner's work in the order of its events.
    owners: Arc<Mutex<OwnerSide>>,
    tx: Sender<LaneMsg>,
    progress: Arc<Progress>,
}

/// What a lane's thread works with.
struct LaneContext {
    shared: Arc<Shared>,
    owners: Arc<Mutex<OwnerSide>>,
    rx: Receiver<LaneMsg>,
    spent: Sender<TableWork>,
    progress: Arc<Progress>,
    errors: Arc<AtomicU64>,
}

/// The flash indexer behind a pool of writer lanes; `Send + Sync`, every method takes `&self`.
///
/// Events are applied asynchronously: [`ThreadPoolIndexer::apply_event`] enqueues the event's
/// table writes (running its owner pass first, see [`OwnerPasses`]), and event errors
/// (unknown parent, unknown block) are counted in [`ThreadPoolIndexer::error_count`] and
/// logged at debug level.
#[derive(Debug)]
pub struct ThreadPoolIndexer {
    /// One positional table per lane (same index as `lanes`), holding that lane's owners.
    shards: Vec<Arc<Shared>>,
    lanes: Vec<Lane>,
    owner_passes: OwnerPasses,
    assignment: RwLock<FxHashMap<WorkerWithDpRank, usize>>,
    next_lane: AtomicUsize,
    errors: Arc<AtomicU64>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    jump: usize,
    /// How long `flush` polls before it blocks ([`FLUSH_POLL`], or zero with a lane per CPU).
    flush_poll: Duration,
}

impl ThreadPoolIndexer {
    /// A pool of `lanes` writer threads (at least 1) with the default jump size.
    pub fn new(lanes: usize) -> Self {
        Self::with_jump_size(lanes, DEFAULT_JUMP_SIZE)
    }

    /// A pool of `lanes` writer threads whose readers probe `jump` positions ahead.
    pub fn with_jump_size(lanes: usize, jump: usize) -> Self {
        Self::with_owner_passes(lanes, jump, OwnerPasses::Auto)
    }

    /// A pool of `lanes` writer threads whose readers probe `jump` positions ahead, running
    /// owner passes where `owner_passes` says.
    ///
    /// ```
    /// use stator_kv_router::indexer::{OwnerPasses, ThreadPoolIndexer};
    ///
    /// let index = ThreadPoolIndexer::with_owner_passes(1, 64, OwnerPasses::Submitter);
    /// assert_eq!(index.owner_passes(), OwnerPasses::Submitter);
    /// ```
    pub fn with_owner_passes(lanes: usize, jump: usize, owner_passes: OwnerPasses) -> Self {
        let lanes = lanes.max(1);
        let errors = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        let mut shards = Vec::new();
        let mut pool = Vec::new();
        for i in 0..lanes {
            let (tx, rx) = mpsc::channel();
            let (spent_tx, spent) = mpsc::channel();
            let shared = Arc::new(Shared::default());
            shards.push(Arc::clone(&shared));
            let progress = Arc::new(Progress::default());
            let owners = Arc::new(Mutex::new(OwnerSide {
                writer: Writer::default(),
                spent,
            }));
            let context = LaneContext {
                shared,
                owners: Arc::clone(&owners),
                rx,
                spent: spent_tx,
                progress: Arc::clone(&progress),
                errors: Arc::clone(&errors),
            };
            let handle = std::thread::Builder::new()
                .name(format!("kv-index-lane-{i}"))
                .spawn(move || run_lane(&context))
                .expect("spawning an indexer lane thread");
            pool.push(Lane {
                owners,
                tx,
                progress,
            });
            threads.push(handle);
        }
        Self {
            shards,
            lanes: pool,
            owner_passes: owner_passes.resolve(lanes),
            assignment: RwLock::new(FxHashMap::default()),
            next_lane: AtomicUsize::new(0),
            errors,
            flush_poll: flush_poll(lanes),
            threads: Mutex::new(threads),
            jump: jump.max(1),
        }
    }

    /// Where this pool runs owner passes ([`OwnerPasses::Submitter`] or
    /// [`OwnerPasses::Lane`]).
    pub fn owner_passes(&self) -> OwnerPasses {
        self.owner_passes
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

    /// Enqueue the event's table writes on its owner's lane, running its owner pass here
    /// first when this pool runs them on the submitting thread.
    pub fn apply_event(&self, event: RouterEvent) -> Result<(), IndexerError> {
        let index = self.lane_of(event.owner());
        let lane = &self.lanes[index];
        if self.owner_passes == OwnerPasses::Lane {
            return Self::send(lane, LaneMsg::Event(event));
        }
        let mut owners = lane.owners.lock();
        let mut work = owners.spent.try_recv().unwrap_or_default();
        let result = owners.writer.plan(&self.shards[index], &event, &mut work);
        if !work.is_empty() {
            Self::send(lane, LaneMsg::Work(work))?;
        }
        drop(owners);
        if let Err(err) = result {
            self.errors.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%err, "kv event rejected");
        }
        Ok(())
    }

    /// Enqueue `msg` on `lane` (whose owners' lock the caller holds, for work).
    fn send(lane: &Lane, msg: LaneMsg) -> Result<(), IndexerError> {
        lane.progress.enqueued.0.fetch_add(1, Ordering::Relaxed);
        lane.tx.send(msg).map_err(|_| IndexerError::Closed)
    }

    /// Overlap of `query` with every owner, computed on the calling thread.
    pub fn find_matches(&self, query: &[LocalBlockHash]) -> OverlapScores {
        find_matches_in(&self.shards, query, self.jump)
    }

    /// Wait until every event submitted before this call is applied.
    ///
    /// Polls the lanes' applied counts for up to 100 µs when the lanes leave a CPU
    /// free, then sends the lanes still behind a barrier message and blocks until each has
    /// answered.
    pub fn flush(&self) {
        let mut behind: Vec<(usize, u64)> = self
            .lanes
            .iter()
            .enumerate()
            .map(|(i, lane)| (i, lane.progress.enqueued.0.load(Ordering::Acquire)))
            .collect();
        let start = Instant::now();
        loop {
            behind.retain(|&(i, target)| {
                self.lanes[i].progress.applied.0.load(Ordering::Acquire) < target
            });
            if behind.is_empty() || start.elapsed() >= self.flush_poll {
                break;
            }
            std::thread::yield_now();
        }
        self.barrier(behind.iter().map(|&(i, _)| i));
    }

    /// Send each of `lanes` a barrier, all before waiting, and wait until each has reached
    /// it (a lane that has stopped has nothing left to apply).
    fn barrier(&self, lanes: impl IntoIterator<Item = usize>) {
        let waits: Vec<Receiver<()>> = lanes
            .into_iter()
            .filter_map(|i| {
                let (tx, rx) = mpsc::channel();
                self.lanes[i].tx.send(LaneMsg::Flush(tx)).ok().map(|()| rx)
            })
            .collect();
        for rx in waits {
            let _ = rx.recv();
        }
    }

    /// Forget every dp rank of `worker_id` (after the events submitted before this call);
    /// returns once readers no longer see it.
    pub fn remove_worker(&self, worker_id: WorkerId) {
        if self.owner_passes == OwnerPasses::Lane {
            // The lanes plan the events they have queued against the owners' state first.
            self.flush();
        }
        let mut touched = Vec::new();
        for (index, lane) in self.lanes.iter().enumerate() {
            let mut owners = lane.owners.lock();
            let works = owners.writer.remove_worker(&self.shards[index], worker_id);
            if works.is_empty() {
                continue;
            }
            for work in works {
                // A stopped lane's table is never read again.
                let _ = Self::send(lane, LaneMsg::Work(work));
            }
            touched.push(index);
        }
        self.assignment
            .write()
            .retain(|o, _| o.worker_id != worker_id);
        // Readers stopped seeing the worker's slots when they were retired; the slots are
        // reused once the lanes have dropped their blocks.
        self.barrier(touched);
    }

    /// A snapshot of every owner's blocks as `Stored` events (after the events submitted so
    /// far).
    pub fn dump_events(&self) -> Vec<RouterEvent> {
        if self.owner_passes == OwnerPasses::Lane {
            self.flush();
        }
        let mut out = Vec::new();
        let mut next_event_id = 0;
        for lane in &self.lanes {
            lane.owners.lock().writer.dump(&mut next_event_id, &mut out);
        }
        out
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
    if lanes < available_cpus() {
        FLUSH_POLL
    } else {
        Duration::ZERO
    }
}

/// Messages a lane takes off its channel at once (at least [`LOOKAHEAD`] + 1).
const BATCH: usize = 16;
/// Queued events a lane looks at ahead of the one it applies (one per prefetch stage).
const LOOKAHEAD: usize = PREFETCH_STAGES.len();
/// The prefetch stages a queued event goes through while it waits, in order.
const PREFETCH_STAGES: [PrefetchStage; 4] = [
    PrefetchStage::Index,
    PrefetchStage::Record,
    PrefetchStage::Headers,
    PrefetchStage::Buckets,
];

fn run_lane(lane: &LaneContext) {
    let shared = &*lane.shared;
    let mut table = TableWriter::default();
    // The work of the events this lane plans itself.
    let mut own_work = TableWork::default();
    let mut queue: VecDeque<LaneMsg> = VecDeque::with_capacity(BATCH);
    let mut idle_since: Option<Instant> = None;
    let mut closed = false;
    // Messages applied, published to `progress` only when the lane has drained its channel: a
    // store per message would bounce the counter's line to a polling `flush` once per event.
    let mut applied = 0u64;
    loop {
        while !closed && queue.len() < BATCH {
            match lane.rx.try_recv() {
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
                lane.progress.applied.0.store(applied, Ordering::Release);
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < LANE_SPIN {
                std::hint::spin_loop();
                continue;
            }
            match lane.rx.recv() {
                Ok(msg) => queue.push_back(msg),
                Err(_) => return,
            }
        }
        idle_since = None;
        match queue.front() {
            Some(LaneMsg::Event(_)) => {
                let mut owners = lane.owners.lock();
                // Software pipelining across events: the event `d` places ahead goes through
                // stage `LOOKAHEAD - d`, so by its turn its first lines are on their way.
                for (k, &stage) in PREFETCH_STAGES.iter().enumerate() {
                    if let Some(LaneMsg::Event(event)) = queue.get(LOOKAHEAD - k) {
                        owners.writer.prefetch(shared, event, stage);
                    }
                }
                let Some(LaneMsg::Event(event)) = queue.pop_front() else {
                    unreachable!("the front message is an event");
                };
                let result = owners.writer.plan(shared, &event, &mut own_work);
                drop(owners);
                table.apply(shared, &own_work);
                if let Err(err) = result {
                    lane.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%err, "kv event rejected");
                }
                applied += 1;
            }
            Some(LaneMsg::Work(_)) => {
                // Software pipelining across work: the map headers of the work two places
                // ahead, then, one place ahead, the buckets they lead to.
                if let Some(LaneMsg::Work(work)) = queue.get(2) {
                    TableWriter::prefetch(shared, work, false);
                }
                if let Some(LaneMsg::Work(work)) = queue.get(1) {
                    TableWriter::prefetch(shared, work, true);
                }
                let Some(LaneMsg::Work(work)) = queue.pop_front() else {
                    unreachable!("the front message is work");
                };
                table.apply(shared, &work);
                applied += 1;
                // The submitters may be gone (the pool is being dropped).
                let _ = lane.spent.send(work);
            }
            Some(LaneMsg::Flush(_)) => {
                if let Some(LaneMsg::Flush(done)) = queue.pop_front() {
                    let _ = done.send(());
                }
            }
            None => {}
        }
    }
}

/// The CPUs this process may run on.
fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
