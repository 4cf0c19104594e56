//! Walks over objects with their merge semantics ([`Schema`]): the field set
//! a value sets, the fields two values differ in, the server-side apply merge
//! and the removal of field sets from an object.

use serde_json::{Map, Value};

use super::fieldset::FieldSet;
use super::schema::{ListKind, Schema};
use super::strategic::reorder_slots;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The `k:{...}` element of a keyed list item: its key fields (or their
/// defaults), sorted by name.
fn key_element(item: &Value, keys: &[(&str, Option<&str>)]) -> Result<String, String> {
    let mut sorted: Vec<&(&str, Option<&str>)> = keys.iter().collect();
    sorted.sort_by_key(|(name, _)| *name);
    let mut map = Map::new();
    for (name, default) in sorted {
        match (item.get(*name), default) {
            (Some(v), _) if !v.is_null() => {
                map.insert((*name).to_string(), v.clone());
            }
            (_, Some(d)) => {
                map.insert((*name).to_string(), Value::String((*d).to_string()));
            }
            // Key fields without a default may be omitted when others are set.
            (_, None) if keys.len() > 1 => {}
            (_, None) => {
                return Err(format!(
                    "associative list with keys has an element that omits key field {name:?} (and doesn't have default value)"
                ));
            }
        }
    }
    if map.is_empty() {
        return Err(format!("associative list element {item} has no key fields"));
    }
    Ok(format!("k:{}", Value::Object(map)))
}

fn value_element(item: &Value) -> String {
    format!("v:{item}")
}

/// The fields `value` sets, as the node of the field holding it: granular
/// maps and keyed lists are descended into, everything else is a leaf.
pub(super) fn value_set(value: &Value, schema: &Schema, path: &str) -> Result<FieldSet, String> {
    match value {
        Value::Object(m) if !m.is_empty() && !schema.is_atomic_map(path) => {
            let mut set = FieldSet::new();
            for (k, v) in m {
                if !v.is_null() {
                    set.attach(format!("f:{k}"), value_set(v, schema, &join(path, k))?);
                }
            }
            Ok(set)
        }
        Value::Array(items) if !items.is_empty() => match schema.list_kind(path) {
            ListKind::Atomic => Ok(FieldSet::leaf()),
            ListKind::Set => {
                let mut set = FieldSet::new();
                for item in items {
                    set.attach(value_element(item), FieldSet::leaf());
                }
                Ok(set)
            }
            ListKind::Map { keys, .. } => {
                let mut set = FieldSet::new();
                for item in items {
                    let mut node = value_set(item, schema, path)?;
                    node.set_member(true);
                    set.attach(key_element(item, keys)?, node);
                }
                Ok(set)
            }
        },
        _ => Ok(FieldSet::leaf()),
    }
}

/// The fields `new` changed relative to `old` (modified or added) and the
/// fields it removed.
pub(super) fn diff(
    old: &Value,
    new: &Value,
    schema: &Schema,
    path: &str,
) -> Result<(FieldSet, FieldSet), String> {
    let mut changed = FieldSet::new();
    let mut removed = FieldSet::new();
    match (old, new) {
        (Value::Object(a), Value::Object(b)) if !schema.is_atomic_map(path) => {
            for (k, nv) in b.iter().filter(|(_, v)| !v.is_null()) {
                let element = format!("f:{k}");
                let child = join(path, k);
                match a.get(k).filter(|v| !v.is_null()) {
                    Some(ov) => {
                        let (c, r) = diff(ov, nv, schema, &child)?;
                        changed.attach(element.clone(), c);
                        removed.attach(element, r);
                    }
                    None => changed.attach(element, value_set(nv, schema, &child)?),
                }
            }
            for (k, ov) in a.iter().filter(|(_, v)| !v.is_null()) {
                if b.get(k).is_none_or(Value::is_null) {
                    removed.attach(format!("f:{k}"), value_set(ov, schema, &join(path, k))?);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if *schema.list_kind(path) != ListKind::Atomic => {
            let element = |item: &Value| match schema.list_kind(path) {
                ListKind::Map { keys, .. } => key_element(item, keys),
                _ => Ok(value_element(item)),
            };
            let old_items = a
                .iter()
                .map(|i| Ok((element(i)?, i)))
                .collect::<Result<Vec<_>, String>>()?;
            let new_items = b
                .iter()
                .map(|i| Ok((element(i)?, i)))
                .collect::<Result<Vec<_>, String>>()?;
            let keyed = matches!(schema.list_kind(path), ListKind::Map { .. });
            for (e, nv) in &new_items {
                match old_items.iter().find(|(oe, _)| oe == e) {
                    Some((_, ov)) if keyed => {
                        let (c, r) = diff(ov, nv, schema, path)?;
                        changed.attach(e.clone(), c);
                        removed.attach(e.clone(), r);
                    }
                    Some(_) => {}
                    None => {
                        let mut node = if keyed {
                            value_set(nv, schema, path)?
                        } else {
                            FieldSet::new()
                        };
                        node.set_member(true);
                        changed.attach(e.clone(), node);
                    }
                }
            }
            for (e, ov) in &old_items {
                if !new_items.iter().any(|(ne, _)| ne == e) {
                    let mut node = if keyed {
                        value_set(ov, schema, path)?
                    } else {
                        FieldSet::new()
                    };
                    node.set_member(true);
                    removed.attach(e.clone(), node);
                }
            }
        }
        _ if old == new => {}
        _ => {
            let new_set = value_set(new, schema, path)?;
            removed = value_set(old, schema, path)?.difference(&new_set);
            changed = new_set;
        }
    }
    Ok((changed, removed))
}

/// Server-side apply's merge of an applied configuration into the live
/// object: granular maps merge, keyed lists merge by key, sets union,
/// everything else is replaced; `null` in the configuration removes.
pub(super) fn merge(
    live: &Value,
    config: &Value,
    schema: &Schema,
    path: &str,
) -> Result<Value, String> {
    match (live, config) {
        (_, Value::Object(_)) if schema.is_atomic_map(path) => Ok(config.clone()),
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.shift_remove(k);
                    continue;
                }
                let child = join(path, k);
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, cv, schema, &child)?,
                    None => merge(&Value::Null, cv, schema, &child)?,
                };
                out.insert(k.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        (Value::Array(l), Value::Array(c)) if *schema.list_kind(path) != ListKind::Atomic => {
            let keys = match schema.list_kind(path) {
                ListKind::Map { keys, .. } => Some(*keys),
                _ => None,
            };
            let element = |item: &Value| match keys {
                Some(keys) => key_element(item, keys),
                None => Ok(value_element(item)),
            };
            let mut out = l.clone();
            let mut order = Vec::with_capacity(c.len());
            for item in c {
                let e = element(item)?;
                order.push(Value::String(e.clone()));
                let mut existing = None;
                for (i, o) in out.iter().enumerate() {
                    if element(o)? == e {
                        existing = Some(i);
                        break;
                    }
                }
                match existing {
                    Some(i) if keys.is_some() => out[i] = merge(&out[i], item, schema, path)?,
                    Some(_) => {}
                    None => out.push(merge(&Value::Null, item, schema, path)?),
                }
            }
            let ids = out
                .iter()
                .map(|o| element(o).map(Value::String))
                .collect::<Result<Vec<_>, String>>()?;
            reorder_by(&mut out, &ids, &order);
            Ok(Value::Array(out))
        }
        (_, Value::Object(c)) => {
            // A new map: drop the configuration's nulls.
            merge(
                &Value::Object(Map::new()),
                &Value::Object(c.clone()),
                schema,
                path,
            )
        }
        (_, c) => Ok(c.clone()),
    }
}

/// Reorders `list` (whose elements are identified by `ids`) so the elements
/// named in `order` follow that order, keeping others in place.
fn reorder_by(list: &mut [Value], ids: &[Value], order: &[Value]) {
    let mut pairs: Vec<(Value, Value)> = ids.iter().cloned().zip(list.iter().cloned()).collect();
    reorder_slots(&mut pairs, |(id, _)| order.iter().position(|o| o == id));
    for (slot, (_, v)) in list.iter_mut().zip(pairs) {
        *slot = v;
    }
}

/// Removes the members of `remove` from `value` (whose schema path is
/// `path`), except where `keep` (the fields others own) still owns the
/// member or something under it.
pub(super) fn prune(
    value: &mut Value,
    remove: &FieldSet,
    keep: Option<&FieldSet>,
    schema: &Schema,
    path: &str,
) {
    for (element, node) in remove.children() {
        let keep_child = keep.and_then(|k| k.child(element));
        let kept = keep_child.is_some_and(|k| !k.is_empty());
        if let Some(field) = element.strip_prefix("f:") {
            let Some(map) = value.as_object_mut() else {
                continue;
            };
            if node.is_member() && !kept {
                map.shift_remove(field);
            } else if let Some(child) = map.get_mut(field) {
                prune(child, node, keep_child, schema, &join(path, field));
                // Emptied by the removal: gone, as Kubernetes' omitempty
                // encoding drops empty lists and maps.
                let emptied = match child {
                    Value::Array(items) => items.is_empty(),
                    Value::Object(m) => m.is_empty(),
                    _ => false,
                };
                if emptied && !kept {
                    map.shift_remove(field);
                }
            }
        } else if let Value::Array(items) = value {
            let matches = |item: &Value| match schema.list_kind(path) {
                ListKind::Map { keys, .. } => key_element(item, keys).is_ok_and(|e| e == *element),
                _ => value_element(item) == *element,
            };
            let Some(pos) = items.iter().position(matches) else {
                continue;
            };
            if node.is_member() && !kept {
                items.remove(pos);
            } else {
                prune(&mut items[pos], node, keep_child, schema, path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deploy() -> &'static Schema {
        Schema::builtin("apps", "Deployment").expect("built-in")
    }

    #[test]
    fn value_set_of_a_deployment() {
        let d = json!({
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{
                    "name": "web", "image": "nginx",
                    "ports": [{"containerPort": 80}],
                    "args": ["a"]
                }]}}
            }
        });
        let set = value_set(&d, deploy(), "").expect("keyed");
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}, "f:name": {}},
                "f:spec": {
                    "f:selector": {},
                    "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                        ".": {}, "f:args": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                    }}}}
                }
            })
        );
    }

    #[test]
    fn missing_key_is_an_error() {
        let d = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        let err = value_set(&d, deploy(), "").expect_err("no name");
        assert!(err.contains("omits key field \"name\""), "{err}");
    }

    #[test]
    fn diff_finds_changes_and_removals() {
        let old = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1,
            "template": {"spec": {"containers": [{"name": "web", "image": "v1"}, {"name": "old", "image": "x"}]}}}});
        let new = json!({"metadata": {"labels": {"a": "1", "c": "3"}}, "spec": {"replicas": 2,
            "template": {"spec": {"containers": [{"name": "web", "image": "v2"}]}}}});
        let (changed, removed) = diff(&old, &new, deploy(), "").expect("diff");
        assert_eq!(
            changed.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:c": {}}}, "f:spec": {"f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}})
        );
        assert_eq!(
            removed.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:b": {}}}, "f:spec": {
                "f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"old\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}})
        );
    }

    #[test]
    fn merge_keyed_lists_and_sets() {
        let live = json!({"metadata": {"finalizers": ["a"]}, "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "v1", "resources": {"limits": {"cpu": "1"}}},
            {"name": "side", "image": "s"}
        ]}}}});
        let config = json!({"metadata": {"finalizers": ["b"]}, "spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "s2"},
            {"name": "web", "image": "v2"}
        ]}}}});
        let out = merge(&live, &config, deploy(), "").expect("merges");
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([
                {"name": "side", "image": "s2"},
                {"name": "web", "image": "v2", "resources": {"limits": {"cpu": "1"}}}
            ])
        );
    }

    #[test]
    fn prune_respects_other_owners() {
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "v1", "resources": {"limits": {"cpu": "1"}}},
            {"name": "side", "image": "s"}
        ]}}}});
        let remove = FieldSet::from_fields_v1(&json!({
            "f:metadata": {"f:labels": {"f:a": {}}},
            "f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}},
                "k:{\"name\":\"side\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}}}
        }))
        .expect("valid");
        let keep = FieldSet::from_fields_v1(&json!({
            "f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {"f:resources": {"f:limits": {"f:cpu": {}}}}
            }}}}
        }))
        .expect("valid");
        prune(&mut obj, &remove, Some(&keep), deploy(), "");
        assert_eq!(
            obj,
            json!({"metadata": {"labels": {"b": "2"}}, "spec": {"template": {"spec": {"containers": [
                {"resources": {"limits": {"cpu": "1"}}}
            ]}}}})
        );
    }
}
