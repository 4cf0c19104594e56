//! The owner→dependents graph: one informer cache per watched resource type,
//! each indexed by the uids its objects name in `ownerReferences`.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kerno_sdk::informer::{Informer, Store};
use kerno_sdk::{Api, ApiResource, DynamicObject, Error, KernelClient, ListParams, ObjectKey};

/// The index of dependents by owner uid.
pub const OWNER_INDEX: &str = "owner-uid";

/// The finalizer that makes an owner wait for its dependents' deletion.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer that makes an owner release its dependents.
pub const ORPHAN: &str = "orphan";

/// One watched resource type.
pub struct Watched {
    /// Where it is served.
    pub resource: ApiResource,
    /// Objects of this type in every namespace.
    pub api: Api<DynamicObject>,
    /// Their cache.
    pub store: Store<DynamicObject>,
}

/// An object of a watched type: the work queue's key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Item {
    /// Index into [`Graph::types`].
    pub type_index: usize,
    /// Namespace and name.
    pub key: ObjectKey,
}

/// The state of an owner named by a dependent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// It does not exist, or an object of another uid has its name.
    Absent,
    /// It is being deleted in the foreground: it waits for its dependents.
    WaitingForDependents,
    /// It exists (or cannot be checked, which must not delete anything).
    Solid,
}

/// All watched types.
pub struct Graph {
    /// The types, in the order their informers were started.
    pub types: Vec<Watched>,
}

/// Starts an informer for `resource` indexed by owner uid.
pub fn watch(client: &KernelClient, resource: ApiResource) -> (Watched, Informer<DynamicObject>) {
    let api: Api<DynamicObject> = Api::dynamic(client.clone(), resource.clone(), None);
    let informer = Informer::builder(api.clone(), ListParams::default())
        .index(OWNER_INDEX, |obj: &DynamicObject| {
            owner_refs(obj).iter().map(|r| r.uid.clone()).collect()
        })
        .channel_capacity(16 * 1024)
        .spawn();
    let store = informer.store();
    (
        Watched {
            resource,
            api,
            store,
        },
        informer,
    )
}

/// The owner references of `obj`.
pub fn owner_refs(obj: &DynamicObject) -> &[OwnerReference] {
    obj.metadata.owner_references.as_deref().unwrap_or_default()
}

/// The API group of an `apiVersion`.
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

/// Whether `obj` is being deleted and holds `finalizer`.
pub fn deleting_with(obj: &DynamicObject, finalizer: &str) -> bool {
    obj.metadata.deletion_timestamp.is_some()
        && obj
            .metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|x| x == finalizer))
}

impl Graph {
    /// The watched type an owner reference points at.
    pub fn type_of(&self, owner: &OwnerReference) -> Option<usize> {
        let group = group_of(&owner.api_version);
        self.types
            .iter()
            .position(|t| t.resource.group == group && t.resource.kind == owner.kind)
    }

    /// Every cached object naming `uid` as an owner.
    pub fn dependents(&self, uid: &str) -> Vec<(usize, Arc<DynamicObject>)> {
        let mut out = Vec::new();
        for (i, t) in self.types.iter().enumerate() {
            for obj in t.store.by_index(OWNER_INDEX, uid) {
                out.push((i, obj));
            }
        }
        out
    }

    /// The queue item of an owner named by a dependent in `namespace`.
    pub fn owner_item(&self, owner: &OwnerReference, namespace: Option<&str>) -> Option<Item> {
        let type_index = self.type_of(owner)?;
        let namespaced = self.types[type_index].resource.namespaced;
        Some(Item {
            type_index,
            key: ObjectKey::new(namespace.filter(|_| namespaced), owner.name.clone()),
        })
    }

    /// The state of the owner `owner` of a dependent in `namespace`: from
    /// the cache when it agrees, else from the kernel (the cache may lag a
    /// just-created owner; deleting on a stale cache would be wrong).
    pub async fn owner_state(
        &self,
        owner: &OwnerReference,
        namespace: Option<&str>,
    ) -> Result<OwnerState, Error> {
        let Some(item) = self.owner_item(owner, namespace) else {
            // A type we do not watch: never delete on its account.
            return Ok(OwnerState::Solid);
        };
        let watched = &self.types[item.type_index];
        if let Some(cached) = watched.store.get(&item.key)
            && cached.metadata.uid.as_deref() == Some(owner.uid.as_str())
        {
            return Ok(state_of(&cached));
        }
        let api: Api<DynamicObject> = Api::dynamic(
            watched.api.client().clone(),
            watched.resource.clone(),
            item.key.namespace.as_deref(),
        );
        match api.get_opt(&item.key.name).await? {
            Some(live) if live.metadata.uid.as_deref() == Some(owner.uid.as_str()) => {
                Ok(state_of(&live))
            }
            _ => Ok(OwnerState::Absent),
        }
    }
}

fn state_of(owner: &DynamicObject) -> OwnerState {
    if deleting_with(owner, FOREGROUND) {
        OwnerState::WaitingForDependents
    } else {
        OwnerState::Solid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_of_api_versions() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("example.com/v1beta1"), "example.com");
    }

    #[test]
    fn foreground_owner_waits_for_dependents() {
        let mut owner = DynamicObject::default();
        assert_eq!(state_of(&owner), OwnerState::Solid);
        owner.metadata.finalizers = Some(vec![FOREGROUND.into()]);
        // Without a deletionTimestamp the finalizer means nothing yet.
        assert_eq!(state_of(&owner), OwnerState::Solid);
        owner = serde_json::from_value(serde_json::json!({"metadata": {
            "finalizers": [FOREGROUND], "deletionTimestamp": "2025-01-01T00:00:00Z"}}))
        .unwrap_or_default();
        assert_eq!(state_of(&owner), OwnerState::WaitingForDependents);
    }
}
