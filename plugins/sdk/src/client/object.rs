//! What the SDK needs to know about an object: where its type is served and
//! its metadata, for typed `k8s-openapi` resources and dynamic objects alike.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// Where a resource type is served: group, version, plural, kind, scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ApiResource {
    /// API group; empty for the core group.
    pub group: String,
    /// API version, for example `v1`.
    pub version: String,
    /// Kind, for example `ConfigMap`.
    pub kind: String,
    /// Plural resource name, for example `configmaps`.
    pub plural: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
}

impl ApiResource {
    /// A resource type served at `group/version` under `plural`.
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
        plural: impl Into<String>,
        namespaced: bool,
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
        }
    }

    /// The resource type of a `k8s-openapi` type.
    pub fn of<K: k8s_openapi::Resource>() -> Self
    where
        K::Scope: ScopeInfo,
    {
        Self::new(
            K::GROUP,
            K::VERSION,
            K::KIND,
            K::URL_PATH_SEGMENT,
            <K::Scope as ScopeInfo>::NAMESPACED,
        )
    }

    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Whether a `k8s-openapi` scope is namespaced.
pub trait ScopeInfo {
    /// True for namespaced resources.
    const NAMESPACED: bool;
}

impl ScopeInfo for k8s_openapi::NamespaceResourceScope {
    const NAMESPACED: bool = true;
}

impl ScopeInfo for k8s_openapi::ClusterResourceScope {
    const NAMESPACED: bool = false;
}

/// An object the informer, store and controller can handle: anything with
/// Kubernetes object metadata.
///
/// Implemented for every `k8s-openapi` resource and for [`DynamicObject`].
pub trait Resource: Clone + Send + Sync + 'static {
    /// The object's metadata.
    fn meta(&self) -> &ObjectMeta;
    /// The object's metadata, to change it.
    fn meta_mut(&mut self) -> &mut ObjectMeta;
}

impl<K> Resource for K
where
    K: k8s_openapi::Metadata<Ty = ObjectMeta> + Clone + Send + Sync + 'static,
{
    fn meta(&self) -> &ObjectMeta {
        self.metadata()
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        self.metadata_mut()
    }
}

/// Namespace and name of an object: the key of caches and work queues.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of a namespaced object.
    pub fn new(namespace: Option<&str>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.map(str::to_owned),
            name: name.into(),
        }
    }

    /// The key of `obj`.
    pub fn of<K: Resource>(obj: &K) -> Self {
        let meta = obj.meta();
        Self {
            namespace: meta.namespace.clone().filter(|n| !n.is_empty()),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for ObjectKey {
    /// `namespace/name`, or `name` for cluster-scoped objects (as client-go's
    /// `MetaNamespaceKeyFunc`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// An object of any type, for custom resources without a Rust type: typed
/// metadata plus every other field as JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DynamicObject {
    /// `apiVersion`.
    #[serde(
        rename = "apiVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub api_version: String,
    /// `kind`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// `metadata`.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Every other top-level field (`spec`, `status`, `data`, ...).
    #[serde(flatten)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl DynamicObject {
    /// A new object of `resource` named `name`.
    pub fn new(resource: &ApiResource, name: impl Into<String>) -> Self {
        Self {
            api_version: resource.api_version(),
            kind: resource.kind.clone(),
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            data: serde_json::Map::new(),
        }
    }

    /// Sets the namespace.
    pub fn within(mut self, namespace: impl Into<String>) -> Self {
        self.metadata.namespace = Some(namespace.into());
        self
    }

    /// Sets a top-level field such as `spec`.
    pub fn with(mut self, field: impl Into<String>, value: serde_json::Value) -> Self {
        self.data.insert(field.into(), value);
        self
    }
}

impl Resource for DynamicObject {
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};

    #[test]
    fn api_resource_of_builtin_types() {
        let cm = ApiResource::of::<ConfigMap>();
        assert_eq!(cm.group, "");
        assert_eq!(cm.plural, "configmaps");
        assert!(cm.namespaced);
        assert_eq!(cm.api_version(), "v1");
        let ns = ApiResource::of::<Namespace>();
        assert!(!ns.namespaced);
        let lease = ApiResource::of::<k8s_openapi::api::coordination::v1::Lease>();
        assert_eq!(lease.api_version(), "coordination.k8s.io/v1");
    }

    #[test]
    fn object_keys_display_like_client_go() {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("a".into());
        cm.metadata.namespace = Some("ns".into());
        assert_eq!(ObjectKey::of(&cm).to_string(), "ns/a");
        assert_eq!(ObjectKey::new(None, "node-1").to_string(), "node-1");
    }

    #[test]
    fn dynamic_object_round_trips_unknown_fields() {
        let json = serde_json::json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "d", "resourceVersion": "7"},
            "spec": {"size": 3}
        });
        let obj: DynamicObject = serde_json::from_value(json.clone()).unwrap_or_default();
        assert_eq!(obj.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(obj.data["spec"]["size"], 3);
        assert_eq!(serde_json::to_value(&obj).ok(), Some(json));
    }
}
