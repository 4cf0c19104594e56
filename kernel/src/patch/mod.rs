//! Patches and server-side apply, as pure functions over the Kubernetes JSON
//! encoding of objects: JSON patch (RFC 6902), JSON merge patch (RFC 7386),
//! strategic merge patch, and server-side apply with `metadata.managedFields`.

mod apply;
mod fieldset;
mod json;
mod managed_fields;
mod merge;
mod schema;
mod strategic;
mod typed;

pub use apply::{ApplyError, Conflict, FieldManager, Scope, apply, track_update};
pub use fieldset::FieldSet;
pub use json::json_patch;
pub use managed_fields::ManagedFieldsEntry;
pub use merge::merge_patch;
pub use schema::{ListKind, Schema};
pub use strategic::strategic_merge;

/// Why a patch could not be applied. Messages follow Kubernetes'.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    /// The patch is not valid JSON of the expected shape (400 BadRequest).
    #[error("{0}")]
    Decode(String),
    /// A JSON patch operation failed: bad path, failed `test` (422).
    #[error("{0}")]
    Operation(String),
    /// A strategic merge patch is malformed: bad directive, missing merge
    /// key, wrong types (400 BadRequest).
    #[error("{0}")]
    Strategic(String),
}

impl PatchError {
    /// The HTTP status Kubernetes answers with: 422 for failed JSON patch
    /// operations, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::Operation(_) => 422,
            PatchError::Decode(_) | PatchError::Strategic(_) => 400,
        }
    }
}

/// `Result` with [`PatchError`].
pub type Result<T, E = PatchError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::{Value, json};

    fn manager(name: &'static str) -> FieldManager<'static> {
        FieldManager {
            schema: Schema::builtin("", "Pod").expect("built-in"),
            manager: name,
            api_version: "v1",
            subresource: None,
            scope: Scope::MainResource,
            now: Utc
                .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                .single()
                .expect("valid time"),
        }
    }

    fn pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {
                "containers": [{
                    "name": "app", "image": "busybox:1.36",
                    "command": ["sleep", "3600"],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cache", "mountPath": "/cache"}]
                }],
                "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}]
            }
        })
    }

    /// Client-side `kubectl apply` then `kubectl apply --server-side`: the
    /// strategic patch applies, its changes are tracked, and a server-side
    /// apply of a different image then conflicts with the client-side
    /// applier.
    #[test]
    fn client_side_then_server_side_apply() {
        let csa = manager("kubectl-client-side-apply");
        let live = track_update(None, &pod(), &csa).expect("tracks create");

        // kubectl's patch dropping the cache volume and its mount.
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "app"}],
            "$setElementOrder/volumes": [{"name": "data"}],
            "containers": [{
                "$setElementOrder/volumeMounts": [{"mountPath": "/data"}],
                "name": "app",
                "volumeMounts": [{"$patch": "delete", "mountPath": "/cache"}]
            }],
            "volumes": [{"$patch": "delete", "name": "cache"}]
        }});
        let schema = Schema::builtin("", "Pod").expect("built-in");
        let patched = strategic_merge(&live, &patch, schema).expect("patch applies");
        let patched = track_update(Some(&live), &patched, &csa).expect("tracks patch");
        assert_eq!(
            patched["spec"]["volumes"],
            json!([{"name": "data", "emptyDir": {}}])
        );
        assert_eq!(
            patched["spec"]["containers"][0]["volumeMounts"],
            json!([{"name": "data", "mountPath": "/data"}])
        );
        let owned = &patched["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
        assert!(
            owned["f:volumes"].get("k:{\"name\":\"cache\"}").is_none(),
            "{owned}"
        );
        assert!(
            owned["f:volumes"].get("k:{\"name\":\"data\"}").is_some(),
            "{owned}"
        );

        let mut config = pod();
        config["spec"]["containers"][0]["image"] = json!("busybox:1.37");
        config["spec"]["containers"][0]
            .as_object_mut()
            .expect("container")
            .shift_remove("volumeMounts");
        config["spec"]
            .as_object_mut()
            .expect("spec")
            .shift_remove("volumes");
        let err = apply(Some(&patched), &config, &manager("kubectl"), false).expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .spec.containers[name=\"app\"].image"
        );
        let forced = apply(Some(&patched), &config, &manager("kubectl"), true).expect("forced");
        assert_eq!(forced["spec"]["containers"][0]["image"], "busybox:1.37");
        // Still owned by the client-side applier, so not removed.
        assert_eq!(forced["spec"]["volumes"][0]["name"], "data");
    }

    #[test]
    fn the_three_patch_types_differ_on_lists() {
        let schema = Schema::builtin("", "Pod").expect("built-in");
        let add = json!({"spec": {"volumes": [{"name": "new", "emptyDir": {}}]}});
        let merged = merge_patch(&pod(), &add).expect("merge patch");
        assert_eq!(merged["spec"]["volumes"].as_array().map(Vec::len), Some(1));
        let strategic = strategic_merge(&pod(), &add, schema).expect("strategic");
        assert_eq!(
            strategic["spec"]["volumes"].as_array().map(Vec::len),
            Some(3)
        );
        let json_ops = json!([{"op": "add", "path": "/spec/volumes/-", "value": {"name": "new"}}]);
        let patched = json_patch(&pod(), &json_ops).expect("json patch");
        assert_eq!(patched["spec"]["volumes"][2]["name"], "new");
    }
}
