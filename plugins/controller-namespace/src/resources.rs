//! Which namespaced resource types exist: the kernel's built-in ones plus the
//! namespaced custom resources of every CustomResourceDefinition.

use kerno_sdk::{Api, ApiResource, DynamicObject, KernelClient, ListParams, Result};
use serde_json::Value;

/// The kernel's built-in namespaced types: (group, version, kind, plural).
pub const BUILTIN_NAMESPACED: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Pod", "pods"),
    ("", "v1", "Service", "services"),
    ("", "v1", "Endpoints", "endpoints"),
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "Secret", "secrets"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    ("", "v1", "Event", "events"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("", "v1", "LimitRange", "limitranges"),
    ("", "v1", "ResourceQuota", "resourcequotas"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "ControllerRevision", "controllerrevisions"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
    ("networking.k8s.io", "v1", "Ingress", "ingresses"),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    ("coordination.k8s.io", "v1", "Lease", "leases"),
    ("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
    ),
];

/// Every namespaced resource type: built-in, then custom.
pub async fn namespaced_resources(client: &KernelClient) -> Result<Vec<ApiResource>> {
    let mut types: Vec<ApiResource> = BUILTIN_NAMESPACED
        .iter()
        .map(|(g, v, k, p)| ApiResource::new(*g, *v, *k, *p, true))
        .collect();
    let crds: Api<DynamicObject> = Api::dynamic(client.clone(), crd_resource(), None);
    for crd in crds.list(&ListParams::default()).await?.items {
        if let Some(resource) = custom_resource(&crd)
            && resource.namespaced
        {
            types.push(resource);
        }
    }
    Ok(types)
}

/// The CustomResourceDefinition type itself.
pub fn crd_resource() -> ApiResource {
    ApiResource::new(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
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

    #[test]
    fn custom_resource_uses_the_storage_version() {
        let crd: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1beta1", "served": true, "storage": false},
                             {"name": "v1", "served": true, "storage": true}]}
        }))
        .unwrap_or_default();
        let Some(r) = custom_resource(&crd) else {
            panic!("a resource");
        };
        assert_eq!(r.api_version(), "example.com/v1");
        assert_eq!(r.plural, "widgets");
        assert!(r.namespaced);
    }

    #[test]
    fn builtin_list_has_no_duplicates() {
        let mut plurals: Vec<_> = BUILTIN_NAMESPACED.iter().map(|t| (t.0, t.3)).collect();
        plurals.sort_unstable();
        let before = plurals.len();
        plurals.dedup();
        assert_eq!(before, plurals.len());
    }
}
