//! One client's watch: a replay (from the window or of the current objects)
//! followed by live events from the cache's broadcast ring, filtered by
//! namespace and selectors, with optional bookmarks.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Interval, MissedTickBehavior};

use super::cache::Shared;
use super::object::{CachedEvent, CachedObject, EventType, Filter};
use super::{Error, Result};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Revision;

/// What the cache's broadcast ring carries.
#[derive(Clone, Debug)]
pub(crate) enum Msg {
    /// A change, shared by all watchers.
    Event(Arc<CachedEvent>),
    /// The cache reached a revision without a change of this type; lets
    /// bookmarks advance.
    Progress(Revision),
}

/// Where and what to watch.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// `None`: only changes after now. `Some(0)`: ADDED for every current
    /// object, then changes (Kubernetes' "start at most recent"). `Some(r)`:
    /// every change after `r`, replayed from the window ([`Error::TooOldResourceVersion`]
    /// if `r` is older than the window; a future `r` is waited for).
    pub from_revision: Option<Revision>,
    /// Only this namespace (ignored for cluster-scoped types).
    pub namespace: Option<String>,
    /// Label selector: objects that start matching arrive as ADDED, objects
    /// that stop matching as DELETED.
    pub labels: LabelSelector,
    /// Field selector, with the same transitions.
    pub fields: FieldSelector,
    /// Send BOOKMARK events every `CacheConfig::bookmark_interval`.
    pub bookmarks: bool,
}

/// An open watch. Read it with [`Watcher::recv`] or turn it into a stream.
/// It ends with `Err(Error::WatcherTooSlow)` then `None` when the consumer
/// fell behind the cache's ring, or with `None` when the cache stopped.
pub struct Watcher {
    rx: broadcast::Receiver<Msg>,
    filter: Filter,
    /// Current objects still to send as ADDED (for `from_revision = 0`).
    initial: VecDeque<Arc<CachedObject>>,
    initial_revision: Revision,
    /// Window events still to replay.
    replay: VecDeque<Arc<CachedEvent>>,
    /// The revision everything this watcher has been given is complete up to.
    last_revision: Revision,
    bookmarks: Option<Interval>,
    kind: String,
    api_version: String,
    done: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Watcher({} at {})", self.kind, self.last_revision)
    }
}

impl Watcher {
    /// Opens a watcher. Subscribing and reading the replay happen under the
    /// state's read lock, so no event is missed or seen twice.
    /// `history` holds the changes after `from_revision` through a revision
    /// read from the store, when `from_revision` is older than the window.
    pub(crate) fn open(
        shared: &Shared,
        opts: WatchOptions,
        history: Option<(Vec<Arc<CachedEvent>>, Revision)>,
    ) -> Result<Self> {
        let filter = Filter {
            namespace: opts.namespace.filter(|_| shared.rt.namespaced),
            labels: opts.labels,
            fields: opts.fields,
        };
        let state = shared.read();
        let rx = shared.tx.subscribe();
        let mut initial = VecDeque::new();
        let mut replay = VecDeque::new();
        let now = state.revision;
        match (opts.from_revision, history) {
            (None, _) => {}
            (Some(0), _) => {
                let objects = state.objects.clone();
                drop(state);
                initial = objects
                    .values()
                    .filter(|o| o.matches(&filter))
                    .cloned()
                    .collect();
            }
            (Some(rev), Some((events, through))) => {
                // The window must still hold everything after the history.
                if through < state.window_start {
                    return Err(Error::TooOldResourceVersion {
                        requested: rev,
                        oldest: state.window_start,
                    });
                }
                let from = state.window.partition_point(|e| e.revision <= through);
                replay = events.into();
                replay.extend(state.window.range(from..).cloned());
            }
            (Some(rev), None) => {
                if rev < state.window_start {
                    return Err(Error::TooOldResourceVersion {
                        requested: rev,
                        oldest: state.window_start,
                    });
                }
                let from = state.window.partition_point(|e| e.revision <= rev);
                replay = state.window.range(from..).cloned().collect();
            }
        }
        let bookmarks = opts.bookmarks.then(|| {
            let period = shared.config.bookmark_interval;
            let mut interval =
                tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        });
        Ok(Self {
            rx,
            filter,
            initial,
            initial_revision: now,
            replay,
            last_revision: now,
            bookmarks,
            kind: shared.rt.kind.clone(),
            api_version: shared.rt.api_version(),
            done: false,
        })
    }

    /// The next event for this watcher: `Some(Ok(event))`, then at the end
    /// possibly one `Some(Err(..))`, then `None` forever.
    pub async fn recv(&mut self) -> Option<Result<Arc<CachedEvent>>> {
        if self.done {
            return None;
        }
        if let Some(obj) = self.initial.pop_front() {
            return Some(Ok(Arc::new(CachedEvent::new(
                EventType::Added,
                self.initial_revision,
                obj,
                None,
            ))));
        }
        while let Some(ev) = self.replay.pop_front() {
            if let Some(out) = ev.for_filter(&self.filter) {
                return Some(Ok(out));
            }
        }
        loop {
            let Self { rx, bookmarks, .. } = self;
            let msg = tokio::select! {
                // Events first: a bookmark must not claim a revision whose
                // events are still queued.
                biased;
                msg = rx.recv() => msg,
                _ = tick(bookmarks) => {
                    return Some(Ok(Arc::new(CachedEvent::new(
                        EventType::Bookmark,
                        self.last_revision,
                        Arc::new(CachedObject::bookmark(&self.kind, &self.api_version, self.last_revision)),
                        None,
                    ))));
                }
            };
            match msg {
                Ok(Msg::Event(ev)) => {
                    self.last_revision = self.last_revision.max(ev.revision);
                    if let Some(out) = ev.for_filter(&self.filter) {
                        return Some(Ok(out));
                    }
                }
                Ok(Msg::Progress(rev)) => self.last_revision = self.last_revision.max(rev),
                Err(RecvError::Lagged(_)) => {
                    self.done = true;
                    return Some(Err(Error::WatcherTooSlow));
                }
                Err(RecvError::Closed) => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

    /// The watcher as a stream of the same items as [`Watcher::recv`].
    pub fn into_stream(self) -> impl Stream<Item = Result<Arc<CachedEvent>>> + Send + 'static {
        futures::stream::unfold(self, |mut w| async move {
            let item = w.recv().await?;
            Some((item, w))
        })
    }
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "watcher_tests.rs"]
mod tests;
