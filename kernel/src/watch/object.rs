//! Cached objects and events: parsed once when they enter the cache, encoded
//! once when the first watcher needs their wire form.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Value, json};

use crate::registry::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::Revision;

/// One object as the cache holds it. `value` and `raw` agree, and both carry
/// `metadata.resourceVersion` = `revision`.
#[derive(Debug)]
pub struct CachedObject {
    /// The store key.
    pub key: String,
    /// `metadata.namespace` ("" for cluster-scoped objects).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The resourceVersion: the key's mod revision (or, in a DELETED event,
    /// the delete's revision).
    pub revision: Revision,
    /// The key's create revision.
    pub create_revision: Revision,
    /// The object's JSON encoding. Only this is kept, not a parsed tree: a
    /// parsed `Value` costs several times the JSON's size, and most reads
    /// (lists, watches) send the bytes as they are. [`Self::value`] parses.
    pub raw: Bytes,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// Values of the type's selectable fields, computed once so per-watcher
    /// filtering is a lookup.
    fields: Vec<(String, String)>,
}

impl CachedObject {
    /// Parses a stored object and stamps its resourceVersion.
    pub(crate) fn from_stored(
        rt: &ResourceType,
        key: &str,
        value: &[u8],
        revision: Revision,
        create_revision: Revision,
    ) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_slice(value)?;
        let fields = selectable_fields(rt, &value);
        let mut obj = Self::from_value(key, value, revision, create_revision)?;
        obj.fields = fields;
        Ok(obj)
    }

    fn from_value(
        key: &str,
        mut value: Value,
        revision: Revision,
        create_revision: Revision,
    ) -> Result<Self, serde_json::Error> {
        set_resource_version(&mut value, revision);
        let raw = Bytes::from(serde_json::to_vec(&value)?);
        let meta = value.get("metadata");
        let text = |field: &str| {
            meta.and_then(|m| m.get(field))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let labels = meta
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            key: key.to_owned(),
            namespace: text("namespace"),
            name: text("name"),
            revision,
            create_revision,
            labels,
            fields: Vec::new(),
            raw,
        })
    }

    /// The object, parsed from its JSON.
    pub fn value(&self) -> Value {
        // The bytes were serialized from a Value by this module.
        serde_json::from_slice(&self.raw).unwrap_or(Value::Null)
    }

    /// The same object with another resourceVersion (a deleted object's last
    /// state, stamped with the delete's revision).
    pub(crate) fn with_revision(&self, revision: Revision) -> Self {
        let mut value = self.value();
        set_resource_version(&mut value, revision);
        // Serializing a Value we just cloned cannot fail (string keys only).
        let raw = serde_json::to_vec(&value).map_or_else(|_| self.raw.clone(), Bytes::from);
        Self {
            key: self.key.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            revision,
            create_revision: self.create_revision,
            raw,
            labels: self.labels.clone(),
            fields: self.fields.clone(),
        }
    }

    /// A bookmark's object: only kind, apiVersion and resourceVersion.
    pub(crate) fn bookmark(kind: &str, api_version: &str, revision: Revision) -> Self {
        let value = json!({
            "kind": kind,
            "apiVersion": api_version,
            "metadata": { "resourceVersion": revision.to_string() },
        });
        let raw = Bytes::from(value.to_string());
        Self {
            key: String::new(),
            namespace: String::new(),
            name: String::new(),
            revision,
            create_revision: 0,
            raw,
            labels: BTreeMap::new(),
            fields: Vec::new(),
        }
    }

    /// The value of a selectable field, as computed by the type's strategy
    /// when the object entered the cache.
    pub fn field(&self, name: &str) -> Option<&str> {
        match name {
            "metadata.name" => Some(&self.name),
            "metadata.namespace" => Some(&self.namespace),
            _ => self
                .fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str()),
        }
    }

    /// Whether the object passes a watcher's or list's filter.
    pub(crate) fn matches(&self, filter: &Filter) -> bool {
        if let Some(ns) = &filter.namespace
            && *ns != self.namespace
        {
            return false;
        }
        (filter.labels.is_empty() || filter.labels.matches_map(&self.labels))
            && (filter.fields.is_empty() || filter.fields.matches_str(|f| self.field(f)))
    }
}

/// Namespace and selectors of one list or watch.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

fn set_resource_version(value: &mut Value, revision: Revision) {
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
}

fn selectable_fields(rt: &ResourceType, value: &Value) -> Vec<(String, String)> {
    rt.strategy
        .selectable_fields()
        .iter()
        .filter_map(|f| {
            rt.strategy
                .field_value(value, f)
                .map(|v| ((*f).to_owned(), v))
        })
        .collect()
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// The object was created (or started to match the watcher's selectors).
    Added,
    /// The object changed.
    Modified,
    /// The object was deleted (or stopped matching the watcher's selectors).
    Deleted,
    /// A progress marker: the watcher has seen everything up to its revision.
    Bookmark,
}

impl EventType {
    /// `ADDED`, `MODIFIED`, `DELETED` or `BOOKMARK`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
            EventType::Bookmark => "BOOKMARK",
        }
    }
}

/// One watch event, shared by every watcher that receives it.
#[derive(Debug)]
pub struct CachedEvent {
    /// What happened.
    pub kind: EventType,
    /// The store revision of the change.
    pub revision: Revision,
    /// The object after the change (for DELETED: its last state).
    pub object: Arc<CachedObject>,
    /// The object before a MODIFIED change, for selector transitions.
    pub prev: Option<Arc<CachedObject>>,
    line: OnceLock<Bytes>,
    as_added: OnceLock<Arc<CachedEvent>>,
    as_deleted: OnceLock<Arc<CachedEvent>>,
}

impl CachedEvent {
    /// A new event; its encodings are computed on first use.
    pub fn new(
        kind: EventType,
        revision: Revision,
        object: Arc<CachedObject>,
        prev: Option<Arc<CachedObject>>,
    ) -> Self {
        Self {
            kind,
            revision,
            object,
            prev,
            line: OnceLock::new(),
            as_added: OnceLock::new(),
            as_deleted: OnceLock::new(),
        }
    }

    /// The Kubernetes watch line `{"type":"ADDED","object":{...}}\n`, built
    /// once from the object's raw JSON.
    pub fn json_line(&self) -> Bytes {
        self.line
            .get_or_init(|| {
                let raw = &self.object.raw;
                let mut buf = BytesMut::with_capacity(raw.len() + 32);
                buf.put_slice(b"{\"type\":\"");
                buf.put_slice(self.kind.as_str().as_bytes());
                buf.put_slice(b"\",\"object\":");
                buf.put_slice(raw);
                buf.put_slice(b"}\n");
                buf.freeze()
            })
            .clone()
    }

    /// The object's JSON, as the gRPC watch carries it.
    pub fn object_bytes(&self) -> Bytes {
        self.object.raw.clone()
    }

    /// This MODIFIED event as seen by a watcher whose selectors the object
    /// just started to match: ADDED with the new object. Shared, built once.
    pub(crate) fn as_added(&self) -> Arc<CachedEvent> {
        self.as_added
            .get_or_init(|| {
                Arc::new(CachedEvent::new(
                    EventType::Added,
                    self.revision,
                    self.object.clone(),
                    None,
                ))
            })
            .clone()
    }

    /// This MODIFIED event as seen by a watcher whose selectors the object
    /// just stopped matching: DELETED with the previous state, stamped with
    /// this event's revision. Shared, built once.
    pub(crate) fn as_deleted(&self) -> Arc<CachedEvent> {
        self.as_deleted
            .get_or_init(|| {
                let prev = self.prev.as_ref().unwrap_or(&self.object);
                Arc::new(CachedEvent::new(
                    EventType::Deleted,
                    self.revision,
                    Arc::new(prev.with_revision(self.revision)),
                    None,
                ))
            })
            .clone()
    }

    /// What a watcher with `filter` should receive for this event, if
    /// anything: the event itself, or its ADDED/DELETED form on a selector
    /// transition.
    pub(crate) fn for_filter(self: &Arc<Self>, filter: &Filter) -> Option<Arc<CachedEvent>> {
        let now = self.object.matches(filter);
        match (self.kind, &self.prev) {
            (EventType::Modified, Some(prev)) => match (prev.matches(filter), now) {
                (true, true) => Some(self.clone()),
                (false, true) => Some(self.as_added()),
                (true, false) => Some(self.as_deleted()),
                (false, false) => None,
            },
            _ => now.then(|| self.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::fake_store::pod_type;

    fn obj(rt: &ResourceType, labels: Value, rev: Revision) -> Arc<CachedObject> {
        let v = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "1", "labels": labels},
            "spec": {"nodeName": "n1"}
        });
        let bytes = serde_json::to_vec(&v).unwrap();
        Arc::new(CachedObject::from_stored(rt, "/registry/core/pods/ns/p", &bytes, rev, 1).unwrap())
    }

    #[test]
    fn stored_object_gets_its_mod_revision() {
        let rt = pod_type();
        let o = obj(&rt, json!({"app": "web"}), 42);
        assert_eq!(o.value()["metadata"]["resourceVersion"], "42");
        let reparsed: Value = serde_json::from_slice(&o.raw).unwrap();
        assert_eq!(reparsed["metadata"]["resourceVersion"], "42");
        assert_eq!(o.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(o.field("spec.nodeName"), Some("n1"));
        assert_eq!(o.field("metadata.namespace"), Some("ns"));
    }

    #[test]
    fn watch_line_embeds_raw_object_once() {
        let rt = pod_type();
        let ev = Arc::new(CachedEvent::new(
            EventType::Added,
            7,
            obj(&rt, json!({}), 7),
            None,
        ));
        let line = ev.json_line();
        assert!(line.ends_with(b"}\n"));
        let parsed: Value = serde_json::from_slice(&line[..line.len() - 1]).unwrap();
        assert_eq!(parsed["type"], "ADDED");
        assert_eq!(parsed["object"]["metadata"]["resourceVersion"], "7");
        // The second call returns the same buffer, not a new encoding.
        assert_eq!(ev.json_line().as_ptr(), line.as_ptr());
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let rt = pod_type();
        let before = obj(&rt, json!({"app": "web"}), 5);
        let after = obj(&rt, json!({"app": "db"}), 6);
        let ev = Arc::new(CachedEvent::new(
            EventType::Modified,
            6,
            after,
            Some(before),
        ));
        let web = Filter {
            labels: LabelSelector::parse("app=web").unwrap(),
            ..Filter::default()
        };
        let db = Filter {
            labels: LabelSelector::parse("app=db").unwrap(),
            ..Filter::default()
        };
        let other = Filter {
            namespace: Some("other".into()),
            ..Filter::default()
        };
        let gone = ev.for_filter(&web).unwrap();
        assert_eq!(gone.kind, EventType::Deleted);
        assert_eq!(gone.object.labels["app"], "web");
        assert_eq!(gone.object.value()["metadata"]["resourceVersion"], "6");
        let came = ev.for_filter(&db).unwrap();
        assert_eq!(came.kind, EventType::Added);
        assert!(Arc::ptr_eq(&came, &ev.for_filter(&db).unwrap()));
        assert!(ev.for_filter(&other).is_none());
        assert_eq!(
            ev.for_filter(&Filter::default()).unwrap().kind,
            EventType::Modified
        );
    }
}
