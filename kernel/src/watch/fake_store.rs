//! An in-memory [`Store`] for the watch cache's tests: a BTreeMap, a revision
//! counter, a history for replay and a broadcast for live events. It can
//! break every open watch on demand to exercise the cache's restart path.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::error::FieldError;
use crate::registry::{Column, ResourceType, Strategy};
use crate::store::{
    Error, Event, EventKind, KeyValue, ListResult, Result, Revision, Store, WatchStream,
};

#[derive(Clone)]
enum Msg {
    Event(Event),
    Fail,
}

#[derive(Default)]
struct Inner {
    data: BTreeMap<String, KeyValue>,
    rev: Revision,
    history: Vec<Event>,
    compacted: Revision,
}

/// The fake store.
pub(crate) struct FakeStore {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Msg>,
    /// How many times `watch` was called.
    pub watch_calls: AtomicUsize,
    /// How many times `list` was called.
    pub list_calls: AtomicUsize,
}

impl FakeStore {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            tx: broadcast::channel(1 << 16).0,
            watch_calls: AtomicUsize::new(0),
            list_calls: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends every open watch with [`Error::WatchLagged`].
    pub(crate) fn fail_watches(&self) {
        let _ = self.tx.send(Msg::Fail);
    }

    /// Creates or replaces a key without conditions.
    pub(crate) fn put(&self, key: &str, value: &Value) -> Revision {
        let mut inner = self.lock();
        self.put_locked(&mut inner, key, Bytes::from(value.to_string()))
    }

    /// Writes a key that is not broadcast to watchers (as if the event were
    /// lost), so only a re-list can see it.
    pub(crate) fn put_silently(&self, key: &str, value: &Value) -> Revision {
        let mut inner = self.lock();
        inner.rev += 1;
        let rev = inner.rev;
        let create = inner.data.get(key).map_or(rev, |kv| kv.create_revision);
        let kv = KeyValue {
            key: key.into(),
            value: Bytes::from(value.to_string()),
            create_revision: create,
            mod_revision: rev,
        };
        inner.data.insert(key.into(), kv);
        rev
    }

    /// Deletes a key without telling watchers; returns the delete's revision.
    pub(crate) fn remove_silently(&self, key: &str) -> Option<Revision> {
        let mut inner = self.lock();
        inner.data.remove(key)?;
        inner.rev += 1;
        Some(inner.rev)
    }

    /// Deletes a key without conditions; returns the delete's revision.
    pub(crate) fn remove(&self, key: &str) -> Option<Revision> {
        let mut inner = self.lock();
        let prev = inner.data.remove(key)?;
        inner.rev += 1;
        let rev = inner.rev;
        let ev = Event {
            kind: EventKind::Delete,
            kv: KeyValue {
                key: key.into(),
                value: Bytes::new(),
                create_revision: prev.create_revision,
                mod_revision: rev,
            },
            prev_kv: Some(prev),
        };
        inner.history.push(ev.clone());
        let _ = self.tx.send(Msg::Event(ev));
        Some(rev)
    }

    fn put_locked(&self, inner: &mut Inner, key: &str, value: Bytes) -> Revision {
        inner.rev += 1;
        let rev = inner.rev;
        let prev = inner.data.get(key).cloned();
        let kv = KeyValue {
            key: key.into(),
            value,
            create_revision: prev.as_ref().map_or(rev, |p| p.create_revision),
            mod_revision: rev,
        };
        inner.data.insert(key.into(), kv.clone());
        let ev = Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev,
        };
        inner.history.push(ev.clone());
        let _ = self.tx.send(Msg::Event(ev));
        rev
    }
}

#[async_trait]
impl Store for FakeStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.lock().data.get(key).cloned())
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListResult> {
        self.list_calls.fetch_add(1, Ordering::SeqCst);
        let inner = self.lock();
        let mut kvs: Vec<KeyValue> = inner
            .data
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| start_after.is_none_or(|s| k.as_str() > s))
            .map(|(_, v)| v.clone())
            .collect();
        let more = limit > 0 && kvs.len() > limit;
        if limit > 0 {
            kvs.truncate(limit);
        }
        Ok(ListResult {
            kvs,
            more,
            revision: inner.rev,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue> {
        let mut inner = self.lock();
        if inner.data.contains_key(key) {
            return Err(Error::AlreadyExists { key: key.into() });
        }
        self.put_locked(&mut inner, key, value);
        inner
            .data
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound { key: key.into() })
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<KeyValue> {
        let mut inner = self.lock();
        let actual = inner
            .data
            .get(key)
            .ok_or_else(|| Error::NotFound { key: key.into() })?
            .mod_revision;
        if actual != expected {
            return Err(Error::Conflict {
                key: key.into(),
                expected,
                actual,
            });
        }
        self.put_locked(&mut inner, key, value);
        inner
            .data
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound { key: key.into() })
    }

    async fn delete(&self, key: &str, _expected: Option<Revision>) -> Result<KeyValue> {
        let prev = self
            .get(key)
            .await?
            .ok_or_else(|| Error::NotFound { key: key.into() })?;
        let rev = self
            .remove(key)
            .ok_or_else(|| Error::NotFound { key: key.into() })?;
        Ok(KeyValue {
            mod_revision: rev,
            ..prev
        })
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.watch_calls.fetch_add(1, Ordering::SeqCst);
        let inner = self.lock();
        if after < inner.compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted: inner.compacted,
            });
        }
        let replay: Vec<Result<Event>> = inner
            .history
            .iter()
            .filter(|e| e.kv.mod_revision > after && e.kv.key.starts_with(prefix))
            .cloned()
            .map(Ok)
            .collect();
        let rx = self.tx.subscribe();
        drop(inner);
        let prefix = prefix.to_owned();
        let live = futures::stream::unfold(Some(rx), move |rx| {
            let prefix = prefix.clone();
            async move {
                let mut rx = rx?;
                loop {
                    match rx.recv().await {
                        Ok(Msg::Event(e)) if e.kv.key.starts_with(&prefix) => {
                            return Some((Ok(e), Some(rx)));
                        }
                        Ok(Msg::Event(_)) => continue,
                        Ok(Msg::Fail) | Err(broadcast::error::RecvError::Lagged(_)) => {
                            return Some((Err(Error::WatchLagged), None));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Ok(futures::stream::iter(replay).chain(live).boxed())
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.lock().rev)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut inner = self.lock();
        inner.compacted = revision;
        inner.history.retain(|e| e.kv.mod_revision > revision);
        Ok(())
    }
}

struct PodStrategy;

impl Strategy for PodStrategy {
    fn check_schema(&self, _obj: &Value) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }

    fn validate(&self, _obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
        Vec::new()
    }

    fn columns(&self) -> Vec<Column> {
        vec![Column::new("Name", "string", 0)]
    }

    fn row(&self, obj: &Value) -> Vec<Value> {
        vec![obj["metadata"]["name"].clone()]
    }

    fn selectable_fields(&self) -> &[&str] {
        &["spec.nodeName"]
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "spec.nodeName" => Some(
                obj.pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            "metadata.name" => obj
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            "metadata.namespace" => obj
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        }
    }
}

/// A core/v1 pods type with `spec.nodeName` as a selectable field.
pub(crate) fn pod_type() -> ResourceType {
    ResourceType {
        group: String::new(),
        version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
        singular: "pod".into(),
        namespaced: true,
        short_names: vec!["po".into()],
        categories: vec!["all".into()],
        verbs: ResourceType::default_verbs(),
        status_subresource: true,
        scale: None,
        strategy: Arc::new(PodStrategy),
    }
}

/// A pod's key and JSON (with a deliberately stale resourceVersion).
pub(crate) fn pod(ns: &str, name: &str, labels: Value, node: &str) -> (String, Value) {
    (
        format!("/registry/core/pods/{ns}/{name}"),
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels, "resourceVersion": "0"},
            "spec": {"nodeName": node},
        }),
    )
}
