//! The object store: one trait with etcd's data model and two backends.
//!
//! Every write gets a new, globally monotonic revision. Each key remembers the
//! revision that created it and the one that last modified it; updates and
//! deletes can be made conditional on the latter (compare-and-swap). Watches
//! replay every change after a given revision, until that revision has been
//! compacted away. Keys follow `/registry/<group>/<resource>/<namespace>/<name>`
//! and the mod revision of a key is the resourceVersion of its object.

pub mod embedded;
pub mod etcd;

#[cfg(test)]
pub(crate) mod conformance;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

/// A store revision. Revisions start at 1 and only grow; 0 means "none".
pub type Revision = i64;

/// One stored key with its value and revisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key.
    pub key: String,
    /// The stored bytes (an object's JSON). Empty in the `kv` of a delete event.
    pub value: Bytes,
    /// Revision of the write that created the key.
    pub create_revision: Revision,
    /// Revision of the last write to the key (for a delete event: the delete).
    pub mod_revision: Revision,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or updated.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change, as delivered by [`Store::watch`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after the change. For a delete, `value` is empty and
    /// `mod_revision` is the revision of the delete.
    pub kv: KeyValue,
    /// The key before the change: `None` for a create, always set for an
    /// update or a delete (a delete's last value is here).
    pub prev_kv: Option<KeyValue>,
}

/// One page of a range read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListResult {
    /// The keys found, in key order.
    pub kvs: Vec<KeyValue>,
    /// True when keys remain after the last one returned.
    pub more: bool,
    /// The store's revision at the time of the read.
    pub revision: Revision,
}

/// Errors of the store. Each backend maps its own failures onto these.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A create found the key already there.
    #[error("key {key} already exists")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// The key does not exist.
    #[error("key {key} not found")]
    NotFound {
        /// The key.
        key: String,
    },
    /// A conditional write found another mod revision than expected.
    #[error("key {key} was modified: expected revision {expected}, found {actual}")]
    Conflict {
        /// The key.
        key: String,
        /// The mod revision the caller expected.
        expected: Revision,
        /// The mod revision the key has.
        actual: Revision,
    },
    /// A watch asked for changes from a revision that has been compacted.
    #[error("revision {requested} has been compacted; the oldest available is {compacted}")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The compaction revision: watches must start after it.
        compacted: Revision,
    },
    /// A watcher fell too far behind the writers and was dropped.
    #[error("watch fell behind and was closed")]
    WatchLagged,
    /// The backend failed (I/O, network, corruption, shut down).
    #[error("store backend failed: {message}")]
    Backend {
        /// What failed, lower-case.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl Error {
    /// A backend error with a message and a cause.
    pub fn backend(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stream of changes, in revision order. It ends with an error item when the
/// watch can no longer continue (lagged, compacted, backend failure).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event>> + Send>>;

/// The store interface both backends implement. All methods are safe to call
/// concurrently; writes are durable when they return.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reads one key at the current revision.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Reads keys starting with `prefix` in key order, at the current revision.
    /// `start_after` skips keys up to and including it (for paging); `limit` 0
    /// means no limit.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListResult>;

    /// Creates a key; fails with [`Error::AlreadyExists`] if it exists.
    /// Returns the new key with its revisions.
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue>;

    /// Replaces the value of an existing key if its mod revision is
    /// `expected_mod_revision` ([`Error::Conflict`] otherwise,
    /// [`Error::NotFound`] if the key is gone).
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected_mod_revision: Revision,
    ) -> Result<KeyValue>;

    /// Deletes a key, if given only when its mod revision matches. Returns the
    /// deleted key as it was, with `mod_revision` set to the delete's revision.
    async fn delete(&self, key: &str, expected_mod_revision: Option<Revision>) -> Result<KeyValue>;

    /// Streams every change to keys under `prefix` with a revision greater than
    /// `after_revision`, then live changes. Fails with [`Error::Compacted`]
    /// when `after_revision` is older than the compaction revision.
    async fn watch(&self, prefix: &str, after_revision: Revision) -> Result<WatchStream>;

    /// Reads from history every change under `prefix` with a revision in
    /// `(after, through]`, in revision order, reading at most `max_events`
    /// matching changes (`Ok(None)` when there are more). Lets a watch cache
    /// that started after a restart resume watches from before it. Fails
    /// with [`Error::Compacted`] when `after` is older than the compaction
    /// revision; backends that cannot read a bounded range of history answer
    /// `Ok(None)` (the default).
    async fn history(
        &self,
        prefix: &str,
        after: Revision,
        through: Revision,
        max_events: usize,
    ) -> Result<Option<Vec<Event>>> {
        let _ = (prefix, after, through, max_events);
        Ok(None)
    }

    /// The revision of the last write (0 for an empty store).
    async fn current_revision(&self) -> Result<Revision>;

    /// Discards history up to and including `revision`: watches can then only
    /// start at or after it.
    async fn compact(&self, revision: Revision) -> Result<()>;
}

/// Which store backend to open, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded store in this directory.
    Embedded {
        /// The data directory (created if missing).
        dir: PathBuf,
    },
    /// An etcd cluster.
    Etcd {
        /// Client URLs, e.g. `http://127.0.0.1:2379`.
        endpoints: Vec<String>,
    },
}

/// Opens the configured backend.
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Store>> {
    Ok(match config {
        StoreConfig::Embedded { dir } => Arc::new(embedded::EmbeddedStore::open(dir).await?),
        StoreConfig::Etcd { endpoints } => Arc::new(etcd::EtcdStore::connect(endpoints).await?),
    })
}
