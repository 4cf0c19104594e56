//! Strategic merge patch, as Kubernetes applies it to built-in types: lists
//! of objects merge by their patch merge key, primitive lists with the
//! `merge` strategy are unioned, other lists replace; `null` deletes; the
//! directives `$patch`, `$retainKeys`, `$deleteFromPrimitiveList/<field>` and
//! `$setElementOrder/<field>` are honoured.

use serde_json::{Map, Value};

use super::schema::{ListKind, Schema};
use super::{PatchError, Result};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to `original` with the merge semantics of
/// `schema` (see [`Schema::builtin`]; custom resources have none and must be
/// refused with 415 by the caller).
pub fn strategic_merge(original: &Value, patch: &Value, schema: &Schema) -> Result<Value> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::Decode(
            "json: cannot unmarshal into Go value of type map[string]interface {}".to_string(),
        ));
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    Ok(Value::Object(merge_map(original, patch, schema, "")?))
}

fn is_directive(key: &str) -> bool {
    key == PATCH
        || key == RETAIN_KEYS
        || key.starts_with(DELETE_PRIMITIVE)
        || key.starts_with(SET_ORDER)
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn bad_patch_type(directive: &Value, patch: &Map<String, Value>) -> PatchError {
    PatchError::Strategic(format!(
        "unknown patch type: {} in map: {}",
        directive_text(directive),
        Value::Object(patch.clone())
    ))
}

fn directive_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: &Schema,
    path: &str,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(PATCH) {
        match directive.as_str() {
            Some("replace") => {
                // The patch is the new value; merging it into nothing strips
                // its own directives and nulls.
                let mut rest = patch.clone();
                rest.shift_remove(PATCH);
                return merge_map(Map::new(), &rest, schema, path);
            }
            Some("delete") => return Ok(Map::new()),
            Some("merge") => {}
            _ => return Err(bad_patch_type(directive, patch)),
        }
    }

    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let Some(keys) = retain.as_array() else {
            return Err(PatchError::Strategic(format!(
                "invalid type for $retainKeys: {retain}, must be a list"
            )));
        };
        let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
        original.retain(|k, _| keys.contains(&k.as_str()));
    }

    for (key, values) in patch {
        let Some(field) = key.strip_prefix(DELETE_PRIMITIVE) else {
            continue;
        };
        let Some(values) = values.as_array() else {
            return Err(PatchError::Strategic(format!(
                "invalid type for {key}: {values}, must be a list"
            )));
        };
        if let Some(Value::Array(list)) = original.get_mut(field) {
            list.retain(|item| !values.contains(item));
        }
    }

    for (key, value) in patch {
        if is_directive(key) {
            continue;
        }
        let path = child(path, key);
        if value.is_null() {
            original.shift_remove(key);
            continue;
        }
        let current = original.get_mut(key);
        let merged = match (current, value) {
            (Some(Value::Object(cur)), Value::Object(p)) => {
                Value::Object(merge_map(std::mem::take(cur), p, schema, &path)?)
            }
            (Some(Value::Array(cur)), Value::Array(p)) => {
                Value::Array(merge_list(std::mem::take(cur), p, schema, &path)?)
            }
            (_, Value::Object(p)) => Value::Object(merge_map(Map::new(), p, schema, &path)?),
            (_, Value::Array(p)) => Value::Array(merge_list(Vec::new(), p, schema, &path)?),
            (_, v) => v.clone(),
        };
        original.insert(key.clone(), merged);
    }

    for (key, order) in patch {
        let Some(field) = key.strip_prefix(SET_ORDER) else {
            continue;
        };
        let Some(order) = order.as_array() else {
            return Err(PatchError::Strategic(format!(
                "invalid type for {key}: {order}, must be a list"
            )));
        };
        let merge_key = match schema.list_kind(&child(path, field)) {
            ListKind::Map { merge_key, .. } => Some(*merge_key),
            _ => None,
        };
        if let Some(Value::Array(list)) = original.get_mut(field) {
            let ids: Vec<Value> = order.iter().map(|o| identity(o, merge_key)).collect();
            reorder(list, &ids, merge_key);
        }
    }
    Ok(original)
}

/// What identifies a list element: its merge key value, or itself.
fn identity(item: &Value, merge_key: Option<&str>) -> Value {
    match (merge_key, item) {
        (Some(k), Value::Object(m)) => m.get(k).cloned().unwrap_or(Value::Null),
        _ => item.clone(),
    }
}

/// Puts the elements named in `order` in that order, in the slots they
/// occupy; elements the order does not name (added by others) keep theirs.
fn reorder(list: &mut [Value], order: &[Value], merge_key: Option<&str>) {
    reorder_slots(list, |item| {
        let id = identity(item, merge_key);
        order.iter().position(|o| *o == id)
    });
}

/// Sorts the elements that have a rank by it, within the slots they occupy;
/// elements without a rank stay where they are.
pub(super) fn reorder_slots<T: Clone>(list: &mut [T], rank: impl Fn(&T) -> Option<usize>) {
    let slots: Vec<usize> = (0..list.len())
        .filter(|&i| rank(&list[i]).is_some())
        .collect();
    let mut ordered: Vec<T> = slots.iter().map(|&i| list[i].clone()).collect();
    ordered.sort_by_key(|item| rank(item));
    for (slot, item) in slots.into_iter().zip(ordered) {
        list[slot] = item;
    }
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    schema: &Schema,
    path: &str,
) -> Result<Vec<Value>> {
    let kind = schema.list_kind(path);
    if *kind == ListKind::Atomic {
        return Ok(patch.to_vec());
    }
    let merge_key = match kind {
        ListKind::Map { merge_key, .. } => Some(*merge_key),
        _ => None,
    };

    let mut result = original;
    let mut items = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.as_object().and_then(|m| m.get(PATCH)) else {
            items.push(item);
            continue;
        };
        let map = item.as_object().cloned().unwrap_or_default();
        match directive.as_str() {
            Some("replace") => replace = true,
            Some("delete") => {
                let key_value = merge_key.and_then(|k| map.get(k));
                let (Some(k), Some(v)) = (merge_key, key_value) else {
                    return Err(PatchError::Strategic(
                        "delete patch type with no merge key defined".to_string(),
                    ));
                };
                result.retain(|e| e.get(k) != Some(v));
            }
            Some("merge") => {
                return Err(PatchError::Strategic(
                    "merging lists cannot yet be specified in the patch".to_string(),
                ));
            }
            _ => return Err(bad_patch_type(directive, &map)),
        }
    }
    if replace {
        result = Vec::new();
    }

    for item in items {
        match (merge_key, item) {
            (Some(k), Value::Object(p)) => {
                let Some(key_value) = p.get(k) else {
                    return Err(PatchError::Strategic(format!(
                        "map: {item} does not contain declared merge key: {k}"
                    )));
                };
                match result.iter_mut().find(|e| e.get(k) == Some(key_value)) {
                    Some(Value::Object(existing)) => {
                        let merged = merge_map(std::mem::take(existing), p, schema, path)?;
                        *existing = merged;
                    }
                    _ => result.push(Value::Object(merge_map(Map::new(), p, schema, path)?)),
                }
            }
            (_, Value::Object(p)) => {
                result.push(Value::Object(merge_map(Map::new(), p, schema, path)?));
            }
            (_, Value::Array(_)) => {
                return Err(PatchError::Strategic(
                    "lists of lists are not supported".to_string(),
                ));
            }
            (_, v) => {
                if !result.contains(v) {
                    result.push(v.clone());
                }
            }
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment_schema() -> &'static Schema {
        Schema::builtin("apps", "Deployment").expect("built-in")
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "default",
                "labels": {"app": "web", "tier": "front"},
                "finalizers": ["a/one"]
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web", "image": "nginx:1.25",
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                                "args": ["-x", "-y"]
                            },
                            {"name": "side", "image": "busybox:1.36"}
                        ],
                        "tolerations": [{"key": "k", "operator": "Exists"}],
                        "volumes": [{"name": "data", "emptyDir": {}}]
                    }
                }
            }
        })
    }

    fn containers(v: &Value) -> &Vec<Value> {
        v["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers")
    }

    #[test]
    fn kubectl_apply_image_change() {
        // As kubectl apply (client side) sends it.
        let patch = json!({
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                "containers": [{"image": "nginx:1.26", "name": "web"}]
            }}}
        });
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        let c = containers(&out);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0]["image"], "nginx:1.26");
        // Untouched fields of the merged element survive.
        assert_eq!(c[0]["env"][1]["name"], "B");
        assert_eq!(c[0]["ports"][0]["containerPort"], 80);
        assert_eq!(c[1]["image"], "busybox:1.36");
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{}\n"
        );
        assert_eq!(out["metadata"]["labels"]["tier"], "front");
    }

    #[test]
    fn kubectl_apply_removes_env_var_and_replicas() {
        let patch = json!({
            "spec": {
                "replicas": 3,
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
                    "containers": [{
                        "$setElementOrder/env": [{"name": "A"}],
                        "env": [{"$patch": "delete", "name": "B"}],
                        "name": "web"
                    }]
                }}
            }
        });
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(
            containers(&out)[0]["env"],
            json!([{"name": "A", "value": "1"}])
        );
    }

    #[test]
    fn set_element_order_reorders_and_adds() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "new"}, {"name": "web"}],
            "containers": [{"name": "new", "image": "redis"}]
        }}}});
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        let names: Vec<&str> = containers(&out)
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, ["side", "new", "web"]);
    }

    #[test]
    fn null_deletes_and_atomic_lists_replace() {
        let patch = json!({
            "metadata": {"labels": {"tier": null}},
            "spec": {"template": {"spec": {
                "tolerations": [{"key": "other", "operator": "Exists"}],
                "containers": [{"name": "web", "args": ["-z"]}]
            }}}
        });
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            out["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "other", "operator": "Exists"}])
        );
        assert_eq!(containers(&out)[0]["args"], json!(["-z"]));
    }

    #[test]
    fn ports_merge_by_container_port() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "ports": [{"containerPort": 443, "name": "https"}, {"containerPort": 80, "name": "http"}]}
        ]}}}});
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        assert_eq!(
            containers(&out)[0]["ports"],
            json!([
                {"containerPort": 80, "protocol": "TCP", "name": "http"},
                {"containerPort": 443, "name": "https"}
            ])
        );
    }

    #[test]
    fn retain_keys_drops_rolling_update() {
        let patch = json!({"spec": {"strategy": {
            "$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null
        }}});
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn retain_keys_in_list_element_switches_volume_source() {
        // kubectl apply after changing a volume from emptyDir to configMap.
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/volumes": [{"name": "data"}],
            "volumes": [{"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "name": "data"}]
        }}}});
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        assert_eq!(
            out["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "data", "configMap": {"name": "cfg"}}])
        );
    }

    #[test]
    fn primitive_list_merge_and_delete() {
        let patch = json!({"metadata": {
            "finalizers": ["b/two", "a/one"],
        }});
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        assert_eq!(out["metadata"]["finalizers"], json!(["a/one", "b/two"]));

        let patch = json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["a/one"],
            "$setElementOrder/finalizers": ["c/three", "b/two"],
            "finalizers": ["c/three"]
        }});
        let out = strategic_merge(&out, &patch, deployment_schema()).expect("applies");
        assert_eq!(out["metadata"]["finalizers"], json!(["c/three", "b/two"]));
    }

    #[test]
    fn patch_replace_and_delete_directives() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "replace"},
            {"name": "only", "image": "x"}
        ]}}}});
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        assert_eq!(
            containers(&out),
            &vec![json!({"name": "only", "image": "x"})]
        );

        let patch = json!({"metadata": {"labels": {"$patch": "replace", "new": "1"}}});
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        assert_eq!(out["metadata"]["labels"], json!({"new": "1"}));

        let patch = json!({"spec": {"strategy": {"$patch": "delete"}}});
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        assert_eq!(out["spec"]["strategy"], json!({}));

        let patch = json!({"spec": {"template": {"spec": {"volumes": [{"name": "data", "$patch": "delete"}]}}}});
        let out = strategic_merge(&deployment(), &patch, deployment_schema()).expect("applies");
        assert_eq!(out["spec"]["template"]["spec"]["volumes"], json!([]));
    }

    #[test]
    fn service_ports_merge_by_port() {
        let schema = Schema::builtin("", "Service").expect("built-in");
        let svc = json!({"spec": {"selector": {"app": "web"}, "ports": [
            {"port": 80, "targetPort": 8080, "protocol": "TCP"}
        ]}});
        let patch = json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}});
        let out = strategic_merge(&svc, &patch, schema).expect("applies");
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090, "protocol": "TCP"}, {"port": 443}])
        );
    }

    #[test]
    fn new_fields_are_stripped_of_directives() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {}});
        let schema = Schema::builtin("", "Pod").expect("built-in");
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [{"name": "a", "image": "x", "env": [{"name": "E", "value": "v"}], "gone": null}]
        }});
        let out = strategic_merge(&pod, &patch, schema).expect("applies");
        assert_eq!(
            out["spec"],
            json!({"containers": [{"name": "a", "image": "x", "env": [{"name": "E", "value": "v"}]}]})
        );
    }

    #[test]
    fn errors() {
        let schema = deployment_schema();
        let missing_key = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        let err = strategic_merge(&deployment(), &missing_key, schema).expect_err("no merge key");
        assert!(
            err.to_string()
                .contains("does not contain declared merge key: name"),
            "{err}"
        );
        assert_eq!(err.http_status(), 400);

        let bad = json!({"metadata": {"labels": {"$patch": "explode"}}});
        let err = strategic_merge(&deployment(), &bad, schema).expect_err("bad directive");
        assert!(
            err.to_string().starts_with("unknown patch type: explode"),
            "{err}"
        );

        let not_object = json!("x");
        assert!(strategic_merge(&deployment(), &not_object, schema).is_err());

        let delete_in_primitive = json!({"metadata": {"finalizers": [{"$patch": "delete"}]}});
        assert!(strategic_merge(&deployment(), &delete_in_primitive, schema).is_err());
    }
}
