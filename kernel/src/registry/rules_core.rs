//! Validation of Services, ConfigMaps and Secrets, with Kubernetes' messages.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::rules::{arr, one_of, port_range, s};
use super::validation::{config_map_key, dns1123_label, invalid_all, invalid_raw};
use crate::error::FieldError;

/// Service validation.
pub fn service(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    one_of(
        &spec,
        "type",
        "spec.type",
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        &mut errs,
    );
    one_of(
        &spec,
        "sessionAffinity",
        "spec.sessionAffinity",
        &["ClientIP", "None"],
        &mut errs,
    );
    let headless = s(&spec, "clusterIP") == "None";
    let ports = arr(spec.get("ports"));
    if ty == "ExternalName" {
        if s(&spec, "externalName").is_empty() {
            errs.push(FieldError::required("spec.externalName"));
        }
    } else if ports.is_empty() && !headless {
        errs.push(FieldError::required("spec.ports"));
    }
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let base = format!("spec.ports[{i}]");
        let name = s(p, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(FieldError::required(format!("{base}.name")));
        } else if !name.is_empty() {
            errs.extend(invalid_all(
                &format!("{base}.name"),
                name,
                dns1123_label(name),
            ));
            if !names.insert(name.to_owned()) {
                errs.push(FieldError::duplicate(format!("{base}.name"), &json!(name)));
            }
        }
        port_range(
            &format!("{base}.port"),
            p.get("port").unwrap_or(&json!(0)),
            false,
            &mut errs,
        );
        one_of(
            p,
            "protocol",
            &format!("{base}.protocol"),
            &["SCTP", "TCP", "UDP"],
            &mut errs,
        );
        if let Some(tp) = p.get("targetPort").filter(|v| v.is_number()) {
            port_range(&format!("{base}.targetPort"), tp, false, &mut errs);
        }
        if let Some(np) = p
            .get("nodePort")
            .filter(|v| v.as_i64().is_some_and(|n| n != 0))
        {
            if ty == "ClusterIP" || ty == "ExternalName" {
                errs.push(FieldError::forbidden(
                    format!("{base}.nodePort"),
                    format!("may not be used when `type` is '{ty}'"),
                ));
            } else {
                port_range(&format!("{base}.nodePort"), np, false, &mut errs);
            }
        }
    }
    if let Some(old) = old {
        let old_ty = old
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP");
        let old_ip = old
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        let new_ip = s(&spec, "clusterIP");
        if ty != "ExternalName"
            && old_ty != "ExternalName"
            && !old_ip.is_empty()
            && !new_ip.is_empty()
            && old_ip != new_ip
        {
            let ips: Vec<String> = arr(spec.get("clusterIPs"))
                .iter()
                .filter_map(Value::as_str)
                .map(|x| format!("{x:?}"))
                .collect();
            let ips = if ips.is_empty() {
                vec![format!("{new_ip:?}")]
            } else {
                ips
            };
            errs.push(invalid_raw(
                "spec.clusterIPs[0]",
                &format!("[]string{{{}}}", ips.join(", ")),
                "may not change once set",
            ));
        }
    }
    errs
}

fn validate_keys(obj: &Value, data_key: &str, binary_key: Option<&str>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for key in [Some(data_key), binary_key].into_iter().flatten() {
        let Some(map) = obj.get(key).and_then(Value::as_object) else {
            continue;
        };
        for k in map.keys() {
            let field = format!("{key}[{k}]");
            errs.extend(invalid_all(&field, k, config_map_key(k)));
            if !seen.insert(k.clone()) {
                errs.push(FieldError::invalid(
                    key,
                    &json!(k),
                    format!("duplicate of key present in {data_key}"),
                ));
            }
        }
    }
    errs
}

/// ConfigMap validation.
pub fn configmap(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    validate_keys(obj, "data", Some("binaryData"))
}

/// Secret validation.
pub fn secret(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = validate_keys(obj, "data", None);
    errs.extend(validate_keys(obj, "stringData", None));
    // A patch can put anything in `data`; the value never goes in the message.
    if let Some(data) = obj.get("data").and_then(Value::as_object) {
        use base64::Engine as _;
        for (k, v) in data {
            let decodes = v
                .as_str()
                .is_some_and(|v| base64::engine::general_purpose::STANDARD.decode(v).is_ok());
            if !decodes {
                errs.push(FieldError {
                    reason: "FieldValueInvalid",
                    field: format!("data[{k}]"),
                    message: format!(
                        "data[{k}]: Invalid value: \"<secret data>\": must be base64-encoded"
                    ),
                });
            }
        }
    }
    let ty = s(obj, "type");
    let has = |k: &str| {
        obj.pointer(&format!("/data/{k}")).is_some()
            || obj.pointer(&format!("/stringData/{k}")).is_some()
    };
    let required: &[&str] = match ty {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        _ => &[],
    };
    for k in required {
        if !has(k) {
            errs.push(FieldError::required(format!("data[{k}]")));
        }
    }
    if let Some(old) = old {
        let old_ty = s(old, "type");
        if !old_ty.is_empty() && old_ty != ty {
            errs.push(FieldError::invalid(
                "type",
                &json!(ty),
                "field is immutable",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn secret_data_must_be_base64_and_the_value_stays_out_of_the_message() {
        let good = json!({"data": {"k": "dmFsdWU="}});
        assert!(secret(&good, None).is_empty());
        let bad = json!({"data": {"k": "top-secret!"}});
        let errs = secret(&bad, None);
        assert_eq!(
            msgs(&errs),
            ["data[k]: Invalid value: \"<secret data>\": must be base64-encoded"]
        );
    }

    #[test]
    fn service_errors() {
        let s = json!({"spec": {"type": "Weird", "ports": [{"port": 0, "name": "a"}, {"port": 80, "name": "a", "nodePort": 30000}]}});
        assert_eq!(
            msgs(&service(&s, None)),
            vec![
                r#"spec.type: Unsupported value: "Weird": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort""#,
                "spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                r#"spec.ports[1].name: Duplicate value: "a""#,
            ]
        );
        assert_eq!(
            msgs(&service(&json!({"spec": {}}), None)),
            vec!["spec.ports: Required value"]
        );
        assert!(service(&json!({"spec": {"clusterIP": "None"}}), None).is_empty());
        assert_eq!(
            msgs(&service(&json!({"spec": {"type": "ExternalName"}}), None)),
            vec!["spec.externalName: Required value"]
        );
        let old = json!({"spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}});
        let new = json!({"spec": {"clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"], "ports": [{"port": 53}]}});
        assert_eq!(
            msgs(&service(&new, Some(&old))),
            vec![
                r#"spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set"#
            ]
        );
        let cip = json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}});
        assert_eq!(
            msgs(&service(&cip, None)),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
    }

    #[test]
    fn configmap_and_secret_keys() {
        let cm = json!({"data": {"ok.key": "1", "bad key": "2"}, "binaryData": {"ok.key": "AA=="}});
        let m = msgs(&configmap(&cm, None))
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        assert_eq!(m.len(), 2);
        assert!(m[0].starts_with(
            r#"data[bad key]: Invalid value: "bad key": a valid config key must consist"#
        ));
        assert_eq!(
            m[1],
            r#"binaryData: Invalid value: "ok.key": duplicate of key present in data"#
        );
        let tls = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "AA=="}});
        assert_eq!(
            msgs(&secret(&tls, None)),
            vec!["data[tls.key]: Required value"]
        );
        let old = json!({"type": "Opaque"});
        assert_eq!(
            msgs(&secret(&json!({"type": "x"}), Some(&old))),
            vec![r#"type: Invalid value: "x": field is immutable"#]
        );
    }
}
