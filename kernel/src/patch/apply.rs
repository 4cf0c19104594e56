//! Server-side apply and the tracking of field ownership in
//! `metadata.managedFields` for ordinary writes.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::fieldset::{FieldSet, display_path};
use super::managed_fields::ManagedFieldsEntry;
use super::schema::Schema;
use super::typed;
use crate::error::FieldError;

/// Metadata fields nobody owns (as Kubernetes strips them from field sets).
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "uid",
    "generation",
    "managedFields",
    "resourceVersion",
];

/// Which part of the object a write may touch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The whole object (resources without a status subresource).
    All,
    /// The main resource of a type with a status subresource: `status` is
    /// ignored.
    MainResource,
    /// The `status` subresource: only `status` counts.
    Status,
}

/// Who writes, through what, and with which merge semantics.
#[derive(Clone, Debug)]
pub struct FieldManager<'a> {
    /// The type's merge semantics ([`Schema::builtin`] or [`Schema::generic`]).
    pub schema: &'a Schema,
    /// The field manager (`?fieldManager=`, or derived from the user agent).
    pub manager: &'a str,
    /// The API version of the request, e.g. `apps/v1`.
    pub api_version: &'a str,
    /// The subresource written, e.g. `status` or `scale`.
    pub subresource: Option<&'a str>,
    /// Which fields count.
    pub scope: Scope,
    /// The time recorded in the entry.
    pub now: DateTime<Utc>,
}

/// One field owned by another manager that an apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The API version it set the field through.
    pub api_version: String,
    /// The field, as Kubernetes prints it: `.spec.replicas`.
    pub field: String,
}

impl Conflict {
    /// `conflict with "kubectl" using apps/v1: .spec.replicas`.
    pub fn message(&self) -> String {
        format!(
            "conflict with {:?} using {}: {}",
            self.manager, self.api_version, self.field
        )
    }
}

/// Why an apply or ownership update failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    /// Fields owned by other managers would change (409 Conflict, reason
    /// `FieldManagerConflict` per field).
    #[error("Apply failed with {} conflict{}: {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.iter().map(Conflict::message).collect::<Vec<_>>().join("\n"))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration or the stored ownership is malformed (400
    /// BadRequest, or 422 for the applied configuration's content).
    #[error("{0}")]
    Invalid(String),
}

impl ApplyError {
    /// The conflicts as `FieldManagerConflict` causes for
    /// [`crate::error::ApiError::ApplyConflict`].
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            ApplyError::Conflicts(conflicts) => conflicts
                .iter()
                .map(|c| FieldError {
                    reason: "FieldManagerConflict",
                    field: c.field.clone(),
                    message: c.message(),
                })
                .collect(),
            ApplyError::Invalid(_) => Vec::new(),
        }
    }
}

impl FieldManager<'_> {
    fn time(&self) -> String {
        self.now.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    }

    /// The part of `object` that counts for ownership in this scope.
    fn counted(&self, object: &Value) -> Value {
        let Value::Object(map) = object else {
            return Value::Object(Map::new());
        };
        let mut out = Map::new();
        for (k, v) in map {
            let keep = match (self.scope, k.as_str()) {
                (_, "apiVersion" | "kind") => false,
                (Scope::Status, key) => key == "status",
                (Scope::MainResource, "status") => false,
                _ => true,
            };
            if !keep {
                continue;
            }
            if k == "metadata"
                && let Value::Object(meta) = v
            {
                let meta: Map<String, Value> = meta
                    .iter()
                    .filter(|(mk, _)| !SYSTEM_METADATA.contains(&mk.as_str()))
                    .map(|(mk, mv)| (mk.clone(), mv.clone()))
                    .collect();
                out.insert(k.clone(), Value::Object(meta));
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
        Value::Object(out)
    }

    fn set_of(&self, object: &Value) -> Result<FieldSet, ApplyError> {
        typed::value_set(&self.counted(object), self.schema, "").map_err(ApplyError::Invalid)
    }

    fn diff(&self, old: &Value, new: &Value) -> Result<(FieldSet, FieldSet), ApplyError> {
        typed::diff(&self.counted(old), &self.counted(new), self.schema, "")
            .map_err(ApplyError::Invalid)
    }

    fn is_mine(&self, entry: &ManagedFieldsEntry, operation: &str) -> bool {
        entry.is(self.manager, operation, self.api_version, self.subresource)
    }

    fn entry(&self, operation: &str, fields: FieldSet) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: self.manager.to_string(),
            operation: operation.to_string(),
            api_version: self.api_version.to_string(),
            time: Some(self.time()),
            subresource: self.subresource.map(str::to_string),
            fields,
        }
    }
}

fn entries_of(object: &Value) -> Result<Vec<ManagedFieldsEntry>, ApplyError> {
    ManagedFieldsEntry::from_object(object).map_err(ApplyError::Invalid)
}

/// Server-side apply of `applied` (the configuration the manager wants) to
/// `live` (`None`: the object is created). Returns the resulting object with
/// `metadata.managedFields` updated, or the conflicts with other managers
/// (unless `force`, which takes their fields over).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    fm: &FieldManager<'_>,
    force: bool,
) -> Result<Value, ApplyError> {
    let Value::Object(config) = applied else {
        return Err(ApplyError::Invalid(
            "apply patch must be a JSON object".to_string(),
        ));
    };
    for field in ["apiVersion", "kind"] {
        if config
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApplyError::Invalid(format!(
                "{field} must be set in the applied configuration"
            )));
        }
    }
    if applied
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApplyError::Invalid(
            "metadata.managedFields must be nil".to_string(),
        ));
    }
    // What the applier may set in this scope; the rest of the configuration
    // is ignored, as Kubernetes resets it.
    let mut config = applied.clone();
    if let Value::Object(map) = &mut config {
        match fm.scope {
            Scope::MainResource => {
                map.shift_remove("status");
            }
            Scope::Status => map
                .retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status")),
            Scope::All => {}
        }
        if fm.scope == Scope::Status
            && let Some(Value::Object(meta)) = map.get_mut("metadata")
        {
            meta.retain(|k, _| k == "name" || k == "namespace");
        }
    }
    let new_set = fm.set_of(&config)?;

    let Some(live) = live else {
        let mut object = typed::merge(&Value::Object(Map::new()), &config, fm.schema, "")
            .map_err(ApplyError::Invalid)?;
        ManagedFieldsEntry::write(&mut object, &[fm.entry("Apply", new_set)]);
        return Ok(object);
    };

    let mut entries = entries_of(live)?;
    if entries.is_empty() {
        // An object nobody tracked yet: its fields belong to an implicit
        // manager, so the first apply cannot silently take them over.
        let owned = fm.set_of(live)?;
        if !owned.is_empty() {
            entries.push(ManagedFieldsEntry {
                manager: "before-first-apply".to_string(),
                operation: "Update".to_string(),
                api_version: fm.api_version.to_string(),
                time: Some(fm.time()),
                subresource: None,
                fields: owned,
            });
        }
    }

    let mut merged = typed::merge(live, &config, fm.schema, "").map_err(ApplyError::Invalid)?;
    let (changed, _) = fm.diff(live, &merged)?;

    let mut conflicts = Vec::new();
    for entry in entries.iter_mut().filter(|e| !fm.is_mine(e, "Apply")) {
        let theirs = entry.fields.intersection(&changed);
        if theirs.is_empty() {
            continue;
        }
        if force {
            entry.fields = entry.fields.difference(&theirs);
        } else {
            conflicts.extend(theirs.paths().into_iter().map(|p| Conflict {
                manager: entry.manager.clone(),
                api_version: entry.api_version.clone(),
                field: display_path(&p),
            }));
        }
    }
    if !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }

    // Fields the manager applied before but no longer does go away, unless
    // someone else owns them too.
    let previous = entries
        .iter()
        .find(|e| fm.is_mine(e, "Apply"))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others = entries
        .iter()
        .filter(|e| !fm.is_mine(e, "Apply"))
        .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
    let dropped = previous.difference(&new_set).difference(&others);
    typed::prune(&mut merged, &dropped, Some(&others), fm.schema, "");

    match entries.iter_mut().find(|e| fm.is_mine(e, "Apply")) {
        Some(mine) => {
            mine.fields = new_set;
            mine.api_version = fm.api_version.to_string();
            mine.time = Some(fm.time());
        }
        None => entries.push(fm.entry("Apply", new_set)),
    }
    entries.retain(|e| !e.fields.is_empty());
    ManagedFieldsEntry::write(&mut merged, &entries);
    Ok(merged)
}

/// Records in `new`'s `metadata.managedFields` the fields an ordinary write
/// (create, update, patch; `old` is `None` on create) by the manager changed:
/// the manager's `Update` entry gains them and other managers lose them.
///
/// The entries are taken from `old`, unless the write itself changed
/// `metadata.managedFields` (an empty list resets ownership).
pub fn track_update(
    old: Option<&Value>,
    new: &Value,
    fm: &FieldManager<'_>,
) -> Result<Value, ApplyError> {
    let empty = Value::Object(Map::new());
    let old_value = old.unwrap_or(&empty);
    let new_entries = new.pointer("/metadata/managedFields");
    let old_entries = old_value.pointer("/metadata/managedFields");
    let mut entries = match (new_entries, old) {
        (Some(n), _) if Some(n) != old_entries => {
            let explicit = entries_of(new)?;
            if explicit.is_empty() {
                // Resetting: nobody owns anything any more.
                let mut out = new.clone();
                ManagedFieldsEntry::write(&mut out, &[]);
                return Ok(out);
            }
            explicit
        }
        _ => entries_of(old_value)?,
    };

    let (changed, removed) = fm.diff(old_value, new)?;
    let touched = changed.union(&removed);
    for entry in entries.iter_mut().filter(|e| !fm.is_mine(e, "Update")) {
        entry.fields = entry.fields.difference(&touched);
    }
    if !changed.is_empty() || entries.iter().any(|e| fm.is_mine(e, "Update")) {
        match entries.iter_mut().find(|e| fm.is_mine(e, "Update")) {
            Some(mine) => {
                let fields = mine.fields.union(&changed).difference(&removed);
                if fields != mine.fields {
                    mine.time = Some(fm.time());
                }
                mine.fields = fields;
            }
            None => entries.push(fm.entry("Update", changed.difference(&removed))),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    let mut out = new.clone();
    ManagedFieldsEntry::write(&mut out, &entries);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn fm<'a>(manager: &'a str) -> FieldManager<'a> {
        FieldManager {
            schema: Schema::builtin("apps", "Deployment").expect("built-in"),
            manager,
            api_version: "apps/v1",
            subresource: None,
            scope: Scope::MainResource,
            now: Utc
                .with_ymd_and_hms(2026, 11, 22, 5, 0, 0)
                .single()
                .expect("valid time"),
        }
    }

    fn config(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image}]}
                }
            }
        })
    }

    /// What the store adds around a written object.
    fn stored(mut v: Value) -> Value {
        v["metadata"]["uid"] = json!("u-1");
        v["metadata"]["resourceVersion"] = json!("7");
        v["metadata"]["creationTimestamp"] = json!("2026-11-22T04:00:00Z");
        v["status"] =
            json!({"replicas": 1, "conditions": [{"type": "Available", "status": "True"}]});
        v
    }

    fn entries(v: &Value) -> Vec<ManagedFieldsEntry> {
        ManagedFieldsEntry::from_object(v).expect("valid managedFields")
    }

    #[test]
    fn apply_creates_with_managed_fields() {
        let out = apply(None, &config(2, "nginx:1.25"), &fm("kubectl"), false).expect("applies");
        let mf = &out["metadata"]["managedFields"];
        assert_eq!(mf.as_array().map(Vec::len), Some(1));
        assert_eq!(mf[0]["manager"], "kubectl");
        assert_eq!(mf[0]["operation"], "Apply");
        assert_eq!(mf[0]["apiVersion"], "apps/v1");
        assert_eq!(mf[0]["time"], "2026-11-22T05:00:00Z");
        assert_eq!(mf[0]["fieldsType"], "FieldsV1");
        assert_eq!(
            mf[0]["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}}}}
                    }
                }
            })
        );
        assert_eq!(out["spec"]["replicas"], 2);
        assert_eq!(out["metadata"]["name"], "web");
    }

    #[test]
    fn reapply_updates_and_removes_dropped_fields() {
        let mut c = config(2, "nginx:1.25");
        c["metadata"]["labels"]["tier"] = json!("front");
        c["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "A", "value": "1"}]);
        let live = stored(apply(None, &c, &fm("kubectl"), false).expect("applies"));

        let out =
            apply(Some(&live), &config(2, "nginx:1.26"), &fm("kubectl"), false).expect("applies");
        let container = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["image"], "nginx:1.26");
        assert!(container.get("env").is_none(), "{container}");
        assert_eq!(out["metadata"]["labels"], json!({"app": "web"}));
        // System fields and status are untouched.
        assert_eq!(out["metadata"]["uid"], "u-1");
        assert_eq!(out["status"]["replicas"], 1);
        assert_eq!(entries(&out).len(), 1);
    }

    #[test]
    fn apply_conflicts_with_client_side_apply() {
        let created = track_update(
            None,
            &config(1, "nginx:1.25"),
            &fm("kubectl-client-side-apply"),
        )
        .expect("tracks");
        let live = stored(created);
        let mf = entries(&live);
        assert_eq!(mf[0].operation, "Update");
        assert!(
            mf[0].fields.to_fields_v1()["f:spec"]
                .get("f:replicas")
                .is_some()
        );
        // Status is not owned through the main resource.
        assert!(mf[0].fields.to_fields_v1().get("f:status").is_none());

        let err = apply(Some(&live), &config(3, "nginx:1.25"), &fm("kubectl"), false)
            .expect_err("conflict");
        let ApplyError::Conflicts(conflicts) = &err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(conflicts.len(), 1);
        assert_eq!(
            conflicts[0].message(),
            "conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );
        let causes = err.field_errors();
        assert_eq!(causes[0].reason, "FieldManagerConflict");
        assert_eq!(causes[0].field, ".spec.replicas");

        // The same values are shared, not conflicting.
        let shared = apply(Some(&live), &config(1, "nginx:1.25"), &fm("kubectl"), false)
            .expect("no conflict");
        let mf = entries(&shared);
        assert_eq!(mf.len(), 2);
        assert!(mf.iter().all(|e| {
            !e.fields
                .intersection(
                    &FieldSet::from_fields_v1(&json!({"f:spec": {"f:replicas": {}}}))
                        .expect("valid"),
                )
                .is_empty()
        }));
    }

    #[test]
    fn force_moves_ownership() {
        let live = stored(
            track_update(
                None,
                &config(1, "nginx:1.25"),
                &fm("kubectl-client-side-apply"),
            )
            .expect("tracks"),
        );
        let out =
            apply(Some(&live), &config(5, "nginx:1.26"), &fm("kubectl"), true).expect("forced");
        assert_eq!(out["spec"]["replicas"], 5);
        let mf = entries(&out);
        let csa = mf
            .iter()
            .find(|e| e.manager == "kubectl-client-side-apply")
            .expect("still owns other fields");
        let owned = csa.fields.to_fields_v1();
        assert!(owned["f:spec"].get("f:replicas").is_none(), "{owned}");
        assert!(owned["f:spec"].get("f:selector").is_some(), "{owned}");
        let image = json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}});
        let image = FieldSet::from_fields_v1(&image).expect("valid");
        assert!(csa.fields.intersection(&image).is_empty());
        let applier = mf.iter().find(|e| e.manager == "kubectl").expect("applier");
        assert!(!applier.fields.intersection(&image).is_empty());
    }

    #[test]
    fn fields_shared_with_others_survive_removal_from_config() {
        let live =
            stored(apply(None, &config(2, "nginx:1.25"), &fm("kubectl"), false).expect("applies"));
        // Another applier sets the same label value: shared ownership.
        let other = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web", "team": "a"}}});
        let live = apply(Some(&live), &other, &fm("labeler"), false).expect("applies");
        assert_eq!(live["metadata"]["labels"]["team"], "a");

        let mut c = config(2, "nginx:1.25");
        c["metadata"]
            .as_object_mut()
            .expect("metadata")
            .shift_remove("labels");
        let out = apply(Some(&live), &c, &fm("kubectl"), false).expect("applies");
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "team": "a"})
        );
    }

    #[test]
    fn scale_then_apply_conflicts_with_the_scaler() {
        let live =
            stored(apply(None, &config(2, "nginx:1.25"), &fm("kubectl"), false).expect("applies"));
        let mut scaled = live.clone();
        scaled["spec"]["replicas"] = json!(4);
        let mut scaler = fm("kubectl");
        scaler.subresource = Some("scale");
        let scaled = track_update(Some(&live), &scaled, &scaler).expect("tracks");
        let mf = entries(&scaled);
        let applier = mf
            .iter()
            .find(|e| e.operation == "Apply")
            .expect("apply entry");
        assert!(
            applier.fields.to_fields_v1()["f:spec"]
                .get("f:replicas")
                .is_none()
        );
        let update = mf
            .iter()
            .find(|e| e.operation == "Update")
            .expect("update entry");
        assert_eq!(update.subresource.as_deref(), Some("scale"));
        assert_eq!(
            update.fields.to_fields_v1(),
            json!({"f:spec": {"f:replicas": {}}})
        );

        let err = apply(
            Some(&scaled),
            &config(2, "nginx:1.25"),
            &fm("kubectl"),
            false,
        )
        .expect_err("conflict");
        assert!(
            err.to_string()
                .contains("conflict with \"kubectl\" using apps/v1: .spec.replicas"),
            "{err}"
        );
        // Leaving replicas out of the configuration avoids the conflict and
        // keeps the scaled value.
        let mut c = config(2, "nginx:1.25");
        c["spec"]
            .as_object_mut()
            .expect("spec")
            .shift_remove("replicas");
        let out = apply(Some(&scaled), &c, &fm("kubectl"), false).expect("applies");
        assert_eq!(out["spec"]["replicas"], 4);
    }

    #[test]
    fn track_update_moves_changed_fields() {
        let live = stored(
            track_update(None, &config(1, "nginx:1.25"), &fm("kubectl-create")).expect("tracks"),
        );
        let mut edited = live.clone();
        edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        edited["metadata"]["labels"]["new"] = json!("x");
        let out = track_update(Some(&live), &edited, &fm("kubectl-edit")).expect("tracks");
        let mf = entries(&out);
        assert_eq!(mf.len(), 2);
        let edit = mf
            .iter()
            .find(|e| e.manager == "kubectl-edit")
            .expect("edit entry");
        assert_eq!(
            edit.fields.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:new": {}}},
                "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}
            })
        );
        let create = mf
            .iter()
            .find(|e| e.manager == "kubectl-create")
            .expect("create entry");
        let owned = create.fields.to_fields_v1();
        assert!(
            owned["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]
                .get("f:image")
                .is_none()
        );
        assert!(owned["f:spec"].get("f:replicas").is_some());

        // A write that changes nothing leaves the entries alone.
        let again = track_update(Some(&out), &out, &fm("kubectl-edit")).expect("tracks");
        assert_eq!(entries(&again), mf);

        // Clearing managedFields resets ownership.
        let mut reset = out.clone();
        reset["metadata"]["managedFields"] = json!([]);
        let reset = track_update(Some(&out), &reset, &fm("x")).expect("tracks");
        assert!(reset["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn first_apply_on_untracked_object_conflicts() {
        let live = stored(config(1, "nginx:1.25"));
        let err = apply(Some(&live), &config(2, "nginx:1.25"), &fm("kubectl"), false)
            .expect_err("conflict");
        assert!(err.to_string().contains("\"before-first-apply\""), "{err}");
    }

    #[test]
    fn status_scope_owns_only_status() {
        let live =
            stored(apply(None, &config(2, "nginx:1.25"), &fm("kubectl"), false).expect("applies"));
        let mut status_fm = fm("kube-controller-manager");
        status_fm.subresource = Some("status");
        status_fm.scope = Scope::Status;
        let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 9},
            "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "False"}]}});
        let out = apply(Some(&live), &applied, &status_fm, false).expect("applies");
        assert_eq!(out["spec"]["replicas"], 2);
        assert_eq!(out["status"]["replicas"], 2);
        assert_eq!(out["status"]["conditions"][0]["status"], "False");
        let mf = entries(&out);
        let ctrl = mf
            .iter()
            .find(|e| e.manager == "kube-controller-manager")
            .expect("entry");
        assert_eq!(
            ctrl.fields.to_fields_v1(),
            json!({"f:status": {"f:conditions": {"k:{\"type\":\"Available\"}": {".": {}, "f:status": {}, "f:type": {}}}, "f:replicas": {}}})
        );
    }

    #[test]
    fn rejects_malformed_configurations() {
        let m = fm("kubectl");
        assert!(matches!(
            apply(None, &json!([]), &m, false),
            Err(ApplyError::Invalid(_))
        ));
        let no_kind = json!({"apiVersion": "apps/v1", "metadata": {"name": "x"}});
        assert!(apply(None, &no_kind, &m, false).is_err());
        let mut with_mf = config(1, "x");
        with_mf["metadata"]["managedFields"] = json!([]);
        let err = apply(None, &with_mf, &m, false).expect_err("managedFields set");
        assert_eq!(err.to_string(), "metadata.managedFields must be nil");
        let mut no_name = config(1, "x");
        no_name["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .expect("container")
            .shift_remove("name");
        assert!(matches!(
            apply(None, &no_name, &m, false),
            Err(ApplyError::Invalid(_))
        ));
    }

    #[test]
    fn service_ports_keyed_by_port_and_protocol() {
        let svc_fm = FieldManager {
            schema: Schema::builtin("", "Service").expect("built-in"),
            api_version: "v1",
            ..fm("kubectl")
        };
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}});
        let out = apply(None, &svc, &svc_fm, false).expect("applies");
        assert_eq!(
            out["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"],
            json!({"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:targetPort": {}}}, "f:selector": {}})
        );
        // The kernel defaults the protocol; the key still matches.
        let mut live = out.clone();
        live["spec"]["ports"][0]["protocol"] = json!("TCP");
        let mut svc2 = svc.clone();
        svc2["spec"]["ports"] = json!([{"port": 80, "targetPort": 9090}]);
        let out = apply(Some(&live), &svc2, &svc_fm, false).expect("applies");
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090, "protocol": "TCP"}])
        );
    }
}
