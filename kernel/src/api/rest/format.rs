//! Response representations chosen by `Accept`: plain JSON, server-side
//! `Table`s (what `kubectl get` asks for) and `PartialObjectMetadata`.

use serde_json::{Value, json};

use crate::registry::ResourceType;

/// The representation a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Representation {
    /// The objects themselves.
    Object,
    /// `meta.k8s.io` Table rows.
    Table,
    /// `meta.k8s.io` PartialObjectMetadata(List).
    Metadata,
}

/// What to embed in each table row (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// PartialObjectMetadata (the default).
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter (default Metadata).
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Picks the first representation in `Accept` that kerno serves. Protobuf
/// and unknown media types are skipped (JSON is the fallback), so a client
/// that accepts only protobuf gets `None` (406).
pub fn negotiate(accept: &str) -> Option<Representation> {
    if accept.trim().is_empty() {
        return Some(Representation::Object);
    }
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let params: Vec<(&str, &str)> = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let param = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        if !matches!(
            media,
            "application/json" | "application/*" | "*/*" | "application/yaml"
        ) {
            continue;
        }
        match (param("as"), param("g")) {
            (None, _) => return Some(Representation::Object),
            (Some("Table"), Some("meta.k8s.io")) => return Some(Representation::Table),
            (Some("PartialObjectMetadata" | "PartialObjectMetadataList"), Some("meta.k8s.io")) => {
                return Some(Representation::Metadata);
            }
            _ => continue,
        }
    }
    None
}

/// The column definitions of a type's table.
pub fn column_definitions(rt: &ResourceType) -> Value {
    Value::Array(
        rt.strategy
            .columns()
            .into_iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type": c.type_,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect(),
    )
}

/// One table row for an object.
pub fn row(rt: &ResourceType, obj: &Value, include: IncludeObject) -> Value {
    let mut row = json!({ "cells": rt.strategy.row(obj) });
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => row["object"] = partial_metadata(obj),
        IncludeObject::Object => row["object"] = obj.clone(),
    }
    row
}

/// A `Table` of objects.
pub fn table<'a>(
    rt: &ResourceType,
    objects: impl IntoIterator<Item = &'a Value>,
    include: IncludeObject,
    with_columns: bool,
    list_meta: Value,
) -> Value {
    let rows: Vec<Value> = objects.into_iter().map(|o| row(rt, o, include)).collect();
    let mut table = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "rows": rows,
    });
    if with_columns {
        table["columnDefinitions"] = column_definitions(rt);
    }
    table
}

/// `PartialObjectMetadata` of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_asks_for_tables() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(accept), Some(Representation::Table));
        assert_eq!(negotiate("application/json"), Some(Representation::Object));
        assert_eq!(negotiate("*/*"), Some(Representation::Object));
        assert_eq!(
            negotiate("application/vnd.kubernetes.protobuf, application/json"),
            Some(Representation::Object)
        );
        assert_eq!(negotiate("application/vnd.kubernetes.protobuf"), None);
        assert_eq!(
            negotiate("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"),
            Some(Representation::Metadata)
        );
    }
}
