//! File discovery: one JSON file per key under `DYN_FILE_KV`, liveness by file mtime.
//!
//! Compatible with Dynamo 1.6.1's `file` backend: the same directory layout, file names and
//! JSON records, a TTL (default 10 s) on file modification time, owners touching their files
//! every `max(ttl/3, 1 s)`, and every participant deleting files older than the TTL. Watches
//! poll the bucket directory (default every 200 ms) and diff against the previous scan.

mod store;

pub use store::{decode_file_name, encode_file_name};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{
    Discovery, DiscoveryError, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord, DiscoveryStream,
    RecordId,
};
use crate::names::InstanceId;
use store::ScannedFile;

/// Environment variable naming the store root.
pub const ENV_FILE_KV: &str = "DYN_FILE_KV";
/// Default time after which an untouched file counts as dead.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// Default interval between watch scans.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Settings of a [`FileDiscovery`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiscoveryConfig {
    /// Store root; buckets are subdirectories (`v1/instances`, …).
    pub root: PathBuf,
    /// Files not modified for this long are expired.
    pub ttl: Duration,
    /// How often watches rescan their bucket.
    pub poll_interval: Duration,
}

impl FileDiscoveryConfig {
    /// Settings for `root` with the default TTL and poll interval.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            ttl: DEFAULT_TTL,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// The root from `DYN_FILE_KV`, else `$TMPDIR/dynamo_store_kv`.
    pub fn from_env() -> Self {
        let root = std::env::var_os(ENV_FILE_KV)
            .filter(|v| !v.is_empty())
            .map_or_else(Self::default_root, PathBuf::from);
        Self::new(root)
    }

    /// `$TMPDIR/dynamo_store_kv`, Dynamo's default root.
    pub fn default_root() -> PathBuf {
        std::env::temp_dir().join("dynamo_store_kv")
    }

    /// How often an owner touches its files: `max(ttl / 3, 1 s)`.
    pub fn keepalive_interval(&self) -> Duration {
        (self.ttl / 3).max(Duration::from_secs(1))
    }
}

/// State shared with the keep-alive task.
struct Shared {
    config: FileDiscoveryConfig,
    /// Files this process owns, by path; `None` once closed.
    owned: Mutex<Option<BTreeMap<PathBuf, DiscoveryRecord>>>,
}

impl Shared {
    /// Touches owned files (rewriting any that vanished), then expires stale files.
    fn keepalive_tick(&self) {
        if let Some(owned) = self.owned.lock().as_ref() {
            for (path, record) in owned {
                match store::touch(path) {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(path = %path.display(), "file discovery: owned record vanished, rewriting");
                        if let Err(e) = store::write_record(&self.config.root, record) {
                            tracing::warn!(error = %e, "file discovery: rewrite failed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "file discovery: touch failed"),
                }
            }
        }
        store::sweep_expired(&self.config.root, self.config.ttl);
    }

    /// Deletes owned files and stops keep-alive; idempotent.
    fn close(&self) {
        let Some(owned) = self.owned.lock().take() else {
            return;
        };
        for path in owned.keys() {
            if let Err(e) = store::remove_file(path) {
                tracing::warn!(error = %e, "file discovery: cannot remove owned record");
            }
        }
    }
}

/// A [`Discovery`] backed by a directory shared by all processes on a machine (or an NFS).
pub struct FileDiscovery {
    shared: Arc<Shared>,
    id: InstanceId,
    cancel: CancellationToken,
}

impl FileDiscovery {
    /// Opens the store with a fresh random instance id and starts the keep-alive task.
    ///
    /// Must be called within a tokio runtime.
    pub async fn open(config: FileDiscoveryConfig) -> Result<Self, DiscoveryError> {
        Self::open_with_id(config, InstanceId::random()).await
    }

    /// Opens the store with a given instance id.
    pub async fn open_with_id(
        config: FileDiscoveryConfig,
        id: InstanceId,
    ) -> Result<Self, DiscoveryError> {
        let root = config.root.clone();
        blocking(move || {
            for bucket in super::Bucket::ALL {
                let dir = store::bucket_dir(&root, bucket);
                std::fs::create_dir_all(&dir)
                    .map_err(|source| DiscoveryError::Io { path: dir, source })?;
            }
            Ok(())
        })
        .await?;
        let shared = Arc::new(Shared {
            config,
            owned: Mutex::new(Some(BTreeMap::new())),
        });
        let cancel = CancellationToken::new();
        tokio::spawn(keepalive(shared.clone(), cancel.clone()));
        Ok(Self { shared, id, cancel })
    }

    /// The store settings.
    pub fn config(&self) -> &FileDiscoveryConfig {
        &self.shared.config
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.shared.config.root
    }

    fn check_open(&self) -> Result<(), DiscoveryError> {
        if self.cancel.is_cancelled() {
            Err(DiscoveryError::Closed)
        } else {
            Ok(())
        }
    }
}

async fn keepalive(shared: Arc<Shared>, cancel: CancellationToken) {
    let interval = shared.config.keepalive_interval();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let tick = shared.clone();
        if tokio::task::spawn_blocking(move || tick.keepalive_tick())
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DiscoveryError> + Send + 'static,
) -> Result<T, DiscoveryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| DiscoveryError::Closed)?
}

/// Scans the records matching `query`, updating `cache`.
fn scan(
    config: &FileDiscoveryConfig,
    query: &DiscoveryQuery,
    cache: &mut BTreeMap<String, ScannedFile>,
) -> BTreeMap<String, DiscoveryRecord> {
    let mut live = store::scan_bucket(
        &config.root,
        query.bucket(),
        &query.key_prefix(),
        config.ttl,
        cache,
    );
    live.retain(|_, record| query.matches(record));
    live
}

async fn watch_loop(
    config: FileDiscoveryConfig,
    query: DiscoveryQuery,
    tx: mpsc::UnboundedSender<DiscoveryEvent>,
    cancel: CancellationToken,
    mut cache: BTreeMap<String, ScannedFile>,
    mut previous: BTreeMap<String, DiscoveryRecord>,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tx.closed() => return,
            () = tokio::time::sleep(config.poll_interval) => {}
        }
        let (cfg, q) = (config.clone(), query.clone());
        let Ok((next_cache, current)) = tokio::task::spawn_blocking(move || {
            let current = scan(&cfg, &q, &mut cache);
            (cache, current)
        })
        .await
        else {
            return;
        };
        cache = next_cache;
        for (key, record) in &current {
            if previous.get(key) != Some(record)
                && tx.send(DiscoveryEvent::Added(record.clone())).is_err()
            {
                return;
            }
        }
        for (key, record) in &previous {
            if !current.contains_key(key) && tx.send(DiscoveryEvent::Removed(record.id())).is_err()
            {
                return;
            }
        }
        previous = current;
    }
}

#[async_trait]
impl Discovery for FileDiscovery {
    fn instance_id(&self) -> InstanceId {
        self.id
    }

    async fn register(&self, record: DiscoveryRecord) -> Result<(), DiscoveryError> {
        self.check_open()?;
        let shared = self.shared.clone();
        blocking(move || {
            let mut owned = shared.owned.lock();
            let Some(owned) = owned.as_mut() else {
                return Err(DiscoveryError::Closed);
            };
            let path = store::write_record(&shared.config.root, &record)?;
            owned.insert(path, record);
            Ok(())
        })
        .await
    }

    async fn unregister(&self, id: &RecordId) -> Result<(), DiscoveryError> {
        self.check_open()?;
        let shared = self.shared.clone();
        let path =
            store::bucket_dir(&shared.config.root, id.bucket()).join(encode_file_name(&id.key()));
        blocking(move || {
            if let Some(owned) = shared.owned.lock().as_mut() {
                owned.remove(&path);
            }
            store::remove_file(&path)
        })
        .await
    }

    async fn list(&self, query: &DiscoveryQuery) -> Result<Vec<DiscoveryRecord>, DiscoveryError> {
        self.check_open()?;
        let (config, query) = (self.shared.config.clone(), query.clone());
        blocking(move || {
            Ok(scan(&config, &query, &mut BTreeMap::new())
                .into_values()
                .collect())
        })
        .await
    }

    async fn watch(&self, query: &DiscoveryQuery) -> Result<DiscoveryStream, DiscoveryError> {
        self.check_open()?;
        let (config, q) = (self.shared.config.clone(), query.clone());
        let (cache, initial) = blocking(move || {
            let mut cache = BTreeMap::new();
            let initial = scan(&config, &q, &mut cache);
            Ok((cache, initial))
        })
        .await?;
        let (tx, rx) = mpsc::unbounded_channel();
        for record in initial.values() {
            // The receiver is alive: it is still in this scope.
            let _ = tx.send(DiscoveryEvent::Added(record.clone()));
        }
        let _ = tx.send(DiscoveryEvent::Resync(initial.values().cloned().collect()));
        tokio::spawn(watch_loop(
            self.shared.config.clone(),
            query.clone(),
            tx,
            self.cancel.clone(),
            cache,
            initial,
        ));
        Ok(Box::pin(UnboundedReceiverStream::new(rx)))
    }

    async fn shutdown(&self) {
        self.cancel.cancel();
        let shared = self.shared.clone();
        // A failed join only means the runtime is going away; Drop retries the removal.
        let _ = tokio::task::spawn_blocking(move || shared.close()).await;
    }
}

impl Drop for FileDiscovery {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.shared.close();
    }
}
