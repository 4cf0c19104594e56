//! A container's environment: `envFrom`, then `env` (values, ConfigMap and
//! Secret keys, pod fields, container resources), with `$(VAR)` expansion.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::quantity;
use crate::refs::ObjectRefs;

/// Why an environment could not be built; shown as `CreateContainerConfigError`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    /// A referenced ConfigMap does not exist.
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    /// A referenced Secret does not exist.
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    /// A referenced key is not in its object.
    #[error("couldn't find key {key} in {kind} {namespace}/{name}")]
    KeyNotFound {
        /// `ConfigMap` or `Secret`.
        kind: &'static str,
        /// The object's namespace.
        namespace: String,
        /// The object's name.
        name: String,
        /// The missing key.
        key: String,
    },
    /// A fieldRef or resourceFieldRef names an unsupported field.
    #[error("unsupported field path {0}")]
    UnsupportedField(String),
}

/// What the pod's fields resolve to at container start.
#[derive(Clone, Debug, Default)]
pub struct PodFields {
    /// The pod's IP (empty before networking).
    pub pod_ip: String,
    /// The node's IP.
    pub host_ip: String,
    /// Node CPU in millicores (default of `limits.cpu` without a limit).
    pub node_cpu_millis: i64,
    /// Node memory in bytes (default of `limits.memory` without a limit).
    pub node_memory_bytes: i64,
}

/// The value of a `fieldRef` path of `pod`.
pub fn field_value(pod: &Pod, fields: &PodFields, path: &str) -> Result<String, EnvError> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let lookup = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_default()
    };
    if let Some(key) = bracket_key(path, "metadata.labels") {
        return Ok(lookup(&meta.labels, key));
    }
    if let Some(key) = bracket_key(path, "metadata.annotations") {
        return Ok(lookup(&meta.annotations, key));
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => fields.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => fields.host_ip.clone(),
        other => return Err(EnvError::UnsupportedField(other.to_owned())),
    })
}

/// `key` of `prefix['key']` (or `prefix["key"]`).
fn bracket_key<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path
        .strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?;
    rest.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| rest.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
}

/// `key="value"` lines, sorted, as the downward API writes maps.
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of a `resourceFieldRef` (`limits.cpu`, `requests.memory`, ...)
/// of `container`, in units of `divisor`.
pub fn resource_value(
    container: &Container,
    fields: &PodFields,
    resource: &str,
    divisor: Option<&str>,
) -> Result<String, EnvError> {
    let (section, name) = resource
        .split_once('.')
        .ok_or_else(|| EnvError::UnsupportedField(resource.to_owned()))?;
    let res = container.resources.as_ref();
    let map = match section {
        "limits" => res.and_then(|r| r.limits.as_ref()),
        "requests" => res.and_then(|r| r.requests.as_ref()),
        _ => return Err(EnvError::UnsupportedField(resource.to_owned())),
    };
    let set = map.and_then(|m| m.get(name)).map(|q| q.0.as_str());
    // Values in the smallest unit: millicores for cpu, bytes otherwise.
    let (amount, unit) = match name {
        "cpu" => (
            set.and_then(quantity::cpu_millis)
                .unwrap_or(if section == "limits" {
                    fields.node_cpu_millis
                } else {
                    0
                }),
            divisor.and_then(quantity::cpu_millis).unwrap_or(1000),
        ),
        "memory" | "ephemeral-storage" => (
            set.and_then(quantity::value)
                .unwrap_or(if section == "limits" {
                    fields.node_memory_bytes
                } else {
                    0
                }),
            divisor.and_then(quantity::value).unwrap_or(1),
        ),
        _ => return Err(EnvError::UnsupportedField(resource.to_owned())),
    };
    // Kubernetes rounds up to the divisor.
    let unit = unit.max(1);
    Ok(((amount + unit - 1) / unit).to_string())
}

/// The container's environment in order, later names overriding earlier ones.
pub fn resolve_env(
    pod: &Pod,
    container: &Container,
    fields: &PodFields,
    refs: &ObjectRefs,
) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: String, v: String| match env
        .iter_mut()
        .find(|(name, _)| *name == k)
    {
        Some(slot) => slot.1 = v,
        None => env.push((k, v)),
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(r) = &from.config_map_ref {
            match refs.config_map_data(&r.name) {
                Some(d) => d,
                None if r.optional == Some(true) => continue,
                None => return Err(EnvError::ConfigMapNotFound(r.name.clone())),
            }
        } else if let Some(r) = &from.secret_ref {
            match refs.secret_data(&r.name) {
                Some(d) => d,
                None if r.optional == Some(true) => continue,
                None => return Err(EnvError::SecretNotFound(r.name.clone())),
            }
        } else {
            continue;
        };
        for (k, v) in data {
            set(
                &mut env,
                format!("{prefix}{k}"),
                String::from_utf8_lossy(&v).into_owned(),
            );
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => {
                let known: BTreeMap<String, String> = env.iter().cloned().collect();
                expand(var.value.as_deref().unwrap_or(""), &known)
            }
            Some(source) => {
                if let Some(r) = &source.config_map_key_ref {
                    let found = refs.config_map_data(&r.name);
                    match key_value(found, "ConfigMap", &namespace, &r.name, &r.key) {
                        Ok(v) => v,
                        Err(_) if r.optional == Some(true) => continue,
                        Err(e) => return Err(e),
                    }
                } else if let Some(r) = &source.secret_key_ref {
                    let found = refs.secret_data(&r.name);
                    match key_value(found, "Secret", &namespace, &r.name, &r.key) {
                        Ok(v) => v,
                        Err(_) if r.optional == Some(true) => continue,
                        Err(e) => return Err(e),
                    }
                } else if let Some(r) = &source.field_ref {
                    field_value(pod, fields, &r.field_path)?
                } else if let Some(r) = &source.resource_field_ref {
                    let target = r
                        .container_name
                        .as_deref()
                        .and_then(|name| find_container(pod, name))
                        .unwrap_or(container);
                    resource_value(
                        target,
                        fields,
                        &r.resource,
                        r.divisor.as_ref().map(|d| d.0.as_str()),
                    )?
                } else {
                    String::new()
                }
            }
        };
        set(&mut env, var.name.clone(), value);
    }
    Ok(env)
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .find(|c| c.name == name)
}

fn key_value(
    data: Option<BTreeMap<String, Vec<u8>>>,
    kind: &'static str,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String, EnvError> {
    let Some(data) = data else {
        return Err(if kind == "ConfigMap" {
            EnvError::ConfigMapNotFound(name.to_owned())
        } else {
            EnvError::SecretNotFound(name.to_owned())
        });
    };
    data.get(key)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .ok_or_else(|| EnvError::KeyNotFound {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.to_owned(),
        })
}

/// Expands `$(NAME)` from `vars`; `$$` is a literal `$`; unknown names stay as written.
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod_with(container: serde_json::Value) -> Pod {
        let json = serde_json::json!({
            "metadata": {"name": "web", "namespace": "team", "uid": "u-1", "labels": {"app": "web"}},
            "spec": {"nodeName": "node-1", "containers": [container]}
        });
        match serde_json::from_value(json) {
            Ok(p) => p,
            Err(e) => panic!("bad test pod: {e}"),
        }
    }

    fn refs() -> ObjectRefs {
        let mut refs = ObjectRefs::default();
        refs.config_maps.insert(
            "settings".into(),
            ConfigMap {
                metadata: ObjectMeta::default(),
                data: Some(BTreeMap::from([
                    ("MODE".to_owned(), "fast".to_owned()),
                    ("LEVEL".to_owned(), "3".to_owned()),
                ])),
                ..ConfigMap::default()
            },
        );
        refs.secrets.insert(
            "creds".into(),
            Secret {
                data: Some(BTreeMap::from([(
                    "password".to_owned(),
                    ByteString(b"hunter2".to_vec()),
                )])),
                ..Secret::default()
            },
        );
        refs
    }

    fn fields() -> PodFields {
        PodFields {
            pod_ip: "10.244.0.5".into(),
            host_ip: "192.168.1.2".into(),
            node_cpu_millis: 2000,
            node_memory_bytes: 1 << 30,
        }
    }

    #[test]
    fn resolves_values_refs_fields_and_env_from_in_order() {
        let pod = pod_with(serde_json::json!({
            "name": "c", "image": "busybox",
            "resources": {"limits": {"memory": "64Mi"}},
            "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
            "env": [
                {"name": "PLAIN", "value": "x"},
                {"name": "CFG_MODE", "value": "override-$(PLAIN)"},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                {"name": "LVL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LEVEL"}}},
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": true}}}
            ]
        }));
        let c = &pod
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        let env = resolve_env(&pod, c, &fields(), &refs()).unwrap_or_default();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CFG_LEVEL"), Some("3"));
        assert_eq!(get("CFG_MODE"), Some("override-x"));
        assert_eq!(get("PW"), Some("hunter2"));
        assert_eq!(get("LVL"), Some("3"));
        assert_eq!(get("NAME"), Some("web"));
        assert_eq!(get("NS"), Some("team"));
        assert_eq!(get("UID"), Some("u-1"));
        assert_eq!(get("IP"), Some("10.244.0.5"));
        assert_eq!(get("NODE"), Some("node-1"));
        assert_eq!(get("APP"), Some("web"));
        assert_eq!(get("MEM"), Some("64"));
        assert_eq!(get("CPU"), Some("2"));
        assert_eq!(get("OPT"), None);
        // envFrom comes first, then env in order.
        assert_eq!(env[0].0, "CFG_LEVEL");
    }

    #[test]
    fn missing_references_are_errors_a_user_can_read() {
        let pod = pod_with(serde_json::json!({
            "name": "c", "image": "busybox",
            "env": [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "NOPE"}}}]
        }));
        let c = pod
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        let err = resolve_env(&pod, &c, &fields(), &refs()).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("couldn't find key NOPE in ConfigMap team/settings".to_owned())
        );
        let pod = pod_with(serde_json::json!({
            "name": "c", "image": "busybox", "envFrom": [{"secretRef": {"name": "absent"}}]
        }));
        let c = pod
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        assert_eq!(
            resolve_env(&pod, &c, &fields(), &refs()).err(),
            Some(EnvError::SecretNotFound("absent".into()))
        );
    }

    #[test]
    fn expansion_keeps_unknown_and_escapes() {
        let vars = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        assert_eq!(expand("$(A)-$(B)-$$(A)-$", &vars), "1-$(B)-$(A)-$");
    }
}
