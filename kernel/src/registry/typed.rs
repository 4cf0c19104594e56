//! [`TypedStrategy`]: the strategy of a built-in type, backed by its Rust
//! type (`k8s-openapi` or our own serde struct) for decoding, unknown-field
//! detection and OpenAPI, plus per-type hooks for defaulting, validation,
//! table rows and field selectors.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::validation::{NameRule, validate_object_meta};
use super::{Column, Strategy, tables};
use crate::error::FieldError;

/// Builds one table row for an object at a given time (for AGE cells).
pub type RowFn = fn(&Value, DateTime<Utc>) -> Vec<Value>;

/// A field usable in field selectors: its selector name, the JSON pointer
/// of its value and the value shown when the field is absent (Kubernetes
/// selects on the zero value of absent fields).
#[derive(Clone, Copy, Debug)]
pub struct SelectableField {
    /// Selector name, e.g. `spec.nodeName`.
    pub name: &'static str,
    /// JSON pointer into the object, e.g. `/spec/nodeName`.
    pub pointer: &'static str,
    /// Value when absent: `""`, `"false"`, `"0"`.
    pub absent: &'static str,
}

/// The type-specific parts of a [`TypedStrategy`].
#[derive(Clone, Copy)]
pub struct Hooks {
    /// How object names are validated.
    pub name_rule: NameRule,
    /// Fills in defaults.
    pub default: fn(&mut Value),
    /// Type-specific validation (metadata is checked generically).
    pub validate: fn(&Value, Option<&Value>) -> Vec<FieldError>,
    /// Table columns.
    pub columns: fn() -> Vec<Column>,
    /// Table row.
    pub row: RowFn,
    /// Extra field selectors.
    pub fields: &'static [SelectableField],
}

fn no_default(_: &mut Value) {}

fn no_validation(_: &Value, _: Option<&Value>) -> Vec<FieldError> {
    Vec::new()
}

impl Hooks {
    /// Hooks that only check metadata, with a NAME AGE table.
    pub fn new(name_rule: NameRule) -> Self {
        Self {
            name_rule,
            default: no_default,
            validate: no_validation,
            columns: tables::name_age_columns,
            row: tables::name_age_row,
            fields: &[],
        }
    }

    /// With a defaulting function.
    pub fn default(mut self, f: fn(&mut Value)) -> Self {
        self.default = f;
        self
    }

    /// With a validation function.
    pub fn validate(mut self, f: fn(&Value, Option<&Value>) -> Vec<FieldError>) -> Self {
        self.validate = f;
        self
    }

    /// With table columns and rows.
    pub fn table(mut self, columns: fn() -> Vec<Column>, row: RowFn) -> Self {
        self.columns = columns;
        self.row = row;
        self
    }

    /// With extra field selectors.
    pub fn fields(mut self, fields: &'static [SelectableField]) -> Self {
        self.fields = fields;
        self
    }
}

/// The strategy of a type with a Rust representation `T`.
pub struct TypedStrategy<T> {
    namespaced: bool,
    hooks: Hooks,
    field_names: Vec<&'static str>,
    _type: PhantomData<fn() -> T>,
}

impl<T> TypedStrategy<T> {
    /// A strategy for a namespaced or cluster-scoped type with `hooks`.
    pub fn new(namespaced: bool, hooks: Hooks) -> Self {
        Self {
            namespaced,
            hooks,
            field_names: hooks.fields.iter().map(|f| f.name).collect(),
            _type: PhantomData,
        }
    }

    /// The row for `obj` as seen at `now` (tests pin the clock).
    pub fn row_at(&self, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
        (self.hooks.row)(obj, now)
    }
}

/// Paths of fields present (and not null) in `input` but absent from
/// `decoded`, the input after a round trip through its Rust type. Paths are
/// written as Kubernetes reports unknown fields: `spec.containers[0].foo`.
pub fn unknown_fields(input: &Value, decoded: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(input, decoded, String::new(), &mut out);
    out
}

fn walk(input: &Value, decoded: &Value, path: String, out: &mut Vec<String>) {
    match (input, decoded) {
        (Value::Object(i), Value::Object(d)) => {
            for (k, v) in i {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match d.get(k) {
                    Some(dv) => walk(v, dv, p, out),
                    // A null is the same as absent for an optional field, so
                    // it cannot be told from a known field: let it pass.
                    None if v.is_null() => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(i), Value::Array(d)) => {
            for (n, (iv, dv)) in i.iter().zip(d).enumerate() {
                walk(iv, dv, format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn resolve<'a>(mut schema: &'a Value, root: &'a Value) -> &'a Value {
    // Bounded: a `$ref` chain longer than this would be a cycle.
    for _ in 0..16 {
        let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        match r
            .strip_prefix("#/")
            .map(|p| format!("/{p}"))
            .and_then(|p| root.pointer(&p))
        {
            Some(next) => schema = next,
            None => break,
        }
    }
    schema
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => true,
    }
}

/// The path of the first value in `obj` whose JSON type contradicts the
/// (schemars, `$ref`-linked) `root` schema: where a decode error happened.
pub fn locate_type_error(obj: &Value, root: &Value) -> Option<String> {
    find_mismatch(obj, root, root, String::new())
}

fn find_mismatch(v: &Value, schema: &Value, root: &Value, path: String) -> Option<String> {
    let schema = resolve(schema, root);
    if v.is_null() {
        return None;
    }
    let shown = || {
        if path.is_empty() {
            "<root>".to_owned()
        } else {
            path.clone()
        }
    };
    if schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return (!(v.is_number() || v.is_string())).then(shown);
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str)
        && !type_matches(ty, v)
    {
        return Some(shown());
    }
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(cs) = props.and_then(|ps| ps.get(k)).or(extra)
                    && let Some(found) = find_mismatch(child, cs, root, p)
                {
                    return Some(found);
                }
            }
            None
        }
        Value::Array(a) => {
            let items = schema.get("items")?;
            a.iter()
                .enumerate()
                .find_map(|(i, child)| find_mismatch(child, items, root, format!("{path}[{i}]")))
        }
        _ => None,
    }
}

/// The value of `metadata.name` / `metadata.namespace` selectors.
pub fn meta_field_value(obj: &Value, field: &str) -> Option<String> {
    let meta = obj.get("metadata")?;
    let key = match field {
        "metadata.name" => "name",
        "metadata.namespace" => "namespace",
        _ => return None,
    };
    Some(
        meta.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
    )
}

/// A selectable field's value as a string, as Kubernetes formats it.
pub fn selectable_value(obj: &Value, field: &SelectableField) -> String {
    match obj.pointer(field.pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => field.absent.to_owned(),
        Some(other) => other.to_string(),
    }
}

impl<T> Strategy for TypedStrategy<T>
where
    T: DeserializeOwned + Serialize + schemars::JsonSchema + 'static,
{
    fn check_schema(&self, obj: &Value) -> Result<Vec<String>, String> {
        let decoded: T = serde_json::from_value(obj.clone()).map_err(|e| {
            // serde's message has no location; find it through the schema.
            let mut generator = schemars::SchemaGenerator::default();
            let root = generator.root_schema_for::<T>().to_value();
            match locate_type_error(obj, &root) {
                Some(path) => format!("{path}: {e}"),
                None => e.to_string(),
            }
        })?;
        let back = serde_json::to_value(&decoded).map_err(|e| e.to_string())?;
        Ok(unknown_fields(obj, &back))
    }

    fn default(&self, obj: &mut Value) {
        (self.hooks.default)(obj);
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errs = validate_object_meta(obj, old, self.namespaced, self.hooks.name_rule);
        errs.extend((self.hooks.validate)(obj, old));
        errs
    }

    fn columns(&self) -> Vec<Column> {
        (self.hooks.columns)()
    }

    fn row(&self, obj: &Value) -> Vec<Value> {
        (self.hooks.row)(obj, Utc::now())
    }

    fn selectable_fields(&self) -> &[&str] {
        &self.field_names
    }

    fn openapi_schema(
        &self,
        generator: &mut schemars::SchemaGenerator,
    ) -> Option<schemars::Schema> {
        Some(generator.subschema_for::<T>())
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        if let Some(v) = meta_field_value(obj, field) {
            return Some(v);
        }
        self.hooks
            .fields
            .iter()
            .find(|f| f.name == field)
            .map(|f| selectable_value(obj, f))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod};
    use serde_json::json;

    use super::*;

    fn pod_strategy() -> TypedStrategy<Pod> {
        TypedStrategy::new(true, Hooks::new(NameRule::Subdomain))
    }

    #[test]
    fn finds_unknown_fields_recursively() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "creationTimestamp": null, "bogus": 1},
            "spec": {
                "containers": [{"name": "c", "image": "busybox", "foo": true,
                    "ports": [{"containerPort": 80, "bar": "x"}],
                    "resources": {"limits": {"cpu": 1, "memory": "64Mi"}},
                    "livenessProbe": {"httpGet": {"port": "http", "path": "/"}}}],
                "nodeName": null,
                "extra": {"x": 1}
            }
        });
        let unknown = pod_strategy().check_schema(&pod).unwrap_or_default();
        assert_eq!(
            unknown,
            vec![
                "metadata.bogus",
                "spec.containers[0].foo",
                "spec.containers[0].ports[0].bar",
                "spec.extra"
            ]
        );
    }

    #[test]
    fn maps_and_int_or_string_are_not_unknown() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"any.key": "v", "other": ""}});
        let s: TypedStrategy<ConfigMap> = TypedStrategy::new(true, Hooks::new(NameRule::Subdomain));
        assert_eq!(s.check_schema(&cm), Ok(vec![]));
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"app": "x"}},
                "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}},
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": []}}}});
        let s: TypedStrategy<Deployment> =
            TypedStrategy::new(true, Hooks::new(NameRule::Subdomain));
        assert_eq!(s.check_schema(&d), Ok(vec![]));
    }

    #[test]
    fn wrong_shape_is_a_decode_error() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": "nope"}});
        let err = pod_strategy().check_schema(&pod).err().unwrap_or_default();
        assert!(err.starts_with("spec.containers: invalid type"), "{err}");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": 1}},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": "80"}],
                "resources": {"limits": {"cpu": 1}}}]}});
        let err = pod_strategy().check_schema(&pod).err().unwrap_or_default();
        assert!(err.starts_with("metadata.labels.a: invalid type"), "{err}");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "x", "ports": [{"containerPort": "80"}],
                "resources": {"limits": {"cpu": 1}}}]}});
        let err = pod_strategy().check_schema(&pod).err().unwrap_or_default();
        assert!(
            err.starts_with("spec.containers[0].ports[0].containerPort: invalid type"),
            "{err}"
        );
        let wrong_kind = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "p"}});
        assert!(pod_strategy().check_schema(&wrong_kind).is_err());
    }

    #[test]
    fn openapi_schema_names_definitions_like_kubernetes() {
        let mut generator = schemars::SchemaGenerator::default();
        let schema = pod_strategy().openapi_schema(&mut generator);
        let text = serde_json::to_string(&schema).unwrap_or_default();
        assert!(text.contains("io.k8s.api.core.v1.Pod"), "{text}");
        assert!(
            generator
                .definitions()
                .contains_key("io.k8s.api.core.v1.PodSpec")
        );
    }

    #[test]
    fn field_values() {
        static FIELDS: &[SelectableField] = &[
            SelectableField {
                name: "spec.nodeName",
                pointer: "/spec/nodeName",
                absent: "",
            },
            SelectableField {
                name: "spec.unschedulable",
                pointer: "/spec/unschedulable",
                absent: "false",
            },
        ];
        let s: TypedStrategy<Pod> =
            TypedStrategy::new(true, Hooks::new(NameRule::Subdomain).fields(FIELDS));
        let obj = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}});
        assert_eq!(s.field_value(&obj, "spec.nodeName").as_deref(), Some("n1"));
        assert_eq!(
            s.field_value(&obj, "spec.unschedulable").as_deref(),
            Some("false")
        );
        assert_eq!(
            s.field_value(&obj, "metadata.namespace").as_deref(),
            Some("")
        );
        assert_eq!(s.field_value(&obj, "spec.other"), None);
        assert_eq!(
            s.selectable_fields(),
            &["spec.nodeName", "spec.unschedulable"]
        );
    }
}
