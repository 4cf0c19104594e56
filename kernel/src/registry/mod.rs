//! The registry: every resource type the kernel serves, described once.
//!
//! A [`ResourceType`] says where a type lives in the API (group, version,
//! plural, scope), what it is called (kind, singular, short names), which
//! subresources it has, and carries a [`Strategy`] with its type-specific
//! behaviour: schema check, defaulting, validation, table columns and field
//! selectors. Everything generic (metadata, resourceVersion, generation,
//! status/spec split) lives in the service layer, not here.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::error::FieldError;

/// Paths used by the `scale` subresource, as in a CRD's `subresources.scale`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    /// JSON path of the desired replicas, e.g. `.spec.replicas`.
    pub spec_replicas: String,
    /// JSON path of the observed replicas, e.g. `.status.replicas`.
    pub status_replicas: String,
    /// JSON path of the label selector string in status, if any.
    pub label_selector: Option<String>,
}

/// One column of a server-side table (`kubectl get` output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Header, e.g. `NAME` is shown for `Name`.
    pub name: String,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    pub type_: String,
    /// OpenAPI format: `name` for the name column, otherwise usually empty.
    pub format: String,
    /// Shown by `kubectl explain`-like tools.
    pub description: String,
    /// 0 for default columns, 1 for those only shown with `-o wide`.
    pub priority: i32,
}

impl Column {
    /// A column with the given name, type and priority.
    pub fn new(name: &str, type_: &str, priority: i32) -> Self {
        Self {
            name: name.into(),
            type_: type_.into(),
            format: if name == "Name" {
                "name".into()
            } else {
                String::new()
            },
            description: String::new(),
            priority,
        }
    }
}

/// Type-specific behaviour of a resource.
pub trait Strategy: Send + Sync {
    /// Checks that `obj` decodes as this type. Returns the paths of fields the
    /// type does not know (reported or refused according to
    /// `fieldValidation`), or a decode error message for a wrong JSON shape
    /// (a string where an object belongs, ...).
    fn check_schema(&self, obj: &Value) -> Result<Vec<String>, String>;

    /// Fills in defaults the way Kubernetes does for the fields users touch.
    fn default(&self, _obj: &mut Value) {}

    /// Validates the object; `old` is the stored object on update. Immutable
    /// fields are checked against `old`.
    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError>;

    /// The table columns, name first, then as Kubernetes shows them.
    fn columns(&self) -> Vec<Column>;

    /// One cell per column for one object.
    fn row(&self, obj: &Value) -> Vec<Value>;

    /// Field selector names this type supports beyond `metadata.name` and
    /// `metadata.namespace`.
    fn selectable_fields(&self) -> &[&str] {
        &[]
    }

    /// The OpenAPI (v3-style JSON schema) of this type. Built-in types add
    /// their definitions to `generator` and return a `$ref` to them; custom
    /// resources return their inline `openAPIV3Schema`. `None` when unknown.
    fn openapi_schema(
        &self,
        _generator: &mut schemars::SchemaGenerator,
    ) -> Option<schemars::Schema> {
        None
    }

    /// The value of a selectable field (including `metadata.name` and
    /// `metadata.namespace`) for field selectors.
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        let meta = obj.get("metadata")?;
        match field {
            "metadata.name" => meta.get("name").and_then(Value::as_str).map(str::to_owned),
            "metadata.namespace" => Some(
                meta.get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            _ => None,
        }
    }
}

/// One served resource type.
#[derive(Clone)]
pub struct ResourceType {
    /// API group, empty for core.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural, lower-case: `deployments`.
    pub plural: String,
    /// Singular, lower-case: `deployment`.
    pub singular: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names for kubectl, e.g. `deploy`.
    pub short_names: Vec<String>,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// Verbs advertised in discovery.
    pub verbs: Vec<String>,
    /// Whether a `status` subresource exists (the main resource then ignores
    /// status changes and `/status` ignores everything else).
    pub status_subresource: bool,
    /// The `scale` subresource, if any.
    pub scale: Option<ScalePaths>,
    /// Type-specific behaviour.
    pub strategy: Arc<dyn Strategy>,
}

impl std::fmt::Debug for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ResourceType({}/{} {})",
            self.group, self.version, self.plural
        )
    }
}

impl ResourceType {
    /// `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store key prefix of all objects of this type, ending in `/`:
    /// `/registry/<group or core>/<plural>/`.
    pub fn key_prefix(&self) -> String {
        let group = if self.group.is_empty() {
            "core"
        } else {
            &self.group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}{ns}/{name}", self.key_prefix()),
            None => format!("{}{name}", self.key_prefix()),
        }
    }

    /// The default verbs of a resource served by the kernel.
    pub fn default_verbs() -> Vec<String> {
        [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }
}

/// The set of served types, built-in and custom. Lookups are cheap; custom
/// resources are added and removed while the kernel runs.
#[derive(Default)]
pub struct Registry {
    inner: RwLock<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    /// Keyed by (group, version, plural).
    types: HashMap<(String, String, String), Arc<ResourceType>>,
    /// Registration order, for stable discovery output.
    order: Vec<(String, String, String)>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a type.
    pub fn register(&self, rt: ResourceType) -> Arc<ResourceType> {
        let key = (rt.group.clone(), rt.version.clone(), rt.plural.clone());
        let rt = Arc::new(rt);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.types.insert(key.clone(), rt.clone()).is_none() {
            inner.order.push(key);
        }
        rt
    }

    /// Removes a type (a deleted CRD version).
    pub fn unregister(&self, group: &str, version: &str, plural: &str) {
        let key = (group.to_owned(), version.to_owned(), plural.to_owned());
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.types.remove(&key);
        inner.order.retain(|k| k != &key);
    }

    /// Finds a type by group, version and plural.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .types
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
            .cloned()
    }

    /// Finds a type by group, version and kind.
    pub fn by_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.all()
            .into_iter()
            .find(|rt| rt.group == group && rt.version == version && rt.kind == kind)
    }

    /// Every type, in registration order.
    pub fn all(&self) -> Vec<Arc<ResourceType>> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .order
            .iter()
            .filter_map(|k| inner.types.get(k).cloned())
            .collect()
    }
}

pub mod builtin;
pub mod crd;
pub mod defaults;
pub mod fields;
pub mod jsonpath;
pub mod plugin;
pub mod pod_table;
pub mod rbac;
pub mod rules;
pub mod rules_core;
pub mod schema;
pub mod tables;
pub mod tables_apps;
pub mod tables_more;
pub mod typed;
pub mod validation;
