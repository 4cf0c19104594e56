//! JSON patch (RFC 6902).

use serde_json::Value;

use super::{PatchError, Result};

/// Applies a JSON patch (an array of operations) to `original`.
///
/// A patch that is not an array of valid operations is a decode error (400);
/// an operation that fails (missing path, failed `test`) is an operation
/// error (422), as in Kubernetes.
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::Decode(format!("invalid JSON patch: {e}")))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| PatchError::Operation(e.to_string()))?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1.25"},
                {"name": "side", "image": "busybox"}
            ]}}}
        })
    }

    #[test]
    fn replace_add_remove() {
        let patch = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/metadata/labels/tier", "value": "front"},
            {"op": "remove", "path": "/spec/template/spec/containers/1"},
            {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "x", "image": "y"}}
        ]);
        let out = json_patch(&deployment(), &patch).expect("patch applies");
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(out["metadata"]["labels"]["tier"], "front");
        let containers = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("list");
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[1]["name"], "x");
    }

    #[test]
    fn test_operation_failure_is_422() {
        let patch = json!([
            {"op": "test", "path": "/spec/replicas", "value": 2},
            {"op": "replace", "path": "/spec/replicas", "value": 3}
        ]);
        let err = json_patch(&deployment(), &patch).expect_err("test fails");
        assert_eq!(err.http_status(), 422);
        assert!(matches!(err, PatchError::Operation(_)));
    }

    #[test]
    fn missing_path_fails() {
        let patch = json!([{"op": "remove", "path": "/spec/nothing"}]);
        let err = json_patch(&deployment(), &patch).expect_err("no such path");
        assert_eq!(err.http_status(), 422);
    }

    #[test]
    fn malformed_patch_is_400() {
        for patch in [
            json!({"op": "add"}),
            json!([{"op": "frobnicate", "path": "/a"}]),
        ] {
            let err = json_patch(&deployment(), &patch).expect_err("malformed");
            assert_eq!(err.http_status(), 400, "{patch}");
        }
    }
}
