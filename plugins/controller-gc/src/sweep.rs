//! One step of garbage collection for one object: as an owner being deleted
//! (foreground or orphan), and as a dependent whose owners may be gone.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kerno_sdk::{
    Api, ApiResource, DeleteParams, DynamicObject, Error, ObjectKey, Patch, PatchParams,
};
use serde_json::{Value, json};

use crate::graph::{FOREGROUND, Graph, Item, ORPHAN, OwnerState, deleting_with, owner_refs};

/// Our name in `managedFields`.
const FIELD_MANAGER: &str = "kerno-controller-gc";

/// Why a step failed; the item is retried with back-off.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A kernel call failed.
    #[error("kernel: {0}")]
    Kernel(#[from] Error),
}

/// Handles one object; `Ok(true)` asks to look at it again later (an owner
/// still waiting for its dependents).
pub async fn process(graph: &Graph, item: &Item) -> Result<bool, SweepError> {
    let Some(watched) = graph.types.get(item.type_index) else {
        return Ok(false);
    };
    let Some(obj) = watched.store.get(&item.key) else {
        // Gone: its dependents were queued by its deletion.
        return Ok(false);
    };
    let api = namespaced_api(&watched.api, &watched.resource, &item.key);
    if deleting_with(&obj, ORPHAN) {
        orphan_dependents(graph, &obj).await?;
        remove_finalizer(&api, &obj, ORPHAN).await?;
        return Ok(false);
    }
    if deleting_with(&obj, FOREGROUND) {
        let uid = obj.metadata.uid.clone().unwrap_or_default();
        let blocking = graph
            .dependents(&uid)
            .into_iter()
            .filter(|(_, d)| blocks(d, &uid))
            .count();
        if blocking > 0 {
            // Its dependents are deleted as dependents of a waiting owner
            // (they were queued with its change); wait for them.
            tracing::debug!(owner = %item.key, blocking, "waiting for dependents");
            return Ok(true);
        }
        remove_finalizer(&api, &obj, FOREGROUND).await?;
        return Ok(false);
    }
    if obj.metadata.deletion_timestamp.is_some() || owner_refs(&obj).is_empty() {
        return Ok(false);
    }
    collect_dependent(graph, &api, &obj).await?;
    Ok(false)
}

/// Decides the fate of an object with owners: kept with fewer references
/// while some owner lives, else deleted.
async fn collect_dependent(
    graph: &Graph,
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
) -> Result<(), SweepError> {
    let namespace = obj.metadata.namespace.as_deref().filter(|n| !n.is_empty());
    let mut solid = Vec::new();
    let mut dangling = Vec::new();
    let mut waiting = Vec::new();
    for owner in owner_refs(obj) {
        match graph.owner_state(owner, namespace).await? {
            OwnerState::Solid => solid.push(owner.clone()),
            OwnerState::Absent => dangling.push(owner.clone()),
            OwnerState::WaitingForDependents => waiting.push(owner.clone()),
        }
    }
    let name = obj.metadata.name.clone().unwrap_or_default();
    if !solid.is_empty() {
        if dangling.is_empty() && waiting.is_empty() {
            return Ok(());
        }
        // A live owner keeps it; only the references to gone or
        // foreground-deleting owners go.
        let gone: Vec<&str> = dangling
            .iter()
            .chain(&waiting)
            .map(|o| o.uid.as_str())
            .collect();
        tracing::info!(object = %name, ?gone, "removing references to deleted owners");
        return remove_owner_refs(api, obj, &gone).await;
    }
    // Dependents of a foreground owner that have dependents of their own go
    // in the foreground too, so the chain is removed bottom-up.
    let has_dependents = !graph
        .dependents(obj.metadata.uid.as_deref().unwrap_or_default())
        .is_empty();
    let policy = if !waiting.is_empty() && has_dependents {
        "Foreground"
    } else {
        "Background"
    };
    tracing::info!(object = %name, policy, "deleting object whose owners are gone");
    let dp = DeleteParams {
        propagation_policy: Some(policy.into()),
        resource_version: obj.metadata.resource_version.clone(),
        ..DeleteParams::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes the references to `owner` from all its dependents.
async fn orphan_dependents(graph: &Graph, owner: &DynamicObject) -> Result<(), SweepError> {
    let uid = owner.metadata.uid.as_deref().unwrap_or_default();
    for (i, dependent) in graph.dependents(uid) {
        let watched = &graph.types[i];
        let key = ObjectKey::of(dependent.as_ref());
        let api = namespaced_api(&watched.api, &watched.resource, &key);
        remove_owner_refs(&api, &dependent, &[uid]).await?;
    }
    Ok(())
}

/// Whether `dependent` blocks the foreground deletion of the owner `uid`.
fn blocks(dependent: &DynamicObject, uid: &str) -> bool {
    owner_refs(dependent)
        .iter()
        .any(|r| r.uid == uid && r.block_owner_deletion == Some(true))
}

/// Patches `obj`'s owner references without those to `uids`, at the
/// revision we judged (a concurrent change makes it fail and retry).
async fn remove_owner_refs(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    uids: &[&str],
) -> Result<(), SweepError> {
    let kept: Vec<&OwnerReference> = owner_refs(obj)
        .iter()
        .filter(|r| !uids.contains(&r.uid.as_str()))
        .collect();
    let refs = if kept.is_empty() {
        Value::Null
    } else {
        json!(kept)
    };
    let patch = json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.metadata.resource_version,
    }});
    patch_meta(api, obj, patch).await
}

/// Removes `finalizer` from `obj`, at the revision we judged.
async fn remove_finalizer(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    finalizer: &str,
) -> Result<(), SweepError> {
    let kept: Vec<&String> = obj
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .collect();
    let patch = json!({"metadata": {
        "finalizers": if kept.is_empty() { Value::Null } else { json!(kept) },
        "resourceVersion": obj.metadata.resource_version,
    }});
    tracing::info!(object = ?obj.metadata.name, finalizer, "removing finalizer");
    patch_meta(api, obj, patch).await
}

async fn patch_meta(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    patch: Value,
) -> Result<(), SweepError> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    match api.patch(&name, &pp, &Patch::Merge(patch)).await {
        Ok(_) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A handle addressing `key`'s namespace.
fn namespaced_api(
    all: &Api<DynamicObject>,
    resource: &ApiResource,
    key: &ObjectKey,
) -> Api<DynamicObject> {
    Api::dynamic(
        all.client().clone(),
        resource.clone(),
        key.namespace.as_deref(),
    )
}

/// The resource type a CRD defines, at its storage version (else the first
/// served one).
pub fn custom_resource(crd: &DynamicObject) -> Option<ApiResource> {
    let spec = crd.data.get("spec")?;
    let text = |ptr: &str| spec.pointer(ptr).and_then(Value::as_str);
    let versions = spec.get("versions")?.as_array()?;
    let version = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .or_else(|| {
            versions
                .iter()
                .find(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        })?
        .get("name")?
        .as_str()?;
    Some(ApiResource::new(
        text("/group")?,
        version,
        text("/names/kind")?,
        text("/names/plural")?,
        text("/scope")? == "Namespaced",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dependent(refs: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({"metadata": {"name": "d", "ownerReferences": refs}}))
            .unwrap_or_default()
    }

    #[test]
    fn only_blocking_references_block() {
        let d = dependent(json!([
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "u1", "blockOwnerDeletion": true},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "u2"}
        ]));
        assert!(blocks(&d, "u1"));
        assert!(!blocks(&d, "u2"));
        assert!(!blocks(&d, "u3"));
    }

    #[test]
    fn custom_resource_of_a_cluster_scoped_crd() {
        let crd: DynamicObject = serde_json::from_value(json!({
            "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": "Cluster",
                "names": {"plural": "gadgets", "kind": "Gadget"},
                "versions": [{"name": "v1", "served": true, "storage": true}]}
        }))
        .unwrap_or_default();
        let Some(r) = custom_resource(&crd) else {
            panic!("a resource");
        };
        assert_eq!(r.kind, "Gadget");
        assert!(!r.namespaced);
    }
}
