//! Type-specific validation of built-in types, with Kubernetes' messages.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::validation::{
    dns1123_label, invalid_all, invalid_raw, validate_annotations, validate_labels,
};
use crate::error::FieldError;

pub(super) fn arr(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(super) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn port_range(field: &str, value: &Value, allow_zero: bool, errs: &mut Vec<FieldError>) {
    let Some(n) = value.as_i64() else { return };
    if (allow_zero && n == 0) || (1..=65535).contains(&n) {
        return;
    }
    errs.push(FieldError::invalid(
        field,
        value,
        "must be between 1 and 65535, inclusive",
    ));
}

fn non_negative(obj: &Value, pointer: &str, field: &str, errs: &mut Vec<FieldError>) {
    if let Some(v) = obj.pointer(pointer)
        && v.as_i64().is_some_and(|n| n < 0)
    {
        errs.push(FieldError::invalid(
            field,
            v,
            "must be greater than or equal to 0",
        ));
    }
}

pub(super) fn one_of(
    v: &Value,
    key: &str,
    field: &str,
    allowed: &[&str],
    errs: &mut Vec<FieldError>,
) {
    if let Some(val) = v.get(key).filter(|x| !x.is_null())
        && !val.as_str().is_some_and(|x| allowed.contains(&x))
    {
        errs.push(FieldError::not_supported(field, val, allowed));
    }
}

fn validate_containers(
    spec: &Value,
    base: &str,
    names: &mut HashSet<String>,
    key: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, c) in arr(spec.get(key)).iter().enumerate() {
        let path = format!("{base}.{key}[{i}]");
        let name = s(c, "name");
        if name.is_empty() {
            errs.push(FieldError::required(format!("{path}.name")));
        } else {
            errs.extend(invalid_all(
                &format!("{path}.name"),
                name,
                dns1123_label(name),
            ));
            if !names.insert(name.to_owned()) {
                errs.push(FieldError::duplicate(format!("{path}.name"), &json!(name)));
            }
        }
        if s(c, "image").trim().is_empty() {
            errs.push(FieldError::required(format!("{path}.image")));
        }
        one_of(
            c,
            "imagePullPolicy",
            &format!("{path}.imagePullPolicy"),
            &["Always", "IfNotPresent", "Never"],
            &mut errs,
        );
        for (j, p) in arr(c.get("ports")).iter().enumerate() {
            let pp = format!("{path}.ports[{j}]");
            match p.get("containerPort") {
                None | Some(Value::Null) => {
                    errs.push(FieldError::required(format!("{pp}.containerPort")))
                }
                Some(v) if v.as_i64() == Some(0) => {
                    errs.push(FieldError::required(format!("{pp}.containerPort")))
                }
                Some(v) => port_range(&format!("{pp}.containerPort"), v, false, &mut errs),
            }
            if let Some(v) = p.get("hostPort") {
                port_range(&format!("{pp}.hostPort"), v, true, &mut errs);
            }
            one_of(
                p,
                "protocol",
                &format!("{pp}.protocol"),
                &["SCTP", "TCP", "UDP"],
                &mut errs,
            );
        }
    }
    errs
}

/// Validates a pod spec at `base` (`spec` or `spec.template.spec`).
pub fn validate_pod_spec(spec: Option<&Value>, base: &str) -> Vec<FieldError> {
    let spec = spec.cloned().unwrap_or(Value::Null);
    let mut errs = Vec::new();
    if arr(spec.get("containers")).is_empty() {
        errs.push(FieldError::required(format!("{base}.containers")));
    }
    let mut names = HashSet::new();
    errs.extend(validate_containers(&spec, base, &mut names, "containers"));
    errs.extend(validate_containers(
        &spec,
        base,
        &mut names,
        "initContainers",
    ));
    one_of(
        &spec,
        "restartPolicy",
        &format!("{base}.restartPolicy"),
        &["Always", "OnFailure", "Never"],
        &mut errs,
    );
    one_of(
        &spec,
        "dnsPolicy",
        &format!("{base}.dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        &mut errs,
    );
    if let Some(v) = spec.get("terminationGracePeriodSeconds")
        && v.as_i64().is_some_and(|n| n < 0)
    {
        errs.push(FieldError::invalid(
            format!("{base}.terminationGracePeriodSeconds"),
            v,
            "must be greater than or equal to 0",
        ));
    }
    errs
}

/// The pod spec fields Kubernetes lets an update change, as its message lists them.
const POD_UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A pod spec with the fields an update may change blanked out.
fn pod_spec_frozen(spec: Option<&Value>, node_name: Option<&Value>) -> Value {
    let mut spec = spec.cloned().unwrap_or_else(|| json!({}));
    if let Some(m) = spec.as_object_mut() {
        for key in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
        ] {
            m.remove(key);
        }
        // Binding sets nodeName once; kerno's scheduler may do it by update.
        if let Some(n) = node_name {
            m.insert("nodeName".into(), n.clone());
        }
        for key in ["containers", "initContainers"] {
            if let Some(Value::Array(cs)) = m.get_mut(key) {
                for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                    c.remove("image");
                }
            }
        }
    }
    spec
}

/// Pod validation; on update, only the fields Kubernetes allows may change.
pub fn pod(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = validate_pod_spec(obj.get("spec"), "spec");
    if let Some(old) = old {
        let old_node = old
            .pointer("/spec/nodeName")
            .filter(|n| n.as_str().is_some_and(|s| !s.is_empty()));
        // An unbound pod may get its node; a bound one keeps it.
        let node = match old_node {
            Some(_) => None,
            None => obj.pointer("/spec/nodeName").cloned(),
        };
        let new_frozen = pod_spec_frozen(obj.get("spec"), node.as_ref());
        let old_frozen = pod_spec_frozen(old.get("spec"), node.as_ref());
        if new_frozen != old_frozen {
            errs.push(FieldError::forbidden(
                "spec",
                format!("pod updates may not change fields other than {POD_UPDATABLE}"),
            ));
        }
        let old_tol = arr(old.pointer("/spec/tolerations"));
        let new_tol = arr(obj.pointer("/spec/tolerations"));
        if old_tol.iter().any(|t| !new_tol.contains(t)) {
            errs.push(FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
        }
    }
    errs
}

/// Go's `%#v` of a `map[string]string`, as Kubernetes prints label maps.
pub fn go_string_map(v: Option<&Value>) -> String {
    match v.and_then(Value::as_object) {
        None => "map[string]string(nil)".to_owned(),
        Some(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            let items: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{k:?}:{:?}", v.as_str().unwrap_or("")))
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// Go's `%#v` of a `metav1.LabelSelector` (match expressions summarized).
pub fn go_label_selector(sel: &Value) -> String {
    let exprs = match sel.get("matchExpressions").and_then(Value::as_array) {
        Some(e) if !e.is_empty() => format!("[]v1.LabelSelectorRequirement{{ /* {} */ }}", e.len()),
        _ => "[]v1.LabelSelectorRequirement(nil)".to_owned(),
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
        go_string_map(sel.get("matchLabels"))
    )
}

/// Whether a label selector (matchLabels and matchExpressions) selects `labels`.
pub fn selector_matches(sel: &Value, labels: Option<&Value>) -> bool {
    let empty = serde_json::Map::new();
    let labels = labels.and_then(Value::as_object).unwrap_or(&empty);
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            if label(k) != v.as_str() {
                return false;
            }
        }
    }
    for e in arr(sel.get("matchExpressions")) {
        let key = s(e, "key");
        let values: Vec<&str> = arr(e.get("values"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let ok = match s(e, "operator") {
            "In" => label(key).is_some_and(|v| values.contains(&v)),
            "NotIn" => label(key).is_none_or(|v| !values.contains(&v)),
            "Exists" => label(key).is_some(),
            "DoesNotExist" => label(key).is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn selector_is_empty(sel: &Value) -> bool {
    sel.get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty())
        && arr(sel.get("matchExpressions")).is_empty()
}

/// Selector and template checks shared by workload controllers. `kind` is
/// the lower-case word Kubernetes uses in "empty selector is invalid for …".
fn validate_selector_template(
    obj: &Value,
    old: Option<&Value>,
    spec_ptr: &str,
    base: &str,
    kind: &str,
    restart: &[&str],
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.pointer(spec_ptr).cloned().unwrap_or(Value::Null);
    let template = spec.get("template").cloned().unwrap_or(Value::Null);
    let tlabels = template.pointer("/metadata/labels");
    match spec.get("selector").filter(|v| !v.is_null()) {
        None => errs.push(FieldError::required(format!("{base}.selector"))),
        Some(sel) if selector_is_empty(sel) => errs.push(invalid_raw(
            &format!("{base}.selector"),
            &go_label_selector(sel),
            &format!("empty selector is invalid for {kind}"),
        )),
        Some(sel) => {
            if !selector_matches(sel, tlabels) {
                errs.push(invalid_raw(
                    &format!("{base}.template.metadata.labels"),
                    &go_string_map(tlabels),
                    "`selector` does not match template `labels`",
                ));
            }
            if let Some(old_sel) = old.and_then(|o| o.pointer(&format!("{spec_ptr}/selector")))
                && old_sel != sel
            {
                errs.push(invalid_raw(
                    &format!("{base}.selector"),
                    &go_label_selector(sel),
                    "field is immutable",
                ));
            }
        }
    }
    errs.extend(validate_labels(
        tlabels,
        &format!("{base}.template.metadata.labels"),
    ));
    errs.extend(validate_annotations(
        template.pointer("/metadata/annotations"),
        &format!("{base}.template.metadata.annotations"),
    ));
    let pod_spec = template.get("spec");
    let tbase = format!("{base}.template.spec");
    errs.extend(validate_pod_spec(pod_spec, &tbase));
    if let Some(rp) = pod_spec.and_then(|p| p.get("restartPolicy"))
        && !rp.as_str().is_some_and(|r| restart.contains(&r))
        && rp
            .as_str()
            .is_some_and(|r| ["Always", "OnFailure", "Never"].contains(&r))
    {
        errs.push(FieldError::not_supported(
            format!("{tbase}.restartPolicy"),
            rp,
            restart,
        ));
    }
    errs
}

/// Deployment validation.
pub fn deployment(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_negative(obj, "/spec/replicas", "spec.replicas", &mut errs);
    errs.extend(validate_selector_template(
        obj,
        old,
        "/spec",
        "spec",
        "deployment",
        &["Always"],
    ));
    if let Some(st) = obj.pointer("/spec/strategy") {
        one_of(
            st,
            "type",
            "spec.strategy.type",
            &["Recreate", "RollingUpdate"],
            &mut errs,
        );
        if s(st, "type") == "Recreate" && st.get("rollingUpdate").is_some_and(|v| !v.is_null()) {
            errs.push(FieldError::forbidden(
                "spec.strategy.rollingUpdate",
                "may not be specified when strategy `type` is 'Recreate'",
            ));
        }
        if let Some(ru) = st.get("rollingUpdate").filter(|v| v.is_object()) {
            errs.extend(validate_rolling_update(ru, "spec.strategy.rollingUpdate"));
        }
    }
    non_negative(
        obj,
        "/spec/revisionHistoryLimit",
        "spec.revisionHistoryLimit",
        &mut errs,
    );
    errs
}

/// An int-or-string as Go's `IntOrString.String()` prints it, and whether
/// it is zero. `None` for a malformed percentage.
fn int_or_percent(v: &Value) -> Option<(String, bool, Option<i64>)> {
    match v {
        Value::Number(n) => n.as_i64().map(|i| (i.to_string(), i == 0, None)),
        Value::String(s) => {
            let pct = s.strip_suffix('%')?.parse::<i64>().ok()?;
            Some((s.clone(), pct == 0, Some(pct)))
        }
        _ => None,
    }
}

/// `maxUnavailable` / `maxSurge` of a rolling update, as apps validation checks them.
fn validate_rolling_update(ru: &Value, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut zero = [false, false];
    for (n, key) in ["maxUnavailable", "maxSurge"].into_iter().enumerate() {
        let Some(v) = ru.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let field = format!("{base}.{key}");
        match int_or_percent(v) {
            None => errs.push(invalid_raw(&field, &v.to_string(), "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")),
            Some((shown, is_zero, pct)) => {
                zero[n] = is_zero;
                let negative = pct.map_or_else(|| v.as_i64().is_some_and(|i| i < 0), |p| p < 0);
                if negative {
                    errs.push(invalid_raw(&field, &shown, "must be greater than or equal to 0"));
                }
                if key == "maxUnavailable" && pct.is_some_and(|p| p > 100) {
                    errs.push(invalid_raw(&field, &shown, "must not be greater than 100%"));
                }
            }
        }
    }
    if zero == [true, true] {
        let shown = ru
            .get("maxUnavailable")
            .and_then(int_or_percent)
            .map(|x| x.0)
            .unwrap_or_default();
        errs.push(invalid_raw(
            &format!("{base}.maxUnavailable"),
            &shown,
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    errs
}

/// ReplicaSet validation.
pub fn replicaset(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_negative(obj, "/spec/replicas", "spec.replicas", &mut errs);
    errs.extend(validate_selector_template(
        obj,
        old,
        "/spec",
        "spec",
        "replicaset",
        &["Always"],
    ));
    errs
}

/// StatefulSet validation.
pub fn statefulset(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_negative(obj, "/spec/replicas", "spec.replicas", &mut errs);
    if let Some(spec) = obj.get("spec") {
        one_of(
            spec,
            "podManagementPolicy",
            "spec.podManagementPolicy",
            &["OrderedReady", "Parallel"],
            &mut errs,
        );
    }
    errs.extend(validate_selector_template(
        obj,
        old,
        "/spec",
        "spec",
        "statefulset",
        &["Always"],
    ));
    errs
}

/// DaemonSet validation.
pub fn daemonset(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    validate_selector_template(obj, old, "/spec", "spec", "daemonset", &["Always"])
}

fn job_spec(obj: &Value, old: Option<&Value>, ptr: &str, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in [
        "parallelism",
        "completions",
        "backoffLimit",
        "activeDeadlineSeconds",
    ] {
        non_negative(
            obj,
            &format!("{ptr}/{f}"),
            &format!("{base}.{f}"),
            &mut errs,
        );
    }
    let spec = obj.pointer(ptr).cloned().unwrap_or(Value::Null);
    let rp = spec
        .pointer("/template/spec/restartPolicy")
        .cloned()
        .unwrap_or(json!(""));
    if !rp
        .as_str()
        .is_some_and(|r| r == "OnFailure" || r == "Never")
    {
        errs.push(FieldError::not_supported(
            format!("{base}.template.spec.restartPolicy"),
            &rp,
            &["OnFailure", "Never"],
        ));
    }
    if spec.get("selector").is_some_and(|v| !v.is_null()) {
        errs.extend(validate_selector_template(
            obj,
            old,
            ptr,
            base,
            "job",
            // The restart policy was checked above; don't report it twice.
            &["Always", "OnFailure", "Never"],
        ));
    } else {
        // A job template's selector is generated on create; only check the pod spec.
        errs.extend(validate_pod_spec(
            spec.pointer("/template/spec"),
            &format!("{base}.template.spec"),
        ));
    }
    errs
}

/// Job validation.
pub fn job(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    job_spec(obj, old, "/spec", "spec")
}

/// CronJob validation.
pub fn cronjob(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    if s(&spec, "schedule").is_empty() {
        errs.push(FieldError::required("spec.schedule"));
    }
    one_of(
        &spec,
        "concurrencyPolicy",
        "spec.concurrencyPolicy",
        &["Allow", "Forbid", "Replace"],
        &mut errs,
    );
    errs.extend(job_spec(
        obj,
        old,
        "/spec/jobTemplate/spec",
        "spec.jobTemplate.spec",
    ));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn pod_updates() {
        let old = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}], "restartPolicy": "Always"}});
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("x:2");
        new["spec"]["nodeName"] = json!("n1");
        assert!(pod(&new, Some(&old)).is_empty());
        let mut moved = new.clone();
        moved["spec"]["nodeName"] = json!("n2");
        assert!(pod(&moved, Some(&new))[0].message.starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"));
        let mut changed = old.clone();
        changed["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(pod(&changed, Some(&old)).len(), 1);
    }

    #[test]
    fn pod_errors() {
        assert_eq!(
            msgs(&pod(&json!({"spec": {}}), None)),
            vec!["spec.containers: Required value"]
        );
        let p = json!({"spec": {"restartPolicy": "Sometimes", "containers": [
            {"name": "app", "image": "x", "ports": [{"containerPort": 70000}, {"containerPort": 80, "protocol": "ICMP"}]},
            {"name": "app"},
            {"image": "y"}]}});
        assert_eq!(
            msgs(&pod(&p, None)),
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                r#"spec.containers[0].ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
                r#"spec.containers[1].name: Duplicate value: "app""#,
                "spec.containers[1].image: Required value",
                "spec.containers[2].name: Required value",
                r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
            ]
        );
    }

    fn deploy(sel: Value, labels: Value) -> Value {
        json!({"spec": {"replicas": -1, "selector": sel, "template": {"metadata": {"labels": labels},
            "spec": {"containers": [{"name": "a", "image": "x"}]}}}})
    }

    #[test]
    fn deployment_selector_rules() {
        let d = deploy(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "api", "tier": "x"}),
        );
        assert_eq!(
            msgs(&deployment(&d, None)),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                r#"spec.template.metadata.labels: Invalid value: map[string]string{"app":"api", "tier":"x"}: `selector` does not match template `labels`"#,
            ]
        );
        let mut ok = deploy(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        ok["spec"]["replicas"] = json!(2);
        assert!(deployment(&ok, None).is_empty());
        let mut changed = ok.clone();
        changed["spec"]["selector"] = json!({"matchLabels": {"app": "web2"}});
        changed["spec"]["template"]["metadata"]["labels"] = json!({"app": "web2"});
        assert_eq!(
            msgs(&deployment(&changed, Some(&ok))),
            vec![
                r#"spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"#
            ]
        );
        let mut never = ok.clone();
        never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            msgs(&deployment(&never, None)),
            vec![
                r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#
            ]
        );
        let mut nosel = ok;
        nosel["spec"].as_object_mut().map(|m| m.remove("selector"));
        assert_eq!(
            msgs(&replicaset(&nosel, None)),
            vec!["spec.selector: Required value"]
        );
    }

    #[test]
    fn rolling_update_rules() {
        let mut d = deploy(
            json!({"matchLabels": {"app": "web"}}),
            json!({"app": "web"}),
        );
        d["spec"]["replicas"] = json!(1);
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}});
        assert_eq!(
            msgs(&deployment(&d, None)),
            vec![
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 0: may not be 0 when `maxSurge` is 0"
            ]
        );
        d["spec"]["strategy"]["rollingUpdate"] = json!({"maxUnavailable": "120%", "maxSurge": 1});
        assert_eq!(
            msgs(&deployment(&d, None)),
            vec![
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: 120%: must not be greater than 100%"
            ]
        );
        d["spec"]["strategy"]["rollingUpdate"] =
            json!({"maxUnavailable": "25%", "maxSurge": "25%"});
        assert!(deployment(&d, None).is_empty());
    }

    #[test]
    fn selector_expressions() {
        let sel = json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "canary", "operator": "DoesNotExist"}]});
        assert!(selector_matches(&sel, Some(&json!({"env": "dev"}))));
        assert!(!selector_matches(
            &sel,
            Some(&json!({"env": "dev", "canary": "1"}))
        ));
        assert!(!selector_matches(&sel, None));
    }

    #[test]
    fn job_and_cronjob() {
        let j = json!({"spec": {"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "a", "image": "x"}]}}}});
        assert_eq!(
            msgs(&job(&j, None)),
            vec![
                r#"spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never""#
            ]
        );
        let mut defaulted = j.clone();
        super::super::defaults::job(&mut defaulted);
        assert_eq!(job(&defaulted, None).len(), 1);
        defaulted["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert!(job(&defaulted, None).is_empty());
        let c = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "a", "image": "x"}]}}}}}});
        assert_eq!(
            msgs(&cronjob(&c, None)),
            vec!["spec.schedule: Required value"]
        );
    }
}
