//! The watch cache: one per resource type, fed by one store watch, serving
//! lists and watches so the store sees one reader per type, not one per
//! client.
//!
//! - [`WatchCache::start`] lists the type's key prefix at revision R, then
//!   watches the store after R, applying every change to a persistent map
//!   (`imbl::OrdMap`, O(1) snapshots) and to a bounded window of recent
//!   events.
//! - [`WatchCache::wait_for_revision`] gives consistent reads: the service
//!   layer asks for the store's current revision and waits until the cache has
//!   caught up (confirming with a store read when the type has been idle).
//! - [`WatchCache::list`] serves pages at one revision; continue tokens point
//!   at a retained snapshot so later pages stay at the same revision.
//! - [`WatchCache::watch`] replays from the window, then streams live events
//!   through a bounded broadcast ring; a watcher that falls behind the ring is
//!   closed with [`Error::WatcherTooSlow`], never buffered without bound.
//! - Each [`CachedEvent`] is encoded once, lazily, and shared by all watchers.
//!
//! When the store watch fails (lagged, compacted, backend error), the cache
//! re-lists, emits the differences between its state and the store's as
//! ADDED/MODIFIED/DELETED events at the list revision, and watches again.
//! Watchers stay open across such a restart.

mod cache;
#[cfg(test)]
mod fake_store;
mod object;
mod watcher;

use std::time::Duration;

pub use cache::{ListOptions, ListPage, WatchCache};
pub use object::{CachedEvent, CachedObject, EventType};
pub use watcher::{WatchOptions, Watcher};

use crate::error::ApiError;
use crate::store::{self, Revision};

/// Kubernetes' message for an expired continue token (410 Gone).
pub const CONTINUE_EXPIRED_MESSAGE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.";

/// Errors of the watch cache.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A watch asked to resume before the oldest event the window holds (410).
    #[error("too old resource version: {requested} ({oldest})")]
    TooOldResourceVersion {
        /// The resourceVersion asked for.
        requested: Revision,
        /// The oldest resourceVersion a watch can resume from.
        oldest: Revision,
    },
    /// A watch asked for a revision the cache has not reached in time (504).
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLargeResourceVersion {
        /// The resourceVersion asked for.
        requested: Revision,
        /// The cache's revision.
        current: Revision,
    },
    /// The continue token's snapshot is gone (410).
    #[error("{}", CONTINUE_EXPIRED_MESSAGE)]
    ContinueExpired,
    /// The continue token cannot be decoded (400).
    #[error("continue key is not valid: {0}")]
    InvalidContinue(String),
    /// [`WatchCache::wait_for_revision`] gave up (504).
    #[error("timed out waiting for the watch cache to reach revision {0}")]
    Timeout(Revision),
    /// The watcher fell behind the live events and was closed; the client
    /// must re-watch (or re-list).
    #[error("watcher fell too far behind and was closed")]
    WatcherTooSlow,
    /// The cache has stopped.
    #[error("the watch cache has stopped")]
    Closed,
    /// The store failed while the cache was starting.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Result of watch cache operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::TooOldResourceVersion { .. } | Error::ContinueExpired => ApiError::Gone(message),
            Error::InvalidContinue(_) => ApiError::BadRequest(message),
            Error::TooLargeResourceVersion { .. } | Error::Timeout(_) => ApiError::Timeout(message),
            Error::WatcherTooSlow | Error::Closed => ApiError::ServiceUnavailable(message),
            Error::Store(_) => ApiError::Internal(message),
        }
    }
}

/// Tuning of a [`WatchCache`]. The defaults suit a kernel serving a few
/// thousand watchers.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// How many recent events are kept for resuming watches.
    pub window: usize,
    /// A watch from before the window is replayed from the store's history
    /// when it is at most this many revisions older than the window.
    pub history_revisions: Revision,
    /// Capacity of the live event ring shared by all watchers; a watcher more
    /// than this many events behind is closed.
    pub broadcast_capacity: usize,
    /// How often a watcher that asked for bookmarks gets one.
    pub bookmark_interval: Duration,
    /// How long the snapshot behind a continue token is kept after its last use.
    pub continue_ttl: Duration,
    /// At most this many paging snapshots are kept (oldest dropped first).
    pub max_snapshots: usize,
    /// How long [`WatchCache::wait_for_revision`] waits for the store watch
    /// before confirming progress with a store read.
    pub progress_grace: Duration,
    /// How long a watch from a future revision waits for the cache.
    pub future_revision_wait: Duration,
    /// First delay before retrying a failed re-list / re-watch (doubles, capped
    /// at 5 s).
    pub retry_backoff: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            window: 10_000,
            history_revisions: 100_000,
            broadcast_capacity: 4_096,
            bookmark_interval: Duration::from_secs(5),
            continue_ttl: Duration::from_secs(300),
            max_snapshots: 256,
            progress_grace: Duration::from_millis(20),
            future_revision_wait: Duration::from_secs(3),
            retry_backoff: Duration::from_millis(100),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_kubernetes_statuses() {
        let gone = ApiError::from(Error::TooOldResourceVersion {
            requested: 5,
            oldest: 10,
        });
        assert_eq!(gone.code_and_reason().0, 410);
        assert_eq!(gone.to_string(), "too old resource version: 5 (10)");
        let expired = ApiError::from(Error::ContinueExpired);
        assert_eq!(expired.code_and_reason().0, 410);
        assert!(
            expired
                .to_string()
                .starts_with("The provided continue parameter")
        );
        let bad = ApiError::from(Error::InvalidContinue("bad base64".into()));
        assert_eq!(bad.code_and_reason().0, 400);
    }
}
