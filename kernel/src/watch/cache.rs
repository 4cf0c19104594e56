//! The cache itself: state, the task that feeds it from the store, lists and
//! paging. Watchers live in `watcher.rs`.

use std::collections::{HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{FutureExt, StreamExt};
use imbl::OrdMap;
use serde_json::json;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::AbortHandle;
use tracing::{debug, warn};

use super::object::{CachedEvent, CachedObject, EventType, Filter};
use super::watcher::{Msg, WatchOptions, Watcher};
use super::{CacheConfig, Error, Result};
use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{self, EventKind, KeyValue, Revision, Store, WatchStream};

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Only this namespace (ignored for cluster-scoped types).
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector; the caller has already rejected unsupported fields.
    pub fields: FieldSelector,
    /// At most this many items; 0 = all.
    pub limit: usize,
    /// The token of the previous page.
    pub continue_token: Option<String>,
}

/// One page of a list.
#[derive(Debug)]
pub struct ListPage {
    /// The matching objects, in key order.
    pub items: Vec<Arc<CachedObject>>,
    /// The revision the page is consistent at (the list's resourceVersion).
    pub revision: Revision,
    /// The token for the next page, if more items match.
    pub continue_token: Option<String>,
    /// How many objects follow this page (only without selectors, as in
    /// Kubernetes' `remainingItemCount`).
    pub remaining: Option<i64>,
}

pub(crate) type Objects = OrdMap<String, Arc<CachedObject>>;

/// The cache's contents, changed only by its task.
pub(crate) struct State {
    pub objects: Objects,
    /// Recent events, in revision order.
    pub window: VecDeque<Arc<CachedEvent>>,
    /// Every event after this revision is in `window`.
    pub window_start: Revision,
    /// The revision the cache started at: it never saw earlier events.
    pub started_at: Revision,
    /// The revision the cache has applied.
    pub revision: Revision,
    /// Store events up to this revision are already reflected (by a re-list).
    skip_through: Revision,
}

/// A retained snapshot for continue tokens.
struct Snapshot {
    objects: Objects,
    last_used: Instant,
}

pub(crate) struct Shared {
    pub rt: Arc<ResourceType>,
    pub config: CacheConfig,
    pub state: RwLock<State>,
    pub tx: broadcast::Sender<Msg>,
    applied: watch::Sender<Revision>,
    progress: Notify,
    snapshots: Mutex<HashMap<Revision, Snapshot>>,
}

/// The cache of one resource type. Dropping it stops its task; open watchers
/// then end.
pub struct WatchCache {
    shared: Arc<Shared>,
    /// Read for history older than the window (see [`WatchCache::watch`]).
    store: Arc<dyn Store>,
    task: AbortHandle,
}

impl Drop for WatchCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for WatchCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WatchCache({:?})", self.shared.rt)
    }
}

impl WatchCache {
    /// Starts a cache with the default [`CacheConfig`]: lists the type's key
    /// prefix, then watches the store after the list's revision. Must be
    /// called within a tokio runtime.
    pub async fn start(store: Arc<dyn Store>, rt: Arc<ResourceType>) -> Result<Arc<Self>> {
        Self::start_with(store, rt, CacheConfig::default()).await
    }

    /// Starts a cache with the given configuration.
    pub async fn start_with(
        store: Arc<dyn Store>,
        rt: Arc<ResourceType>,
        config: CacheConfig,
    ) -> Result<Arc<Self>> {
        let prefix = rt.key_prefix();
        let listed = store.list(&prefix, None, 0).await?;
        let mut objects = Objects::new();
        for kv in &listed.kvs {
            if let Some(obj) = parse(&rt, kv) {
                objects.insert(kv.key.clone(), Arc::new(obj));
            }
        }
        let stream = store.watch(&prefix, listed.revision).await?;
        let shared = Arc::new(Shared {
            tx: broadcast::channel(config.broadcast_capacity.max(1)).0,
            applied: watch::channel(listed.revision).0,
            progress: Notify::new(),
            snapshots: Mutex::new(HashMap::new()),
            state: RwLock::new(State {
                objects,
                window: VecDeque::new(),
                window_start: listed.revision,
                started_at: listed.revision,
                revision: listed.revision,
                skip_through: listed.revision,
            }),
            rt,
            config,
        });
        let task = tokio::spawn(run(shared.clone(), store.clone(), stream)).abort_handle();
        Ok(Arc::new(Self {
            shared,
            store,
            task,
        }))
    }

    /// Events held by the live ring (bounded by its capacity).
    #[cfg(test)]
    pub(crate) fn queued_events(&self) -> usize {
        self.shared.tx.len()
    }

    /// The resource type served.
    pub fn resource_type(&self) -> &Arc<ResourceType> {
        &self.shared.rt
    }

    /// The cached object at a store key, as of the cache's revision (which
    /// may lag the store: callers that need the latest must check).
    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.shared.read().objects.get(key).cloned()
    }

    /// The revision the cache has applied.
    pub fn revision(&self) -> Revision {
        *self.shared.applied.borrow()
    }

    /// Resolves once the cache has applied revision `rev` or later. When the
    /// store watch brings nothing for a short while (the type is idle while
    /// others are written), the cache confirms with a store read that it is
    /// up to date, then counts as having reached the store's revision.
    pub async fn wait_for_revision(&self, rev: Revision, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut applied = self.shared.applied.subscribe();
        let grace = self.shared.config.progress_grace;
        let mut first = true;
        loop {
            if *applied.borrow_and_update() >= rev {
                return Ok(());
            }
            if !first {
                self.shared.progress.notify_one();
            }
            first = false;
            let until = (tokio::time::Instant::now() + grace).min(deadline);
            match tokio::time::timeout_at(until, applied.wait_for(|r| *r >= rev)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(_)) => return Err(Error::Closed),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(Error::Timeout(rev));
                }
                Err(_) => {}
            }
        }
    }

    /// Lists matching objects in key order at the cache's current revision,
    /// or, with a continue token, at the token's revision from the snapshot
    /// retained for it. Call [`WatchCache::wait_for_revision`] first for a
    /// consistent (most recent) read.
    pub fn list(&self, opts: ListOptions) -> Result<ListPage> {
        let shared = &self.shared;
        let prefix = shared.rt.key_prefix();
        let (objects, revision, start) = match &opts.continue_token {
            Some(token) => {
                let (rev, start) = decode_continue(token, &prefix)?;
                let mut snaps = shared.snapshots();
                let snap = snaps.get_mut(&rev).ok_or(Error::ContinueExpired)?;
                if snap.last_used.elapsed() > shared.config.continue_ttl {
                    snaps.remove(&rev);
                    return Err(Error::ContinueExpired);
                }
                snap.last_used = Instant::now();
                (snap.objects.clone(), rev, Some(start))
            }
            None => {
                let state = shared.read();
                (state.objects.clone(), state.revision, None)
            }
        };
        let namespace = opts.namespace.filter(|_| shared.rt.namespaced);
        let scope = match &namespace {
            Some(ns) => format!("{prefix}{ns}/"),
            None => prefix,
        };
        let lower = match start {
            Some(key) => Bound::Excluded(key),
            None => Bound::Included(scope.clone()),
        };
        let filter = Filter {
            namespace,
            labels: opts.labels,
            fields: opts.fields,
        };
        let mut iter = objects
            .range((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(&scope))
            .map(|(_, v)| v)
            .filter(|o| o.matches(&filter));
        let limit = if opts.limit == 0 {
            usize::MAX
        } else {
            opts.limit
        };
        let items: Vec<Arc<CachedObject>> = iter.by_ref().take(limit).cloned().collect();
        let more = opts.limit > 0 && iter.next().is_some();
        drop(iter);
        let (continue_token, remaining) = match (more, items.last()) {
            (true, Some(last)) => {
                let remaining = (filter.labels.is_empty() && filter.fields.is_empty()).then(|| {
                    objects
                        .range((Bound::Excluded(last.key.clone()), Bound::Unbounded))
                        .take_while(|(k, _)| k.starts_with(&scope))
                        .count() as i64
                });
                shared.retain_snapshot(revision, objects.clone());
                (Some(encode_continue(revision, &last.key)), remaining)
            }
            _ => (None, None),
        };
        Ok(ListPage {
            items,
            revision,
            continue_token,
            remaining,
        })
    }

    /// Opens a watch; see [`WatchOptions`] for where it starts. A revision
    /// from before the cache started (e.g. one a client saw before the
    /// kernel restarted) is replayed from the store's history when the store
    /// still has it and it holds at most a window of events, so the client
    /// resumes instead of re-listing.
    pub async fn watch(&self, opts: WatchOptions) -> Result<Watcher> {
        if let Some(rev) = opts.from_revision.filter(|r| *r > 0)
            && rev > self.revision()
        {
            let wait = self.shared.config.future_revision_wait;
            if self.wait_for_revision(rev, wait).await.is_err() {
                return Err(Error::TooLargeResourceVersion {
                    requested: rev,
                    current: self.revision(),
                });
            }
        }
        if let Some(rev) = opts.from_revision.filter(|r| *r > 0) {
            let (window_start, started_at) = {
                let state = self.shared.read();
                (state.window_start, state.started_at)
            };
            // Only events the cache never saw come from the store: events it
            // dropped from its window stay gone (410), as in Kubernetes.
            if rev < window_start && rev < started_at {
                let history = self.history(rev, window_start).await?;
                return Watcher::open(&self.shared, opts, Some((history, window_start)));
            }
        }
        Watcher::open(&self.shared, opts, None)
    }

    /// The type's changes in `(after, through]` from the store's history, as
    /// cached events; [`Error::TooOldResourceVersion`] when the store no
    /// longer has them or they are more than the window would hold.
    async fn history(&self, after: Revision, through: Revision) -> Result<Vec<Arc<CachedEvent>>> {
        let too_old = Error::TooOldResourceVersion {
            requested: after,
            oldest: through,
        };
        let config = &self.shared.config;
        if through.saturating_sub(after) > config.history_revisions {
            return Err(too_old);
        }
        let rt = &self.shared.rt;
        let events = match self
            .store
            .history(&rt.key_prefix(), after, through, config.window.max(1))
            .await
        {
            Ok(Some(events)) => events,
            Ok(None) | Err(store::Error::Compacted { .. }) => return Err(too_old),
            Err(err) => return Err(err.into()),
        };
        debug!(resource = %rt.plural, after, through, events = events.len(), "replaying watch from store history");
        Ok(events
            .iter()
            .filter_map(|ev| history_event(rt, ev))
            .map(Arc::new)
            .collect())
    }
}

/// A watch event for a change read from the store's history: the object
/// before the change (from `prev_kv`) gives the selector transitions.
fn history_event(rt: &ResourceType, ev: &store::Event) -> Option<CachedEvent> {
    let rev = ev.kv.mod_revision;
    match ev.kind {
        EventKind::Put => {
            let obj = parse(rt, &ev.kv)?;
            let prev = ev
                .prev_kv
                .as_ref()
                .and_then(|kv| parse(rt, kv))
                .map(Arc::new);
            let kind = if prev.is_some() {
                EventType::Modified
            } else {
                EventType::Added
            };
            Some(CachedEvent::new(kind, rev, Arc::new(obj), prev))
        }
        EventKind::Delete => {
            let last = ev.prev_kv.as_ref()?;
            let obj =
                CachedObject::from_stored(rt, &last.key, &last.value, rev, last.create_revision)
                    .ok()?;
            Some(CachedEvent::new(
                EventType::Deleted,
                rev,
                Arc::new(obj),
                None,
            ))
        }
    }
}

impl Shared {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn snapshots(&self) -> std::sync::MutexGuard<'_, HashMap<Revision, Snapshot>> {
        self.snapshots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `objects` for later pages at `revision`, dropping expired and
    /// excess snapshots.
    fn retain_snapshot(&self, revision: Revision, objects: Objects) {
        let ttl = self.config.continue_ttl;
        let mut snaps = self.snapshots();
        snaps.retain(|_, s| s.last_used.elapsed() <= ttl);
        snaps
            .entry(revision)
            .or_insert_with(|| Snapshot {
                objects,
                last_used: Instant::now(),
            })
            .last_used = Instant::now();
        while snaps.len() > self.config.max_snapshots.max(1) {
            let oldest = snaps
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(rev, _)| *rev);
            match oldest {
                Some(rev) => snaps.remove(&rev),
                None => break,
            };
        }
    }

    /// Applies one store event and fans it out.
    pub(crate) fn apply(&self, ev: store::Event) {
        let rev = ev.kv.mod_revision;
        if rev <= self.read().skip_through {
            return;
        }
        // Parse outside the lock: the JSON work is the expensive part.
        let parsed = match ev.kind {
            EventKind::Put => parse(&self.rt, &ev.kv).map(Arc::new),
            EventKind::Delete => None,
        };
        let mut state = self.write();
        let key = &ev.kv.key;
        let event = match ev.kind {
            EventKind::Put => parsed.map(|obj| {
                let prev = state.objects.insert(key.clone(), obj.clone());
                let kind = if prev.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                };
                CachedEvent::new(kind, rev, obj, prev)
            }),
            EventKind::Delete => {
                let last = state.objects.remove(key).or_else(|| {
                    ev.prev_kv
                        .as_ref()
                        .and_then(|kv| parse(&self.rt, kv))
                        .map(Arc::new)
                });
                last.map(|last| {
                    CachedEvent::new(
                        EventType::Deleted,
                        rev,
                        Arc::new(last.with_revision(rev)),
                        None,
                    )
                })
            }
        };
        state.revision = state.revision.max(rev);
        match event {
            Some(event) => self.publish(&mut state, Arc::new(event)),
            None => {
                let _ = self.tx.send(Msg::Progress(rev));
            }
        }
        drop(state);
        self.applied.send_replace(rev);
    }

    /// Adds an event to the window and sends it to watchers. Called with the
    /// write lock held so a watcher opening under the read lock sees each
    /// event exactly once: in its replay or live.
    fn publish(&self, state: &mut State, event: Arc<CachedEvent>) {
        state.window.push_back(event.clone());
        while state.window.len() > self.config.window.max(1) {
            if let Some(old) = state.window.pop_front() {
                state.window_start = old.revision;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(Msg::Event(event));
    }

    /// Replaces the contents with a fresh store list, emitting the
    /// differences as events at the list's revision.
    fn resync(&self, listed: store::ListResult) {
        let rev = listed.revision;
        let mut fresh = Objects::new();
        {
            let state = self.read();
            for kv in &listed.kvs {
                let obj = match state.objects.get(&kv.key) {
                    // Unchanged: keep sharing the parsed object.
                    Some(old) if old.revision == kv.mod_revision => Some(old.clone()),
                    _ => parse(&self.rt, kv).map(Arc::new),
                };
                if let Some(obj) = obj {
                    fresh.insert(kv.key.clone(), obj);
                }
            }
        }
        let mut state = self.write();
        let mut events = Vec::new();
        for (key, obj) in fresh.iter() {
            match state.objects.get(key) {
                None => events.push(CachedEvent::new(EventType::Added, rev, obj.clone(), None)),
                Some(old) if !Arc::ptr_eq(old, obj) => events.push(CachedEvent::new(
                    EventType::Modified,
                    rev,
                    obj.clone(),
                    Some(old.clone()),
                )),
                Some(_) => {}
            }
        }
        for (key, old) in state.objects.iter() {
            if !fresh.contains_key(key) {
                events.push(CachedEvent::new(
                    EventType::Deleted,
                    rev,
                    Arc::new(old.with_revision(rev)),
                    None,
                ));
            }
        }
        if !events.is_empty() {
            debug!(resource = %self.rt.plural, changes = events.len(), rev, "watch cache resynced");
        }
        state.objects = fresh;
        state.revision = state.revision.max(rev);
        state.skip_through = state.skip_through.max(rev);
        let no_events = events.is_empty();
        for event in events {
            self.publish(&mut state, Arc::new(event));
        }
        if no_events {
            let _ = self.tx.send(Msg::Progress(rev));
        }
        let applied = state.revision;
        drop(state);
        self.applied.send_replace(applied);
    }
}

fn parse(rt: &ResourceType, kv: &KeyValue) -> Option<CachedObject> {
    match CachedObject::from_stored(rt, &kv.key, &kv.value, kv.mod_revision, kv.create_revision) {
        Ok(obj) => Some(obj),
        Err(err) => {
            warn!(key = %kv.key, %err, "skipping stored object that is not valid JSON");
            None
        }
    }
}

/// The cache's task: applies store events; on a failed store watch re-lists
/// and re-watches; on request confirms progress with a store read.
async fn run(shared: Arc<Shared>, store: Arc<dyn Store>, mut stream: WatchStream) {
    let prefix = shared.rt.key_prefix();
    loop {
        tokio::select! {
            biased;
            item = stream.next() => match item {
                Some(Ok(ev)) => shared.apply(ev),
                Some(Err(err)) => {
                    warn!(resource = %shared.rt.plural, %err, "store watch failed; re-listing");
                    stream = relist_and_watch(&shared, store.as_ref(), &prefix).await;
                }
                None => {
                    warn!(resource = %shared.rt.plural, "store watch ended; re-listing");
                    stream = relist_and_watch(&shared, store.as_ref(), &prefix).await;
                }
            },
            () = shared.progress.notified() => {
                // Apply whatever the watch already holds before reading the store.
                while let Some(Some(item)) = stream.next().now_or_never() {
                    match item {
                        Ok(ev) => shared.apply(ev),
                        Err(err) => {
                            warn!(resource = %shared.rt.plural, %err, "store watch failed; re-listing");
                            stream = relist_and_watch(&shared, store.as_ref(), &prefix).await;
                            break;
                        }
                    }
                }
                match store.list(&prefix, None, 0).await {
                    Ok(listed) => shared.resync(listed),
                    Err(err) => debug!(resource = %shared.rt.plural, %err, "progress check failed"),
                }
            }
        }
    }
}

/// Re-lists, emits the differences and watches again, retrying with backoff
/// until it succeeds.
async fn relist_and_watch(shared: &Shared, store: &dyn Store, prefix: &str) -> WatchStream {
    let mut delay = shared.config.retry_backoff;
    loop {
        let attempt = async {
            let listed = store.list(prefix, None, 0).await?;
            let rev = listed.revision;
            shared.resync(listed);
            store.watch(prefix, rev).await
        };
        match attempt.await {
            Ok(stream) => return stream,
            Err(err) => {
                warn!(resource = %shared.rt.plural, %err, ?delay, "re-list failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// `base64url({"v":"meta.k8s.io/v1","rv":R,"start":"<last key>"})`, shaped
/// like Kubernetes' tokens.
fn encode_continue(revision: Revision, last_key: &str) -> String {
    let body = json!({ "v": "meta.k8s.io/v1", "rv": revision, "start": last_key });
    URL_SAFE_NO_PAD.encode(body.to_string())
}

fn decode_continue(token: &str, prefix: &str) -> Result<(Revision, String)> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| Error::InvalidContinue(e.to_string()))?;
    let body: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidContinue(e.to_string()))?;
    if body.get("v").and_then(|v| v.as_str()) != Some("meta.k8s.io/v1") {
        return Err(Error::InvalidContinue(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
        ));
    }
    let rev = body
        .get("rv")
        .and_then(|v| v.as_i64())
        .filter(|r| *r > 0)
        .ok_or_else(|| Error::InvalidContinue("incorrect encoded start resourceVersion".into()))?;
    let start = body
        .get("start")
        .and_then(|v| v.as_str())
        .filter(|s| s.starts_with(prefix))
        .ok_or_else(|| Error::InvalidContinue("incorrect encoded start key".into()))?;
    Ok((rev, start.to_owned()))
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
