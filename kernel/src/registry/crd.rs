//! Custom resources: validation and defaulting of CustomResourceDefinitions,
//! the [`ResourceType`]s a CRD serves ([`types_from_crd`]) with their
//! [`SchemaStrategy`], and the status Kubernetes sets on an accepted CRD.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::validation::{
    NameRule, dns1035_label, dns1123_label, dns1123_subdomain, invalid_all, invalid_raw,
    validate_object_meta,
};
use super::{Column, ResourceType, ScalePaths, Strategy, jsonpath, schema, tables};
use crate::error::FieldError;

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// CRD defaults: `singular`, `listKind`, conversion strategy.
pub fn default_crd(obj: &mut Value) {
    let kind = s(obj, "/spec/names/kind").to_owned();
    let Some(names) = obj
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if !kind.is_empty() {
        if names
            .get("singular")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if names
            .get("listKind")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
        && spec.get("conversion").is_none_or(Value::is_null)
    {
        spec.insert("conversion".into(), json!({"strategy": "None"}));
    }
}

/// CRD validation with apiextensions' messages.
pub fn validate_crd(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(old) = old {
        for (field, ptr) in [("spec.group", "/spec/group"), ("spec.scope", "/spec/scope")] {
            let (new_v, old_v) = (s(obj, ptr), s(old, ptr));
            if !old_v.is_empty() && new_v != old_v {
                errs.push(FieldError::invalid(
                    field,
                    &json!(new_v),
                    "field is immutable",
                ));
            }
        }
    }
    let group = s(obj, "/spec/group");
    let plural = s(obj, "/spec/names/plural");
    let name = s(obj, "/metadata/name");
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            &json!(name),
            r#"must be spec.names.plural+"."+spec.group"#,
        ));
    }
    if group.is_empty() {
        errs.push(FieldError::required("spec.group"));
    } else {
        errs.extend(invalid_all("spec.group", group, dns1123_subdomain(group)));
        if !group.contains('.') {
            errs.push(FieldError::invalid(
                "spec.group",
                &json!(group),
                "should be a domain with at least one dot",
            ));
        }
    }
    match obj.pointer("/spec/scope") {
        Some(Value::String(sc)) if sc == "Cluster" || sc == "Namespaced" => {}
        Some(v) if !v.is_null() && v != "" => errs.push(FieldError::not_supported(
            "spec.scope",
            v,
            &["Cluster", "Namespaced"],
        )),
        _ => errs.push(FieldError::required("spec.scope")),
    }
    for (field, ptr) in [
        ("spec.names.plural", "/spec/names/plural"),
        ("spec.names.singular", "/spec/names/singular"),
    ] {
        let v = s(obj, ptr);
        if v.is_empty() {
            if field.ends_with("plural") {
                errs.push(FieldError::required(field));
            }
        } else {
            errs.extend(invalid_all(field, v, dns1123_label(v)));
        }
    }
    for (field, ptr) in [
        ("spec.names.kind", "/spec/names/kind"),
        ("spec.names.listKind", "/spec/names/listKind"),
    ] {
        let v = s(obj, ptr);
        if v.is_empty() {
            errs.push(FieldError::required(field));
        } else {
            errs.extend(invalid_all(
                field,
                &v.to_lowercase(),
                dns1035_label(&v.to_lowercase()),
            ));
        }
    }
    let versions = arr(obj, "/spec/versions");
    if versions.is_empty() {
        errs.push(FieldError::required("spec.versions"));
    } else {
        let storage = versions
            .iter()
            .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .count();
        let shown = "[]apiextensions.CustomResourceDefinitionVersion{...}";
        if storage != 1 {
            errs.push(invalid_raw(
                "spec.versions",
                shown,
                "must have exactly one version marked as storage version",
            ));
        }
        if !versions
            .iter()
            .any(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        {
            errs.push(invalid_raw(
                "spec.versions",
                shown,
                "must have at least one version marked as served",
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, v) in versions.iter().enumerate() {
        let base = format!("spec.versions[{i}]");
        let vname = s(v, "/name");
        if vname.is_empty() {
            errs.push(FieldError::required(format!("{base}.name")));
        } else {
            errs.extend(invalid_all(
                &format!("{base}.name"),
                vname,
                dns1035_label(vname),
            ));
            if !seen.insert(vname) {
                errs.push(FieldError::duplicate(format!("{base}.name"), &json!(vname)));
            }
        }
        match v
            .pointer("/schema/openAPIV3Schema")
            .filter(|x| x.is_object())
        {
            None => errs.push(FieldError {
                reason: "FieldValueRequired",
                field: format!("{base}.schema.openAPIV3Schema"),
                message: format!(
                    "{base}.schema.openAPIV3Schema: Required value: schemas are required"
                ),
            }),
            Some(sch) if s(sch, "/type") != "object" => {
                let field = format!("{base}.schema.openAPIV3Schema.type");
                errs.push(if s(sch, "/type").is_empty() {
                    FieldError {
                        reason: "FieldValueRequired",
                        message: format!("{field}: Required value: must not be empty at the root"),
                        field,
                    }
                } else {
                    FieldError::invalid(
                        field,
                        &json!(s(sch, "/type")),
                        "must be object at the root",
                    )
                });
            }
            Some(_) => {}
        }
        for (j, col) in arr(v, "/additionalPrinterColumns").iter().enumerate() {
            let cbase = format!("{base}.additionalPrinterColumns[{j}]");
            if s(col, "/name").is_empty() {
                errs.push(FieldError::required(format!("{cbase}.name")));
            }
            if s(col, "/jsonPath").is_empty() {
                errs.push(FieldError::required(format!("{cbase}.jsonPath")));
            } else if jsonpath::parse(s(col, "/jsonPath")).is_none() {
                errs.push(FieldError::invalid(
                    format!("{cbase}.jsonPath"),
                    &json!(s(col, "/jsonPath")),
                    "must be a simple json path",
                ));
            }
            let ty = col.get("type").cloned().unwrap_or(json!(""));
            if !["integer", "number", "string", "boolean", "date"]
                .contains(&ty.as_str().unwrap_or(""))
            {
                errs.push(FieldError::not_supported(
                    format!("{cbase}.type"),
                    &ty,
                    &["boolean", "date", "integer", "number", "string"],
                ));
            }
        }
    }
    errs
}

/// A `'static` copy of a selectable field name. The trait hands out
/// `&[&str]`; interning keeps the memory bounded by the distinct names ever
/// seen, however often CRDs are updated.
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<Option<HashSet<&'static str>>> = std::sync::Mutex::new(None);
    let mut guard = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let set = guard.get_or_insert_with(HashSet::new);
    if let Some(existing) = set.get(name) {
        return existing;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Column of a CRD table, with the JSONPath of its cells.
#[derive(Clone, Debug)]
struct PrinterColumn {
    column: Column,
    json_path: String,
}

/// The strategy of one served version of a custom resource.
pub struct SchemaStrategy {
    namespaced: bool,
    schema: Value,
    columns: Vec<PrinterColumn>,
    selectable: Vec<(String, String)>,
    field_names: Vec<&'static str>,
}

impl SchemaStrategy {
    /// A strategy validating against `schema` (a version's `openAPIV3Schema`).
    pub fn new(namespaced: bool, schema: Value, printer_columns: &[Value]) -> Self {
        let mut columns: Vec<PrinterColumn> = printer_columns
            .iter()
            .map(|c| PrinterColumn {
                column: Column {
                    name: s(c, "/name").to_owned(),
                    type_: s(c, "/type").to_owned(),
                    format: s(c, "/format").to_owned(),
                    description: s(c, "/description").to_owned(),
                    priority: c
                        .get("priority")
                        .and_then(Value::as_i64)
                        .and_then(|p| i32::try_from(p).ok())
                        .unwrap_or(0),
                },
                json_path: s(c, "/jsonPath").to_owned(),
            })
            .collect();
        if columns.is_empty() {
            columns.push(PrinterColumn {
                column: Column::new("Age", "date", 0),
                json_path: ".metadata.creationTimestamp".into(),
            });
        }
        let mut name_col = Column::new("Name", "string", 0);
        name_col.description = "Name must be unique within a namespace.".into();
        columns.insert(
            0,
            PrinterColumn {
                column: name_col,
                json_path: ".metadata.name".into(),
            },
        );
        Self {
            namespaced,
            schema,
            columns,
            selectable: Vec::new(),
            field_names: Vec::new(),
        }
    }

    /// Adds CRD `selectableFields` (`jsonPath` entries).
    fn with_selectable(mut self, fields: &[Value]) -> Self {
        for f in fields {
            let path = s(f, "/jsonPath");
            if !path.is_empty() {
                let name = path.trim_start_matches('.').to_owned();
                self.field_names.push(intern(&name));
                self.selectable.push((name, path.to_owned()));
            }
        }
        self
    }

    /// The row for `obj` as seen at `now`.
    pub fn row_at(&self, obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
        self.columns
            .iter()
            .map(|c| {
                let v = jsonpath::first(obj, &c.json_path);
                cell(&c.column.type_, v, now)
            })
            .collect()
    }
}

fn cell(ty: &str, v: Option<&Value>, now: DateTime<Utc>) -> Value {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match ty {
        "date" => match tables::parse_time(Some(v)) {
            Some(t) => json!(tables::human_duration(now - t)),
            None => Value::Null,
        },
        "integer" if v.is_i64() || v.is_u64() => v.clone(),
        "number" if v.is_number() => v.clone(),
        "boolean" if v.is_boolean() => v.clone(),
        "string" => match v {
            Value::String(_) => v.clone(),
            other => json!(other.to_string()),
        },
        _ => Value::Null,
    }
}

impl Strategy for SchemaStrategy {
    fn check_schema(&self, obj: &Value) -> Result<Vec<String>, String> {
        if !obj.is_object() {
            return Err(format!(
                "expected an object, got {}",
                match obj {
                    Value::Array(_) => "an array",
                    Value::String(_) => "a string",
                    _ => "a scalar",
                }
            ));
        }
        if obj
            .get("metadata")
            .is_some_and(|m| !m.is_null() && !m.is_object())
        {
            return Err("metadata: expected an object".into());
        }
        Ok(schema::unknown_fields(obj, &self.schema))
    }

    fn default(&self, obj: &mut Value) {
        schema::prune_and_default(obj, &self.schema);
    }

    fn validate(&self, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errs = validate_object_meta(obj, old, self.namespaced, NameRule::Subdomain);
        errs.extend(schema::validate(obj, &self.schema));
        errs
    }

    fn columns(&self) -> Vec<Column> {
        self.columns.iter().map(|c| c.column.clone()).collect()
    }

    fn row(&self, obj: &Value) -> Vec<Value> {
        self.row_at(obj, Utc::now())
    }

    fn selectable_fields(&self) -> &[&str] {
        &self.field_names
    }

    fn openapi_schema(
        &self,
        generator: &mut schemars::SchemaGenerator,
    ) -> Option<schemars::Schema> {
        let mut schema = self.schema.clone();
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            let meta = generator
                .subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>();
            props
                .entry("apiVersion")
                .or_insert_with(|| json!({"type": "string"}));
            props
                .entry("kind")
                .or_insert_with(|| json!({"type": "string"}));
            props.insert("metadata".into(), meta.to_value());
        }
        schemars::Schema::try_from(schema).ok()
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        if let Some(v) = super::typed::meta_field_value(obj, field) {
            return Some(v);
        }
        let (_, path) = self.selectable.iter().find(|(n, _)| n == field)?;
        Some(match jsonpath::first(obj, path) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        })
    }
}

/// The types a CRD serves, one per served version, or the CRD's problems.
pub fn types_from_crd(crd: &Value) -> Result<Vec<ResourceType>, Vec<FieldError>> {
    let mut crd = crd.clone();
    default_crd(&mut crd);
    let errs = validate_crd(&crd, None);
    if !errs.is_empty() {
        return Err(errs);
    }
    let namespaced = s(&crd, "/spec/scope") == "Namespaced";
    let names = crd.pointer("/spec/names").cloned().unwrap_or(Value::Null);
    let strings = |key: &str| -> Vec<String> {
        arr(&names, &format!("/{key}"))
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let mut out = Vec::new();
    for v in arr(&crd, "/spec/versions") {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let schema = v
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .unwrap_or(json!({"type": "object"}));
        let strategy = SchemaStrategy::new(namespaced, schema, arr(v, "/additionalPrinterColumns"))
            .with_selectable(arr(v, "/selectableFields"));
        let scale = v
            .pointer("/subresources/scale")
            .filter(|x| x.is_object())
            .map(|sc| ScalePaths {
                spec_replicas: s(sc, "/specReplicasPath").to_owned(),
                status_replicas: s(sc, "/statusReplicasPath").to_owned(),
                label_selector: sc
                    .get("labelSelectorPath")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            });
        out.push(ResourceType {
            group: s(&crd, "/spec/group").to_owned(),
            version: s(v, "/name").to_owned(),
            kind: s(&names, "/kind").to_owned(),
            plural: s(&names, "/plural").to_owned(),
            singular: s(&names, "/singular").to_owned(),
            namespaced,
            short_names: strings("shortNames"),
            categories: strings("categories"),
            verbs: ResourceType::default_verbs(),
            status_subresource: v
                .pointer("/subresources/status")
                .is_some_and(Value::is_object),
            scale,
            strategy: Arc::new(strategy),
        });
    }
    Ok(out)
}

fn condition(old: &Value, ty: &str, reason: &str, message: &str, now: &str) -> Value {
    let previous = arr(old, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == ty && s(c, "/status") == "True")
        .and_then(|c| c.get("lastTransitionTime").cloned());
    json!({
        "type": ty,
        "status": "True",
        "lastTransitionTime": previous.unwrap_or_else(|| json!(now)),
        "reason": reason,
        "message": message,
    })
}

/// The status Kubernetes sets on a CRD whose names were accepted:
/// NamesAccepted and Established conditions, acceptedNames, storedVersions.
pub fn crd_status_accepted(crd: &Value) -> Value {
    let mut defaulted = crd.clone();
    default_crd(&mut defaulted);
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut stored: Vec<String> = arr(crd, "/status/storedVersions")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    for v in arr(crd, "/spec/versions") {
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            let name = s(v, "/name").to_owned();
            if !stored.contains(&name) {
                stored.push(name);
            }
        }
    }
    json!({
        "conditions": [
            condition(crd, "NamesAccepted", "NoConflicts", "no conflicts found", &now),
            condition(crd, "Established", "InitialNamesAccepted", "the initial names have been accepted", &now),
        ],
        "acceptedNames": defaulted.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn crd() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 0}, "color": {"type": "string"}}},
                        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}}}}}},
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
                     "additionalPrinterColumns": [
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Color", "type": "string", "jsonPath": ".spec.color", "priority": 1},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]},
                    {"name": "v1beta1", "served": false, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object"}}}]}})
    }

    #[test]
    fn builds_types_from_a_crd() {
        let types = types_from_crd(&crd()).unwrap_or_default();
        assert_eq!(types.len(), 1);
        let rt = &types[0];
        assert_eq!(
            (
                rt.group.as_str(),
                rt.version.as_str(),
                rt.kind.as_str(),
                rt.plural.as_str(),
                rt.singular.as_str()
            ),
            ("example.com", "v1", "Widget", "widgets", "widget")
        );
        assert!(rt.namespaced && rt.status_subresource);
        assert_eq!(rt.short_names, vec!["wd"]);
        assert_eq!(
            rt.scale.as_ref().and_then(|s| s.label_selector.as_deref()),
            Some(".status.selector")
        );
        let cols: Vec<_> = rt
            .strategy
            .columns()
            .into_iter()
            .map(|c| (c.name, c.priority))
            .collect();
        assert_eq!(
            cols,
            vec![
                ("Name".into(), 0),
                ("Replicas".into(), 0),
                ("Color".into(), 1),
                ("Age".into(), 0)
            ]
        );
        let obj = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default", "creationTimestamp": "2025-01-10T11:00:00Z"},
            "spec": {"replicas": 2, "shape": "round"}});
        assert_eq!(
            rt.strategy.check_schema(&obj),
            Ok(vec!["spec.shape".to_owned()])
        );
        let now = Utc
            .with_ymd_and_hms(2025, 1, 10, 12, 0, 0)
            .single()
            .unwrap_or_default();
        let strategy = SchemaStrategy::new(
            true,
            json!({"type": "object"}),
            arr(&crd(), "/spec/versions/0/additionalPrinterColumns"),
        );
        assert_eq!(
            strategy.row_at(&obj, now),
            vec![json!("w"), json!(2), Value::Null, json!("60m")]
        );
        let bad =
            json!({"metadata": {"name": "w", "namespace": "default"}, "spec": {"replicas": -1}});
        let errs = rt.strategy.validate(&bad, None);
        assert_eq!(
            errs[0].message,
            "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"
        );
        let mut generator = schemars::SchemaGenerator::default();
        let schema = rt
            .strategy
            .openapi_schema(&mut generator)
            .map(|s| s.to_value())
            .unwrap_or_default();
        assert_eq!(
            schema.pointer("/properties/spec/properties/color/type"),
            Some(&json!("string"))
        );
    }

    #[test]
    fn selectable_fields_of_custom_resources() {
        let mut c = crd();
        c["spec"]["versions"][0]["selectableFields"] = json!([{"jsonPath": ".spec.color"}]);
        let types = types_from_crd(&c).unwrap_or_default();
        let rt = &types[0];
        assert_eq!(rt.strategy.selectable_fields(), &["spec.color"]);
        let obj = json!({"metadata": {"name": "w"}, "spec": {"color": "red"}});
        assert_eq!(
            rt.strategy.field_value(&obj, "spec.color").as_deref(),
            Some("red")
        );
        assert_eq!(
            rt.strategy
                .field_value(&json!({"metadata": {}}), "spec.color")
                .as_deref(),
            Some("")
        );
        assert!(std::ptr::eq(intern("spec.color"), intern("spec.color")));
    }

    #[test]
    fn default_columns_are_name_and_age() {
        let strategy = SchemaStrategy::new(false, json!({"type": "object"}), &[]);
        let cols: Vec<_> = strategy
            .columns()
            .into_iter()
            .map(|c| (c.name, c.type_, c.format))
            .collect();
        assert_eq!(
            cols,
            vec![
                ("Name".into(), "string".into(), "name".into()),
                ("Age".into(), "date".into(), String::new())
            ]
        );
        assert_eq!(
            strategy.row_at(&json!({"metadata": {"name": "x"}}), Utc::now()),
            vec![json!("x"), Value::Null]
        );
    }

    #[test]
    fn invalid_crds() {
        let mut c = crd();
        c["metadata"]["name"] = json!("widgets");
        c["spec"]["versions"][0]["storage"] = json!(false);
        c["spec"]["versions"][1]["schema"] = json!({});
        let msgs: Vec<String> = types_from_crd(&c)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            msgs,
            vec![
                r#"metadata.name: Invalid value: "widgets": must be spec.names.plural+"."+spec.group"#.to_owned(),
                "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must have exactly one version marked as storage version".into(),
                "spec.versions[1].schema.openAPIV3Schema: Required value: schemas are required".into(),
            ]
        );
        let msgs: Vec<String> = validate_crd(&json!({"spec": {}}), None)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert!(msgs.contains(&"spec.group: Required value".to_owned()));
        assert!(msgs.contains(&"spec.names.plural: Required value".to_owned()));
        assert!(msgs.contains(&"spec.scope: Required value".to_owned()));
    }

    #[test]
    fn scope_and_group_are_immutable() {
        let old = crd();
        let mut new = crd();
        new["spec"]["scope"] = json!("Cluster");
        default_crd(&mut new);
        let msgs: Vec<String> = validate_crd(&new, Some(&old))
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            msgs,
            vec![r#"spec.scope: Invalid value: "Cluster": field is immutable"#]
        );
    }

    #[test]
    fn accepted_status() {
        let status = crd_status_accepted(&crd());
        assert_eq!(status["conditions"][0]["type"], "NamesAccepted");
        assert_eq!(status["conditions"][1]["type"], "Established");
        assert_eq!(status["conditions"][1]["status"], "True");
        assert_eq!(status["acceptedNames"]["listKind"], "WidgetList");
        assert_eq!(status["acceptedNames"]["singular"], "widget");
        assert_eq!(status["storedVersions"], json!(["v1"]));
        let mut again = crd();
        again["status"] = status.clone();
        again["status"]["conditions"][1]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        assert_eq!(
            crd_status_accepted(&again)["conditions"][1]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
    }
}
