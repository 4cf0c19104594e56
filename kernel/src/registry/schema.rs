//! Structural-schema handling for custom resources: validation against a
//! version's `openAPIV3Schema` with Kubernetes' messages, unknown-field
//! detection, pruning and schema defaults.

use serde_json::{Map, Value, json};

use crate::error::FieldError;

fn bool_ext(schema: &Value, key: &str) -> bool {
    schema.get(key).and_then(Value::as_bool) == Some(true)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// What to do with keys the schema does not describe at one object level.
enum Extra<'a> {
    /// Describe them with this schema.
    Schema(&'a Value),
    /// Keep them, unchecked.
    Keep,
    /// They are unknown.
    Unknown,
}

fn extra_of(schema: &Value) -> Extra<'_> {
    match schema.get("additionalProperties") {
        Some(Value::Bool(true)) => Extra::Keep,
        Some(s @ Value::Object(_)) => Extra::Schema(s),
        _ if bool_ext(schema, "x-kubernetes-preserve-unknown-fields") => Extra::Keep,
        _ => Extra::Unknown,
    }
}

fn is_embedded_meta(schema: &Value, key: &str, root: bool) -> bool {
    (root || bool_ext(schema, "x-kubernetes-embedded-resource"))
        && matches!(key, "apiVersion" | "kind" | "metadata")
}

/// Paths of fields the schema does not know (as Kubernetes reports them:
/// `spec.foo`, `spec.items[0].bar`).
pub fn unknown_fields(obj: &Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_unknown(obj, schema, "", true, &mut out);
    out
}

fn walk_unknown(v: &Value, schema: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (k, child) in m {
                if is_embedded_meta(schema, k, root) {
                    continue;
                }
                let p = join(path, k);
                match props.and_then(|ps| ps.get(k)) {
                    Some(s) => walk_unknown(child, s, &p, false, out),
                    None => match extra_of(schema) {
                        Extra::Schema(s) => walk_unknown(child, s, &p, false, out),
                        Extra::Keep => {}
                        Extra::Unknown => out.push(p),
                    },
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for (i, child) in a.iter().enumerate() {
                    walk_unknown(child, items, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

/// Drops unknown fields (and nulls of non-nullable fields), then fills in
/// schema `default`s, as Kubernetes does before validation.
pub fn prune_and_default(obj: &mut Value, schema: &Value) {
    prune(obj, schema, true);
}

fn prune(v: &mut Value, schema: &Value, root: bool) {
    match v {
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if is_embedded_meta(schema, &k, root) {
                    continue;
                }
                let child_schema = match props.and_then(|ps| ps.get(&k)) {
                    Some(s) => Some(s),
                    None => match extra_of(schema) {
                        Extra::Schema(s) => Some(s),
                        Extra::Keep => continue,
                        Extra::Unknown => None,
                    },
                };
                match child_schema {
                    None => {
                        m.remove(&k);
                    }
                    Some(s) => {
                        if m.get(&k).is_some_and(Value::is_null) && !bool_ext(s, "nullable") {
                            m.remove(&k);
                        } else if let Some(child) = m.get_mut(&k) {
                            prune(child, s, false);
                        }
                    }
                }
            }
            if let Some(props) = props {
                apply_defaults(m, props);
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for child in a.iter_mut() {
                    prune(child, items, false);
                }
            }
        }
        _ => {}
    }
}

fn apply_defaults(m: &mut Map<String, Value>, props: &Map<String, Value>) {
    for (k, s) in props {
        if !m.contains_key(k)
            && let Some(d) = s.get("default")
        {
            let mut d = d.clone();
            prune(&mut d, s, false);
            m.insert(k.clone(), d);
        }
    }
}

/// Validates `obj` against `schema`. The root's `apiVersion`, `kind` and
/// `metadata` are left to generic validation.
pub fn validate(obj: &Value, schema: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    check(obj, schema, "", true, &mut errs);
    errs
}

fn in_body(path: &str, detail: String) -> String {
    format!("{path} in body {detail}")
}

fn check(v: &Value, schema: &Value, path: &str, root: bool, errs: &mut Vec<FieldError>) {
    if v.is_null() {
        // Null is the same as absent once pruned; nullable fields accept it.
        return;
    }
    let actual = type_name(v);
    let int_or_string = bool_ext(schema, "x-kubernetes-int-or-string");
    if int_or_string {
        if actual != "integer" && actual != "string" {
            errs.push(FieldError::invalid(
                path,
                &json!(actual),
                in_body(
                    path,
                    format!("must be of type integer or string: {actual:?}"),
                ),
            ));
            return;
        }
    } else if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let ok = ty == actual || (ty == "number" && actual == "integer");
        if !ok {
            errs.push(FieldError {
                reason: "FieldValueTypeInvalid",
                field: path.to_owned(),
                message: format!(
                    "{path}: Invalid value: {actual:?}: {}",
                    in_body(path, format!("must be of type {ty}: {actual:?}"))
                ),
            });
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        errs.push(FieldError {
            reason: "FieldValueNotSupported",
            field: path.to_owned(),
            message: format!(
                "{path}: Unsupported value: {v}: supported values: {}",
                list.join(", ")
            ),
        });
    }
    match v {
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                let excl = bool_ext(schema, "exclusiveMinimum");
                if x < min || (excl && x == min) {
                    let op = if excl {
                        "greater than"
                    } else {
                        "greater than or equal to"
                    };
                    errs.push(FieldError::invalid(
                        path,
                        v,
                        in_body(path, format!("should be {op} {}", fmt_num(min))),
                    ));
                }
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                let excl = bool_ext(schema, "exclusiveMaximum");
                if x > max || (excl && x == max) {
                    let op = if excl {
                        "less than"
                    } else {
                        "less than or equal to"
                    };
                    errs.push(FieldError::invalid(
                        path,
                        v,
                        in_body(path, format!("should be {op} {}", fmt_num(max))),
                    ));
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                errs.push(FieldError::invalid(
                    path,
                    v,
                    in_body(path, format!("should be at least {min} chars long")),
                ));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                errs.push(FieldError {
                    reason: "FieldValueTooLong",
                    field: path.to_owned(),
                    message: format!("{path}: Too long: may not be longer than {max}"),
                });
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && let Ok(re) = regex::Regex::new(pattern)
                && !re.is_match(s)
            {
                errs.push(FieldError::invalid(
                    path,
                    v,
                    in_body(path, format!("should match '{pattern}'")),
                ));
            }
        }
        Value::Array(a) => {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (a.len() as u64) < min
            {
                errs.push(FieldError::invalid(
                    path,
                    &json!(a.len()),
                    in_body(path, format!("should have at least {min} items")),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && (a.len() as u64) > max
            {
                errs.push(FieldError {
                    reason: "FieldValueTooMany",
                    field: path.to_owned(),
                    message: format!(
                        "{path}: Too many: {}: must have at most {max} items",
                        a.len()
                    ),
                });
            }
            if let Some(items) = schema.get("items") {
                for (i, child) in a.iter().enumerate() {
                    check(child, items, &format!("{path}[{i}]"), false, errs);
                }
            }
        }
        Value::Object(m) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[])
            {
                if let Some(req) = req.as_str()
                    && m.get(req).is_none_or(Value::is_null)
                {
                    errs.push(FieldError::required(join(path, req)));
                }
            }
            for (k, child) in m {
                if is_embedded_meta(schema, k, root) {
                    continue;
                }
                let p = join(path, k);
                if let Some(s) = props.and_then(|ps| ps.get(k)) {
                    check(child, s, &p, false, errs);
                } else if let Extra::Schema(s) = extra_of(schema) {
                    check(child, s, &p, false, errs);
                }
            }
        }
        _ => {}
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast"},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "port": {"x-kubernetes-int-or-string": true},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }})
    }

    #[test]
    fn unknown_fields_and_pruning() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"size": 1, "bogus": 1, "env": {"A": "b"}, "raw": {"any": {"thing": 1}},
                "items": [{"n": "a", "z": 2}]}, "other": true});
        assert_eq!(
            unknown_fields(&obj, &schema()),
            vec!["spec.bogus", "spec.items[0].z", "other"]
        );
        prune_and_default(&mut obj, &schema());
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"},
            "spec": {"size": 1, "env": {"A": "b"}, "raw": {"any": {"thing": 1}}, "items": [{"n": "a"}], "mode": "fast"}})
        );
    }

    #[test]
    fn validation_messages() {
        let obj = json!({"spec": {"size": "big", "mode": "medium", "name": "Abcdef", "port": 1.5,
            "tags": ["a", "b", "c"], "env": {"A": 1}}, "status": {"ready": "yes"}});
        let msgs: Vec<String> = validate(&obj, &schema())
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            msgs,
            vec![
                r#"spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#.to_owned(),
                r#"spec.mode: Unsupported value: "medium": supported values: "fast", "slow""#.into(),
                "spec.name: Too long: may not be longer than 5".into(),
                r#"spec.name: Invalid value: "Abcdef": spec.name in body should match '^[a-z]+$'"#.into(),
                r#"spec.port: Invalid value: "number": spec.port in body must be of type integer or string: "number""#.into(),
                "spec.tags: Too many: 3: must have at most 2 items".into(),
                r#"spec.env.A: Invalid value: "integer": spec.env.A in body must be of type string: "integer""#.into(),
                r#"status.ready: Invalid value: "string": status.ready in body must be of type boolean: "string""#.into(),
            ]
        );
        let low = json!({"spec": {"size": 0}});
        let msgs: Vec<String> = validate(&low, &schema())
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            msgs,
            vec![
                "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
            ]
        );
        let missing = json!({"spec": {}});
        assert_eq!(
            validate(&missing, &schema())[0].message,
            "spec.size: Required value"
        );
    }
}
