//! Validation of RBAC objects (roles, cluster roles and their bindings),
//! with Kubernetes' messages.

use serde_json::{Value, json};

use super::validation::invalid_raw;
use crate::error::FieldError;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn arr(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn required(field: String, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueRequired",
        message: format!("{field}: Required value: {detail}"),
        field,
    }
}

fn validate_rules(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, rule) in arr(obj.get("rules")).iter().enumerate() {
        let base = format!("rules[{i}]");
        if arr(rule.get("verbs")).is_empty() {
            errs.push(required(
                format!("{base}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = arr(rule.get("nonResourceURLs"));
        if !urls.is_empty() {
            let shown = format!(
                "[]string{{{}}}",
                urls.iter()
                    .map(|u| format!("{:?}", u.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if namespaced {
                errs.push(invalid_raw(
                    &format!("{base}.nonResourceURLs"),
                    &shown,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !arr(rule.get("apiGroups")).is_empty() || !arr(rule.get("resources")).is_empty() {
                errs.push(invalid_raw(
                    &format!("{base}.nonResourceURLs"),
                    &shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr(rule.get("apiGroups")).is_empty() {
            errs.push(required(
                format!("{base}.apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if arr(rule.get("resources")).is_empty() {
            errs.push(required(
                format!("{base}.resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    errs
}

/// Role validation.
pub fn role(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    validate_rules(obj, true)
}

/// ClusterRole validation.
pub fn cluster_role(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    validate_rules(obj, false)
}

fn go_role_ref(r: &Value) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
        s(r, "apiGroup"),
        s(r, "kind"),
        s(r, "name")
    )
}

fn validate_binding(
    obj: &Value,
    old: Option<&Value>,
    kinds: &[&str],
    namespaced: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let role_ref = obj.get("roleRef").cloned().unwrap_or(Value::Null);
    let group = role_ref.get("apiGroup").cloned().unwrap_or(json!(""));
    if group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            &group,
            &[RBAC_GROUP],
        ));
    }
    match role_ref.get("kind").and_then(Value::as_str) {
        None | Some("") => errs.push(FieldError::required("roleRef.kind")),
        Some(k) if !kinds.contains(&k) => {
            errs.push(FieldError::not_supported("roleRef.kind", &json!(k), kinds))
        }
        Some(_) => {}
    }
    if s(&role_ref, "name").is_empty() {
        errs.push(FieldError::required("roleRef.name"));
    }
    for (i, sub) in arr(obj.get("subjects")).iter().enumerate() {
        let base = format!("subjects[{i}]");
        if s(sub, "name").is_empty() {
            errs.push(FieldError::required(format!("{base}.name")));
        }
        let api_group = sub.get("apiGroup").cloned().unwrap_or(json!(""));
        match s(sub, "kind") {
            "ServiceAccount" => {
                if api_group != "" {
                    errs.push(FieldError::not_supported(
                        format!("{base}.apiGroup"),
                        &api_group,
                        &[""],
                    ));
                }
                if !namespaced && s(sub, "namespace").is_empty() {
                    errs.push(FieldError::required(format!("{base}.namespace")));
                }
            }
            "User" | "Group" => {
                if api_group != RBAC_GROUP {
                    errs.push(FieldError::not_supported(
                        format!("{base}.apiGroup"),
                        &api_group,
                        &[RBAC_GROUP],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                format!("{base}.kind"),
                &json!(other),
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    if let Some(old_ref) = old.and_then(|o| o.get("roleRef"))
        && *old_ref != role_ref
    {
        errs.push(invalid_raw(
            "roleRef",
            &go_role_ref(&role_ref),
            "cannot change roleRef",
        ));
    }
    errs
}

/// RoleBinding validation.
pub fn role_binding(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    validate_binding(obj, old, &["Role", "ClusterRole"], true)
}

/// ClusterRoleBinding validation.
pub fn cluster_role_binding(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    validate_binding(obj, old, &["ClusterRole"], false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn role_rules() {
        let r = json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
            {"resources": ["pods"]}, {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]});
        assert_eq!(
            msgs(role(&r, None)),
            vec![
                "rules[1].verbs: Required value: verbs must contain at least one value",
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                r#"rules[2].nonResourceURLs: Invalid value: []string{"/healthz"}: namespaced rules cannot apply to non-resource URLs"#,
            ]
        );
        assert_eq!(cluster_role(&r, None).len(), 2);
    }

    #[test]
    fn bindings() {
        let b = json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "default"}, {"kind": "User", "name": "alice", "apiGroup": RBAC_GROUP},
                {"kind": "Robot", "name": "r"}]});
        assert_eq!(
            msgs(role_binding(&b, None)),
            vec![
                r#"subjects[2].kind: Unsupported value: "Robot": supported values: "ServiceAccount", "User", "Group""#
            ]
        );
        assert_eq!(
            msgs(cluster_role_binding(&b, None))[0],
            "subjects[0].namespace: Required value"
        );
        let mut changed = b.clone();
        changed["roleRef"]["name"] = json!("edit");
        assert!(msgs(role_binding(&changed, Some(&b))).contains(
            &r#"roleRef: Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"ClusterRole", Name:"edit"}: cannot change roleRef"#.to_owned()
        ));
        let bad = json!({"roleRef": {"kind": "Role"}});
        assert_eq!(
            msgs(cluster_role_binding(&bad, None)),
            vec![
                r#"roleRef.apiGroup: Unsupported value: "": supported values: "rbac.authorization.k8s.io""#,
                r#"roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole""#,
                "roleRef.name: Required value",
            ]
        );
    }
}
