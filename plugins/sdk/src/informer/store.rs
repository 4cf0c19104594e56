//! The informer cache: `Arc<K>` by namespace/name, with custom indexes. One
//! [`Writer`] applies watch events; any number of [`Store`] readers share it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::watch;

use super::WatcherEvent;
use crate::client::{ObjectKey, Resource};

/// Computes the index values of an object, for example its node name.
pub type IndexFn<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// What changed in the cache after one watcher event.
#[derive(Debug)]
pub enum Notification<K> {
    /// A new object.
    Added(Arc<K>),
    /// An object changed (or was seen again by a relist with a new revision).
    Updated {
        /// The cached state before.
        old: Arc<K>,
        /// The state now.
        new: Arc<K>,
    },
    /// An object is gone; its last known state.
    Deleted(Arc<K>),
}

impl<K> Clone for Notification<K> {
    fn clone(&self) -> Self {
        match self {
            Notification::Added(k) => Notification::Added(k.clone()),
            Notification::Updated { old, new } => Notification::Updated {
                old: old.clone(),
                new: new.clone(),
            },
            Notification::Deleted(k) => Notification::Deleted(k.clone()),
        }
    }
}

impl<K> Notification<K> {
    /// The object's current (or, if deleted, last) state.
    pub fn object(&self) -> &Arc<K> {
        match self {
            Notification::Added(k) | Notification::Deleted(k) => k,
            Notification::Updated { new, .. } => new,
        }
    }
}

struct Inner<K> {
    objects: HashMap<ObjectKey, Arc<K>>,
    indexers: HashMap<String, IndexFn<K>>,
    // index name → index value → keys
    indices: HashMap<String, HashMap<String, HashSet<ObjectKey>>>,
}

impl<K> Inner<K> {
    fn unindex(&mut self, key: &ObjectKey, obj: &K) {
        for (name, f) in &self.indexers {
            let Some(index) = self.indices.get_mut(name) else {
                continue;
            };
            for value in f(obj) {
                if let Some(keys) = index.get_mut(&value) {
                    keys.remove(key);
                    if keys.is_empty() {
                        index.remove(&value);
                    }
                }
            }
        }
    }

    fn index(&mut self, key: &ObjectKey, obj: &K) {
        for (name, f) in &self.indexers {
            let index = self.indices.entry(name.clone()).or_default();
            for value in f(obj) {
                index.entry(value).or_default().insert(key.clone());
            }
        }
    }

    fn insert(&mut self, key: ObjectKey, obj: Arc<K>) -> Option<Arc<K>> {
        let old = self.objects.insert(key.clone(), obj.clone());
        if let Some(old) = &old {
            self.unindex(&key, old);
        }
        self.index(&key, &obj);
        old
    }

    fn remove(&mut self, key: &ObjectKey) -> Option<Arc<K>> {
        let old = self.objects.remove(key)?;
        self.unindex(key, &old);
        Some(old)
    }
}

/// A read handle on an informer's cache. Clone it freely.
pub struct Store<K> {
    inner: Arc<RwLock<Inner<K>>>,
    ready: watch::Receiver<bool>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            ready: self.ready.clone(),
        }
    }
}

impl<K> Store<K> {
    fn read(&self) -> RwLockReadGuard<'_, Inner<K>> {
        // A panic while holding the lock cannot leave the maps half-updated in
        // a way readers care about, so a poisoned lock is still used.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached object with this key.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.read().objects.get(key).cloned()
    }

    /// Every cached object, in no particular order.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().objects.values().cloned().collect()
    }

    /// Every cached key.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.read().objects.keys().cloned().collect()
    }

    /// The objects whose index `name` contains `value`; empty for an unknown index.
    pub fn by_index(&self, name: &str, value: &str) -> Vec<Arc<K>> {
        let inner = self.read();
        let Some(keys) = inner.indices.get(name).and_then(|i| i.get(value)) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| inner.objects.get(k).cloned())
            .collect()
    }

    /// Number of cached objects.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the first list has been applied.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first list has been applied (the cache is "synced").
    /// Returns at once if the writer is gone.
    pub async fn wait_until_ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|r| *r).await;
    }
}

/// The single writer of a cache.
pub struct Writer<K> {
    store: Store<K>,
    ready: watch::Sender<bool>,
}

impl<K: Resource> Default for Writer<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Resource> Writer<K> {
    /// An empty cache.
    pub fn new() -> Self {
        let (ready, ready_rx) = watch::channel(false);
        Self {
            store: Store {
                inner: Arc::new(RwLock::new(Inner {
                    objects: HashMap::new(),
                    indexers: HashMap::new(),
                    indices: HashMap::new(),
                })),
                ready: ready_rx,
            },
            ready,
        }
    }

    /// A reader of this cache.
    pub fn reader(&self) -> Store<K> {
        self.store.clone()
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner<K>> {
        self.store.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an index; objects already cached are indexed at once.
    pub fn add_index(
        &mut self,
        name: impl Into<String>,
        f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) {
        let name = name.into();
        let mut inner = self.write();
        inner.indexers.insert(name.clone(), Arc::new(f));
        inner.indices.insert(name, HashMap::new());
        let objects: Vec<_> = inner
            .objects
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, obj) in objects {
            inner.index(&key, &obj);
        }
    }

    /// Applies one watcher event and says what changed.
    pub fn apply(&mut self, event: &WatcherEvent<K>) -> Vec<Notification<K>> {
        let mut changes = Vec::new();
        match event {
            WatcherEvent::Applied(obj) => {
                let new = Arc::new(obj.clone());
                let key = ObjectKey::of(obj);
                changes.push(match self.write().insert(key, new.clone()) {
                    Some(old) => Notification::Updated { old, new },
                    None => Notification::Added(new),
                });
            }
            WatcherEvent::Deleted(obj) => {
                let key = ObjectKey::of(obj);
                let last = self.write().remove(&key);
                changes.push(Notification::Deleted(
                    last.unwrap_or_else(|| Arc::new(obj.clone())),
                ));
            }
            WatcherEvent::Restarted(objs) => {
                let mut inner = self.write();
                let mut seen = HashSet::new();
                for obj in objs {
                    let key = ObjectKey::of(obj);
                    seen.insert(key.clone());
                    let unchanged = inner.objects.get(&key).is_some_and(|old| {
                        old.meta().resource_version.is_some()
                            && old.meta().resource_version == obj.meta().resource_version
                    });
                    if unchanged {
                        continue;
                    }
                    let new = Arc::new(obj.clone());
                    changes.push(match inner.insert(key, new.clone()) {
                        Some(old) => Notification::Updated { old, new },
                        None => Notification::Added(new),
                    });
                }
                let gone: Vec<ObjectKey> = inner
                    .objects
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                for key in gone {
                    if let Some(old) = inner.remove(&key) {
                        changes.push(Notification::Deleted(old));
                    }
                }
                drop(inner);
                self.ready.send_replace(true);
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod(name: &str, node: &str, rv: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.metadata.resource_version = Some(rv.into());
        p.spec = Some(k8s_openapi::api::core::v1::PodSpec {
            node_name: Some(node.into()),
            ..Default::default()
        });
        p
    }

    fn node_of(p: &Pod) -> Vec<String> {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .into_iter()
            .collect()
    }

    #[tokio::test]
    async fn applies_events_and_maintains_indexes() {
        let mut writer = Writer::new();
        writer.add_index("node", node_of);
        let store = writer.reader();
        assert!(!store.is_ready());

        let changes = writer.apply(&WatcherEvent::Restarted(vec![
            pod("a", "n1", "1"),
            pod("b", "n1", "2"),
        ]));
        assert_eq!(changes.len(), 2);
        assert!(store.is_ready());
        store.wait_until_ready().await;
        assert_eq!(store.by_index("node", "n1").len(), 2);

        // Moving a pod to another node moves it between index values.
        let changes = writer.apply(&WatcherEvent::Applied(pod("a", "n2", "3")));
        assert!(matches!(&changes[..], [Notification::Updated { old, new }]
            if old.metadata.resource_version.as_deref() == Some("1")
            && new.metadata.resource_version.as_deref() == Some("3")));
        assert_eq!(store.by_index("node", "n1").len(), 1);
        assert_eq!(store.by_index("node", "n2").len(), 1);

        writer.apply(&WatcherEvent::Deleted(pod("b", "n1", "4")));
        assert!(store.by_index("node", "n1").is_empty());
        assert_eq!(store.len(), 1);
        assert!(store.get(&ObjectKey::new(Some("default"), "a")).is_some());
        assert!(store.by_index("nope", "n2").is_empty());
    }

    #[test]
    fn relist_reports_only_differences() {
        let mut writer = Writer::new();
        let store = writer.reader();
        writer.apply(&WatcherEvent::Restarted(vec![
            pod("a", "n", "1"),
            pod("b", "n", "2"),
        ]));
        // After a relist: a unchanged, b changed, c new, and d never seen; b2 gone.
        let changes = writer.apply(&WatcherEvent::Restarted(vec![
            pod("a", "n", "1"),
            pod("c", "n", "5"),
        ]));
        let mut kinds: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Notification::Added(p) => {
                    format!("added {}", p.metadata.name.clone().unwrap_or_default())
                }
                Notification::Updated { new, .. } => {
                    format!("updated {}", new.metadata.name.clone().unwrap_or_default())
                }
                Notification::Deleted(p) => {
                    format!("deleted {}", p.metadata.name.clone().unwrap_or_default())
                }
            })
            .collect();
        kinds.sort();
        assert_eq!(kinds, vec!["added c", "deleted b"]);
        let mut names: Vec<_> = store.keys().into_iter().map(|k| k.name).collect();
        names.sort();
        assert_eq!(names, vec!["a", "c"]);
    }

    #[test]
    fn index_added_late_covers_cached_objects() {
        let mut writer = Writer::new();
        writer.apply(&WatcherEvent::Applied(pod("a", "n9", "1")));
        writer.add_index("node", node_of);
        assert_eq!(writer.reader().by_index("node", "n9").len(), 1);
    }
}
