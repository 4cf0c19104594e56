//! Small helpers over an object's `metadata`, shared by the write paths.

use serde_json::{Map, Value};

use crate::error::{ApiError, Result};
use crate::registry::ResourceType;

/// The object's `metadata` map, created if missing. Fails for non-objects.
pub fn meta_mut(obj: &mut Value) -> Result<&mut Map<String, Value>> {
    let map = obj
        .as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".into()))?;
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if meta.is_null() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
        .ok_or_else(|| ApiError::BadRequest("metadata must be a JSON object".into()))
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// The object's name, empty if unset.
pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or_default()
}

/// The resourceVersion of an object as a revision; `None` when unset or empty.
pub fn resource_version(obj: &Value) -> Result<Option<i64>> {
    match meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => parse_resource_version(rv).map(Some),
    }
}

/// Parses a resourceVersion string as a store revision.
pub fn parse_resource_version(rv: &str) -> Result<i64> {
    rv.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))
}

/// The current time in Kubernetes' timestamp format (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `true` when the parts users write as "spec" differ: everything except
/// `metadata` and `status` (and `apiVersion`/`kind`). Drives `generation`.
pub fn spec_changed(old: &Value, new: &Value) -> bool {
    fn strip(v: &Value) -> Map<String, Value> {
        let mut m = v.as_object().cloned().unwrap_or_default();
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
        m
    }
    strip(old) != strip(new)
}

/// Sets `apiVersion` and `kind` to the type's.
pub fn set_type(rt: &ResourceType, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        // Keep apiVersion and kind first, as Kubernetes prints them.
        let rest: Vec<(String, Value)> = std::mem::take(map)
            .into_iter()
            .filter(|(k, _)| k != "apiVersion" && k != "kind")
            .collect();
        map.insert("apiVersion".into(), Value::String(rt.api_version()));
        map.insert("kind".into(), Value::String(rt.kind.clone()));
        map.extend(rest);
    }
}

/// Checks that the body's `apiVersion`/`kind`, when present, name this type.
pub fn check_type(rt: &ResourceType, obj: &Value) -> Result<()> {
    if !obj.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    if let Some(api_version) = obj.get("apiVersion") {
        let api_version = api_version.as_str().unwrap_or_default();
        let expected = rt.api_version();
        let same_group = match api_version.split_once('/') {
            Some((group, _)) => group == rt.group,
            None => rt.group.is_empty(),
        };
        if api_version != expected && !same_group {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({expected})"
            )));
        }
    }
    if let Some(kind) = obj.get("kind") {
        let kind = kind.as_str().unwrap_or_default();
        if kind != rt.kind {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                rt.kind
            )));
        }
    }
    Ok(())
}

/// The object's finalizers.
pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generation_ignores_metadata_and_status() {
        let old =
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 1}, "status": {}});
        let relabelled = json!({"metadata": {"labels": {"a": "2"}}, "spec": {"replicas": 1}});
        let rescaled = json!({"metadata": {}, "spec": {"replicas": 2}});
        assert!(!spec_changed(&old, &relabelled));
        assert!(spec_changed(&old, &rescaled));
    }

    #[test]
    fn resource_versions_parse_or_fail() {
        assert_eq!(parse_resource_version("42").ok(), Some(42));
        assert!(parse_resource_version("abc").is_err());
        assert!(parse_resource_version("-1").is_err());
    }
}
