//! Entries of `metadata.managedFields`.

use serde_json::{Map, Value, json};

use super::fieldset::FieldSet;

/// One entry of `metadata.managedFields`: the fields one manager owns through
/// one kind of operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager, e.g. `kubectl-client-side-apply`.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// The API version the fields were set through, e.g. `apps/v1`.
    pub api_version: String,
    /// When the entry last changed, RFC 3339.
    pub time: Option<String>,
    /// The subresource the operation went through, e.g. `status`.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Whether this entry is the one for `manager` doing `operation` through
    /// `subresource`; apply entries are shared across API versions, update
    /// entries are per version (as in Kubernetes' manager identifiers).
    pub fn is(
        &self,
        manager: &str,
        operation: &str,
        api_version: &str,
        subresource: Option<&str>,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == "Apply" || self.api_version == api_version)
    }

    /// Parses the entries of an object's `metadata.managedFields`; missing
    /// means none.
    pub fn from_object(object: &Value) -> Result<Vec<Self>, String> {
        match object.pointer("/metadata/managedFields") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(entries)) => entries.iter().map(Self::from_json).collect(),
            Some(other) => Err(format!(
                "metadata.managedFields must be a list, got {other}"
            )),
        }
    }

    fn from_json(v: &Value) -> Result<Self, String> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        if let Some(t) = text("fieldsType")
            && t != "FieldsV1"
        {
            return Err(format!(
                "unsupported fieldsType {t:?}, only FieldsV1 is supported"
            ));
        }
        let fields = match v.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(f) => FieldSet::from_fields_v1(f)?,
        };
        Ok(Self {
            manager: text("manager").unwrap_or_default(),
            operation: text("operation").unwrap_or_default(),
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource"),
            fields,
        })
    }

    /// The Kubernetes JSON of this entry.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), json!(s));
        }
        Value::Object(m)
    }

    /// Writes `entries` into `object`'s `metadata.managedFields` (removing it
    /// when there are none).
    pub fn write(object: &mut Value, entries: &[Self]) {
        let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        if entries.is_empty() {
            meta.shift_remove("managedFields");
        } else {
            meta.insert(
                "managedFields".into(),
                Value::Array(entries.iter().map(Self::to_json).collect()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let obj = json!({"metadata": {"managedFields": [{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
            "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}}
        }]}});
        let entries = ManagedFieldsEntry::from_object(&obj).expect("parses");
        assert_eq!(entries.len(), 1);
        assert!(entries[0].is("kubectl", "Apply", "apps/v2", None));
        assert!(!entries[0].is("kubectl", "Update", "apps/v1", None));
        let mut out = json!({"metadata": {}});
        ManagedFieldsEntry::write(&mut out, &entries);
        assert_eq!(out, obj);
        ManagedFieldsEntry::write(&mut out, &[]);
        assert_eq!(out, json!({"metadata": {}}));
    }

    #[test]
    fn rejects_bad_entries() {
        let obj = json!({"metadata": {"managedFields": [{"fieldsType": "FieldsV2"}]}});
        assert!(ManagedFieldsEntry::from_object(&obj).is_err());
        let obj = json!({"metadata": {"managedFields": {"x": 1}}});
        assert!(ManagedFieldsEntry::from_object(&obj).is_err());
    }
}
