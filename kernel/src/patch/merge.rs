//! JSON merge patch (RFC 7386).

use serde_json::Value;

use super::{PatchError, Result};

/// Applies a JSON merge patch to `original`: objects merge recursively,
/// `null` deletes, everything else (lists included) replaces.
///
/// Kubernetes requires the patch of an object to be an object; anything else
/// is a decode error (400).
pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value> {
    if !patch.is_object() {
        return Err(PatchError::Decode(
            "json: cannot unmarshal into Go value of type map[string]interface {}".to_string(),
        ));
    }
    let mut doc = original.clone();
    merge_into(&mut doc, patch);
    Ok(doc)
}

fn merge_into(doc: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = doc {
        for (k, v) in patch {
            if v.is_null() {
                map.shift_remove(k);
            } else {
                merge_into(map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_objects_and_deletes_nulls() {
        let original = json!({
            "metadata": {"name": "web", "labels": {"app": "web", "old": "x"}},
            "spec": {"replicas": 1, "ports": [{"port": 80}]}
        });
        let patch = json!({
            "metadata": {"labels": {"old": null, "new": "y"}},
            "spec": {"replicas": 2, "ports": [{"port": 443}]}
        });
        let out = merge_patch(&original, &patch).expect("applies");
        assert_eq!(
            out,
            json!({
                "metadata": {"name": "web", "labels": {"app": "web", "new": "y"}},
                "spec": {"replicas": 2, "ports": [{"port": 443}]}
            })
        );
    }

    #[test]
    fn object_replaces_scalar_and_nulls_inside_new_objects_are_dropped() {
        let original = json!({"a": "scalar"});
        let patch = json!({"a": {"b": 1, "c": null}});
        let out = merge_patch(&original, &patch).expect("applies");
        assert_eq!(out, json!({"a": {"b": 1}}));
    }

    #[test]
    fn non_object_patch_is_rejected() {
        let err = merge_patch(&json!({}), &json!([1])).expect_err("not an object");
        assert_eq!(err.http_status(), 400);
    }
}
