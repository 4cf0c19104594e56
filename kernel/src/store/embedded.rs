//! The embedded store backend: one redb file in a data directory.
//!
//! Tables: `keys` (key → create revision, mod revision, value), `log`
//! (revision → event with the previous value, for watch replay) and `meta`
//! (current and compacted revision). All writes go through one writer thread
//! that group-commits ([`writer`]); reads run in read transactions on the
//! blocking pool; watches replay the log, then follow a broadcast feed
//! ([`watch`]).

mod codec;
mod watch;
mod writer;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{broadcast, mpsc, oneshot};

use self::writer::{Op, Reply, Request, WriteOp};
use super::{Error, Event, KeyValue, ListResult, Result, Revision, Store, WatchStream};

/// key → create revision, mod revision, value ([`codec::encode_row`]).
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// revision → event ([`codec::encode_event`]).
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Named revisions: [`META_REVISION`], [`META_COMPACTED`].
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";

/// The database file inside the data directory.
pub const DATA_FILE: &str = "kerno.redb";

/// How long [`EmbeddedStore::open`] retries a database still held by a
/// previous handle of this process that is shutting down.
const OPEN_PATIENCE: Duration = Duration::from_secs(5);

/// Tuning of an [`EmbeddedStore`].
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Live events buffered per watcher before it is closed with
    /// [`Error::WatchLagged`].
    pub watch_buffer: usize,
    /// Write operations queued before callers wait (back-pressure).
    pub queue: usize,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            watch_buffer: 16 * 1024,
            queue: 8 * 1024,
        }
    }
}

/// State shared by the handle, the writer thread and readers.
struct Shared {
    db: Database,
    /// The last committed revision (set by the writer after each commit).
    revision: AtomicI64,
    /// The last compaction revision.
    compacted: AtomicI64,
}

/// The embedded [`Store`]: durable, single-process, no setup.
///
/// Dropping it stops the writer thread (waiting for the batch in flight, a few
/// milliseconds at most) and closes the file once in-flight reads end; open
/// watches then end with a backend error.
pub struct EmbeddedStore {
    shared: Arc<Shared>,
    ops: Option<mpsc::Sender<Request>>,
    events: broadcast::Sender<Arc<Event>>,
    writer: Option<std::thread::JoinHandle<()>>,
    dir: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir` with default options. An existing
    /// store continues from its last revision. The file work runs on the
    /// blocking pool, so this is safe to await anywhere.
    pub async fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, EmbeddedOptions::default()).await
    }

    /// Opens (or creates) the store in `dir` with the given options.
    pub async fn open_with(dir: &Path, options: EmbeddedOptions) -> Result<Self> {
        let dir = dir.to_path_buf();
        let path = dir.join(DATA_FILE);
        let started = tokio::time::Instant::now();
        let shared = loop {
            let (dir, file) = (dir.clone(), path.clone());
            let attempt = tokio::task::spawn_blocking(move || open_shared(&dir, &file))
                .await
                .map_err(|e| Error::backend("open task failed", e))?;
            match attempt {
                // Another handle of this process may still be closing the file.
                Err(OpenError::AlreadyOpen) if started.elapsed() < OPEN_PATIENCE => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(OpenError::AlreadyOpen) => {
                    return Err(Error::Backend {
                        message: format!("database {} is already open", path.display()),
                        source: None,
                    });
                }
                Err(OpenError::Store(err)) => return Err(err),
                Ok(shared) => break Arc::new(shared),
            }
        };
        let (ops_tx, ops_rx) = mpsc::channel(options.queue.max(1));
        let (events, _) = broadcast::channel(options.watch_buffer.max(1));
        let writer = {
            let shared = Arc::clone(&shared);
            let events = events.clone();
            std::thread::Builder::new()
                .name("kerno-store-writer".into())
                .spawn(move || writer::run(shared, ops_rx, events))
                .map_err(|e| Error::backend("start writer thread", e))?
        };
        tracing::debug!(dir = %dir.display(), revision = shared.revision.load(Ordering::Acquire), "embedded store open");
        Ok(Self {
            shared,
            ops: Some(ops_tx),
            events,
            writer: Some(writer),
            dir,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The revision history has been compacted to (0 if never).
    pub fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::Acquire)
    }

    /// Starts a task that, every `every`, compacts history so that roughly the
    /// last `keep` revisions stay available to watches. The task stops when
    /// the store is dropped (it holds only a weak reference). The kernel keeps
    /// e.g. 100_000 revisions.
    pub fn spawn_compactor(
        self: &Arc<Self>,
        keep: u64,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let store: Weak<Self> = Arc::downgrade(self);
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(store) = store.upgrade() else { break };
                let target = store.shared.revision.load(Ordering::Acquire) - keep;
                if target > store.compacted_revision() {
                    match store.compact(target).await {
                        Ok(()) => tracing::debug!(revision = target, "compacted store history"),
                        Err(err) => tracing::warn!(error = %err, "store compaction failed"),
                    }
                }
            }
        })
    }

    async fn submit(&self, op: Op) -> Result<Reply> {
        let ops = self.ops.as_ref().ok_or_else(closed)?;
        let (reply, answer) = oneshot::channel();
        ops.send(Request { op, reply })
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue> {
        match self.submit(Op::Write(op)).await? {
            Reply::Kv(kv) => Ok(kv),
            Reply::Compacted => Err(Error::Backend {
                message: "writer answered a write with a compaction".into(),
                source: None,
            }),
        }
    }

    /// Runs a read on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Shared) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let shared = Arc::clone(&self.shared);
        tokio::task::spawn_blocking(move || f(&shared))
            .await
            .map_err(|e| Error::backend("read task failed", e))?
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the channel ends the writer after its current batch; waiting
        // for it means a reopen of the same directory finds the file free.
        self.ops.take();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::warn!("embedded store writer thread panicked");
        }
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_owned();
        self.read(move |shared| {
            let txn = shared.db.begin_read().map_err(storage("begin read"))?;
            let keys = txn.open_table(KEYS).map_err(storage("open keys"))?;
            match keys.get(key.as_str()).map_err(storage("read key"))? {
                Some(row) => codec::decode_row(&key, row.value())
                    .map(Some)
                    .map_err(|e| Error::backend("read key", e)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListResult> {
        let prefix = prefix.to_owned();
        let start_after = start_after.map(str::to_owned);
        self.read(move |shared| {
            let txn = shared.db.begin_read().map_err(storage("begin read"))?;
            let meta = txn.open_table(META).map_err(storage("open meta"))?;
            let revision = meta
                .get(META_REVISION)
                .map_err(storage("read meta"))?
                .map_or(0, |g| g.value());
            let keys = txn.open_table(KEYS).map_err(storage("open keys"))?;
            let start = match start_after.as_deref() {
                Some(after) if after >= prefix.as_str() => Bound::Excluded(after),
                _ => Bound::Included(prefix.as_str()),
            };
            let mut result = ListResult {
                kvs: Vec::new(),
                more: false,
                revision,
            };
            for entry in keys
                .range::<&str>((start, Bound::Unbounded))
                .map_err(storage("read keys"))?
            {
                let (key, row) = entry.map_err(storage("read keys"))?;
                let key = key.value();
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                if limit > 0 && result.kvs.len() == limit {
                    result.more = true;
                    break;
                }
                result.kvs.push(
                    codec::decode_row(key, row.value())
                        .map_err(|e| Error::backend("read keys", e))?,
                );
            }
            Ok(result)
        })
        .await
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        self.write(WriteOp::Create {
            key: key.to_owned(),
            value,
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue> {
        self.write(WriteOp::Update {
            key: key.to_owned(),
            value,
            expected: expected_mod_revision,
        })
        .await
    }

    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue> {
        self.write(WriteOp::Delete {
            key: key.to_owned(),
            expected: expected_mod_revision,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream> {
        // Subscribe first: see the module docs of `watch` for why.
        let live = self.events.subscribe();
        watch::open(&self.shared, live, prefix, after_revision).await
    }

    async fn history(
        &self,
        prefix: &str,
        after: Revision,
        through: Revision,
        max_events: usize,
    ) -> Result<Option<Vec<Event>>> {
        watch::history(&self.shared, prefix, after, through, max_events).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.submit(Op::Compact { revision }).await.map(|_| ())
    }
}

/// Why opening the database failed.
enum OpenError {
    /// The file is locked by another handle.
    AlreadyOpen,
    Store(Error),
}

/// Memory redb may use to cache pages.
const REDB_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Opens the file, creates missing tables and loads the meta revisions. Blocking.
fn open_shared(dir: &Path, path: &Path) -> Result<Shared, OpenError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| OpenError::Store(Error::backend(format!("create {}", dir.display()), e)))?;
    // The watch caches above hold every object already; redb's own page
    // cache (1 GiB by default) would hold them again.
    let db = match Database::builder()
        .set_cache_size(REDB_CACHE_BYTES)
        .create(path)
    {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::AlreadyOpen),
        Err(e) => {
            return Err(OpenError::Store(Error::backend(
                format!("open {}", path.display()),
                e,
            )));
        }
    };
    let load = || -> Result<(Revision, Revision)> {
        let txn = db.begin_write().map_err(storage("begin write"))?;
        let revisions = {
            txn.open_table(KEYS).map_err(storage("create keys"))?;
            txn.open_table(LOG).map_err(storage("create log"))?;
            let meta = txn.open_table(META).map_err(storage("create meta"))?;
            let get = |name| -> Result<Revision> {
                Ok(meta
                    .get(name)
                    .map_err(storage("read meta"))?
                    .map_or(0, |g| g.value()))
            };
            (get(META_REVISION)?, get(META_COMPACTED)?)
        };
        txn.commit().map_err(storage("commit"))?;
        Ok(revisions)
    };
    let (revision, compacted) = load().map_err(OpenError::Store)?;
    Ok(Shared {
        db,
        revision: AtomicI64::new(revision),
        compacted: AtomicI64::new(compacted),
    })
}

/// Maps a redb error to a backend error saying what was being done.
fn storage<E>(what: &'static str) -> impl FnOnce(E) -> Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| Error::backend(what, e)
}

/// The error of operations on a store that has been shut down.
fn closed() -> Error {
    Error::Backend {
        message: "embedded store is closed".into(),
        source: None,
    }
}

/// The log table key of a revision (revisions are never negative).
fn log_key(revision: Revision) -> u64 {
    u64::try_from(revision).unwrap_or(0)
}

#[cfg(test)]
mod tests;
