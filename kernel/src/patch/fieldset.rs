//! Sets of field paths in Kubernetes' `FieldsV1` format: a tree whose keys
//! are path elements (`f:name` a field, `k:{"name":"web"}` an element of a
//! keyed list, `v:"x"` an element of a set, `i:0` a list index) and where
//! `".": {}` (or an empty object for a leaf) marks a node as a member.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A set of field paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A node that is itself a member, with no children.
    pub(super) fn leaf() -> Self {
        Self {
            member: true,
            children: BTreeMap::new(),
        }
    }

    pub(super) fn set_member(&mut self, member: bool) {
        self.member = member;
    }

    pub(super) fn is_member(&self) -> bool {
        self.member
    }

    pub(super) fn children(&self) -> &BTreeMap<String, FieldSet> {
        &self.children
    }

    pub(super) fn child(&self, element: &str) -> Option<&FieldSet> {
        self.children.get(element)
    }

    /// Adds `node` under `element` (merged with what is there), unless empty.
    pub(super) fn attach(&mut self, element: String, node: FieldSet) {
        if node.is_empty() {
            return;
        }
        match self.children.get_mut(&element) {
            Some(existing) => *existing = existing.union(&node),
            None => {
                self.children.insert(element, node);
            }
        }
    }

    /// Whether the set has no member at all.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Parses Kubernetes' `fieldsV1` JSON.
    pub fn from_fields_v1(value: &Value) -> Result<Self, String> {
        let mut set = Self::parse(value)?;
        // The root is the object itself, never a member.
        set.member = false;
        Ok(set)
    }

    fn parse(value: &Value) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err(format!("fieldsV1 must be an object, got {value}"));
        };
        let mut set = FieldSet {
            member: map.is_empty(),
            children: BTreeMap::new(),
        };
        for (key, child) in map {
            if key == "." {
                set.member = true;
                continue;
            }
            if !["f:", "k:", "v:", "i:"].iter().any(|p| key.starts_with(p)) {
                return Err(format!("unexpected path element {key:?} in fieldsV1"));
            }
            set.children.insert(key.clone(), FieldSet::parse(child)?);
        }
        Ok(set)
    }

    /// Encodes the set as Kubernetes' `fieldsV1` JSON (the root is never a
    /// member itself).
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (key, child) in &self.children {
            if !child.is_empty() {
                map.insert(key.clone(), child.to_fields_v1());
            }
        }
        Value::Object(map)
    }

    /// Members of either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (key, child) in &other.children {
            out.attach(key.clone(), child.clone());
        }
        out
    }

    /// Members of `self` not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (key, child) in &self.children {
            let rest = match other.children.get(key) {
                Some(o) => child.difference(o),
                None => child.clone(),
            };
            out.attach(key.clone(), rest);
        }
        out
    }

    /// Members of both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (key, child) in &self.children {
            if let Some(o) = other.children.get(key) {
                out.attach(key.clone(), child.intersection(o));
            }
        }
        out
    }

    /// Every member path, as lists of path elements.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (key, child) in &self.children {
            prefix.push(key.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }
}

/// A path as Kubernetes prints it in conflicts:
/// `.spec.template.spec.containers[name="web"].image`.
pub(super) fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(field) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(keys) = element.strip_prefix("k:") {
            let parsed: Option<Map<String, Value>> = serde_json::from_str(keys).ok();
            let inner = parsed.map_or_else(
                || keys.to_string(),
                |m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                },
            );
            out.push_str(&format!("[{inner}]"));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        } else if let Some(index) = element.strip_prefix("i:") {
            out.push_str(&format!("[{index}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(v: Value) -> FieldSet {
        FieldSet::from_fields_v1(&v).expect("valid fieldsV1")
    }

    #[test]
    fn round_trips_kubernetes_format() {
        let v = json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}
        });
        let s = set(v.clone());
        assert_eq!(s.to_fields_v1(), v);
        assert_eq!(s.paths().len(), 4);
    }

    #[test]
    fn set_algebra() {
        let a = set(json!({"f:spec": {"f:replicas": {}, "f:paused": {}}}));
        let b = set(json!({"f:spec": {"f:replicas": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}));
        assert_eq!(
            a.intersection(&b),
            set(json!({"f:spec": {"f:replicas": {}}}))
        );
        assert_eq!(a.difference(&b), set(json!({"f:spec": {"f:paused": {}}})));
        let u = a.union(&b);
        assert_eq!(u.paths().len(), 3);
        assert!(a.difference(&u).is_empty());
        assert!(!a.is_empty());
    }

    #[test]
    fn rejects_garbage() {
        assert!(FieldSet::from_fields_v1(&json!({"x:y": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([1])).is_err());
    }

    #[test]
    fn displays_paths_like_kubernetes() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            display_path(&p(&["f:spec", "f:replicas"])),
            ".spec.replicas"
        );
        assert_eq!(
            display_path(&p(&[
                "f:spec",
                "f:containers",
                "k:{\"name\":\"web\"}",
                "f:image"
            ])),
            ".spec.containers[name=\"web\"].image"
        );
        assert_eq!(
            display_path(&p(&["f:metadata", "f:finalizers", "v:\"a\""])),
            ".metadata.finalizers[=\"a\"]"
        );
    }
}
