//! ResourceQuota: a create in a namespace with ResourceQuotas is refused
//! when it would take a tracked resource past `spec.hard`, with
//! Kubernetes' `exceeded quota: <name>, requested: ..., used: ...,
//! limited: ...`; admitted creates bring `status.used` up to date.
//!
//! Tracked: `pods`, `requests.cpu`/`cpu`, `requests.memory`/`memory`,
//! `limits.cpu`, `limits.memory` (pods not yet finished), and object counts
//! (`configmaps`, `secrets`, `services`, ... and `count/<resource>[.<group>]`).
//! Usage is counted from the store at each admission, so deletions show in
//! `status.used` at the next create in the namespace.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::limit_ranger::list_namespaced;
use super::quantity::{self, Milli};
use super::{AdmissionModule, AdmissionRequest, AdmissionResponse, Phase};
use crate::error::ApiError;
use crate::service::write::Part;
use crate::service::{Service, Target, WriteOptions};

/// Core resources whose count a quota may name without `count/`.
const CORE_COUNTED: &[&str] = &[
    "configmaps",
    "secrets",
    "services",
    "persistentvolumeclaims",
    "replicationcontrollers",
    "resourcequotas",
];

/// The ResourceQuota module.
pub struct ResourceQuota {
    service: Weak<Service>,
}

impl ResourceQuota {
    /// Reads and updates quotas through `service`.
    pub fn new(service: &Arc<Service>) -> Self {
        Self {
            service: Arc::downgrade(service),
        }
    }
}

/// The quota names a create of `resource` (of `group`) counts against.
fn count_keys(group: &str, resource: &str) -> Vec<String> {
    let mut keys = Vec::new();
    if group.is_empty() {
        if resource == "pods" || CORE_COUNTED.contains(&resource) {
            keys.push(resource.to_owned());
        }
        keys.push(format!("count/{resource}"));
    } else {
        keys.push(format!("count/{resource}.{group}"));
    }
    keys
}

/// What one pod uses of the compute resources a quota may track.
fn pod_usage(pod: &Value) -> BTreeMap<String, Milli> {
    let mut usage = BTreeMap::new();
    for (field, prefix) in [("requests", "requests."), ("limits", "limits.")] {
        for resource in ["cpu", "memory"] {
            let sum = |list: &str| -> (Milli, Milli) {
                let containers = pod
                    .pointer(&format!("/spec/{list}"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                let values: Vec<Milli> = containers
                    .iter()
                    .filter_map(|c| c["resources"][field][resource].as_str())
                    .filter_map(quantity::parse)
                    .collect();
                (
                    values.iter().sum(),
                    values.iter().copied().max().unwrap_or(0),
                )
            };
            let (containers, _) = sum("containers");
            let (_, init_max) = sum("initContainers");
            let value = containers.max(init_max);
            usage.insert(format!("{prefix}{resource}"), value);
            if field == "requests" {
                usage.insert(resource.to_owned(), value);
            }
        }
    }
    usage
}

/// Containers lacking a `requests`/`limits` value a quota tracks.
fn missing_compute(pod: &Value, tracked: &[String]) -> Vec<String> {
    let mut missing = Vec::new();
    for key in tracked {
        let (field, resource) = match key.split_once('.') {
            Some(("requests", r)) => ("requests", r),
            Some(("limits", r)) => ("limits", r),
            _ if key == "cpu" || key == "memory" => ("requests", key.as_str()),
            _ => continue,
        };
        let lacking: Vec<&str> = ["initContainers", "containers"]
            .iter()
            .filter_map(|l| pod.pointer(&format!("/spec/{l}")).and_then(Value::as_array))
            .flatten()
            .filter(|c| c["resources"][field][resource].as_str().is_none())
            .filter_map(|c| c["name"].as_str())
            .collect();
        if !lacking.is_empty() {
            missing.push(format!("{key} for: {}", lacking.join(",")));
        }
    }
    missing
}

fn finished(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

fn show(key: &str, value: Milli) -> String {
    let bytes = quantity::is_bytes(key);
    if key == "pods" || key.starts_with("count/") || CORE_COUNTED.contains(&key) {
        return (value / 1000).to_string();
    }
    quantity::format(value, bytes)
}

#[async_trait]
impl AdmissionModule for ResourceQuota {
    fn name(&self) -> &str {
        "ResourceQuota"
    }

    fn phase(&self) -> Phase {
        Phase::Validating
    }

    fn wants(&self, req: &AdmissionRequest) -> bool {
        req.operation == "CREATE" && req.sub_resource.is_empty() && !req.namespace.is_empty()
    }

    async fn review(&self, req: &AdmissionRequest) -> Result<AdmissionResponse, ApiError> {
        let quotas = list_namespaced(&self.service, "resourcequotas", "", &req.namespace).await?;
        if quotas.is_empty() {
            return Ok(AdmissionResponse::allow());
        }
        let is_pod = req.group.is_empty() && req.resource == "pods";
        let keys = count_keys(&req.group, &req.resource);
        // What this create adds, in thousandths.
        let mut requested: BTreeMap<String, Milli> =
            keys.iter().map(|k| (k.clone(), 1000)).collect();
        if is_pod {
            requested.extend(pod_usage(&req.object));
        }
        let tracked_by = |quota: &Value| -> Vec<String> {
            quota["spec"]["hard"]
                .as_object()
                .map(|h| {
                    h.keys()
                        .filter(|k| requested.contains_key(*k))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        if !quotas.iter().any(|q| !tracked_by(q).is_empty()) {
            return Ok(AdmissionResponse::allow());
        }
        // Current usage of everything tracked, from the store.
        let existing =
            list_namespaced(&self.service, &req.resource, &req.group, &req.namespace).await?;
        let mut used: BTreeMap<String, Milli> = BTreeMap::new();
        for object in &existing {
            if is_pod && finished(object) {
                continue;
            }
            for key in &keys {
                *used.entry(key.clone()).or_default() += 1000;
            }
            if is_pod {
                for (k, v) in pod_usage(object) {
                    *used.entry(k).or_default() += v;
                }
            }
        }
        for quota in &quotas {
            let tracked = tracked_by(quota);
            if tracked.is_empty() {
                continue;
            }
            let name = quota["metadata"]["name"].as_str().unwrap_or_default();
            if is_pod {
                let missing = missing_compute(&req.object, &tracked);
                if !missing.is_empty() {
                    return Err(ApiError::Forbidden(format!(
                        "failed quota: {name}: must specify {}",
                        missing.join("; ")
                    )));
                }
            }
            let mut over = Vec::new();
            for key in &tracked {
                let hard = quota["spec"]["hard"][key.as_str()]
                    .as_str()
                    .and_then(quantity::parse)
                    .or_else(|| {
                        quota["spec"]["hard"][key.as_str()]
                            .as_i64()
                            .map(|n| n as Milli * 1000)
                    })
                    .unwrap_or(0);
                let now = used.get(key).copied().unwrap_or(0);
                let adds = requested.get(key).copied().unwrap_or(0);
                if adds > 0 && now + adds > hard {
                    over.push((key.clone(), adds, now, hard));
                }
            }
            if !over.is_empty() {
                let list = |pick: &dyn Fn(&(String, Milli, Milli, Milli)) -> Milli| {
                    over.iter()
                        .map(|o| format!("{}={}", o.0, show(&o.0, pick(o))))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                return Err(ApiError::Forbidden(format!(
                    "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                    list(&|o| o.1),
                    list(&|o| o.2),
                    list(&|o| o.3)
                )));
            }
        }
        if !req.dry_run {
            self.record_usage(&req.namespace, &quotas, &used, &requested)
                .await;
        }
        Ok(AdmissionResponse::allow())
    }
}

impl ResourceQuota {
    /// Writes `status.hard` and `status.used` (with this create counted) of
    /// every quota that tracks something the create uses.
    async fn record_usage(
        &self,
        namespace: &str,
        quotas: &[Value],
        used: &BTreeMap<String, Milli>,
        requested: &BTreeMap<String, Milli>,
    ) {
        let Some(service) = self.service.upgrade() else {
            return;
        };
        let Some(rt) = service.registry().get("", "v1", "resourcequotas") else {
            return;
        };
        for quota in quotas {
            let Some(hard) = quota["spec"]["hard"].as_object() else {
                continue;
            };
            let mut status_used = quota["status"]["used"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            for key in hard.keys() {
                if let Some(adds) = requested.get(key) {
                    let total = used.get(key).copied().unwrap_or(0) + adds;
                    status_used.insert(key.clone(), json!(show(key, total)));
                }
            }
            let mut next = quota.clone();
            next["status"] = json!({ "hard": hard, "used": status_used });
            let name = quota["metadata"]["name"].as_str().unwrap_or_default();
            let target = Target {
                rt: rt.clone(),
                namespace: Some(namespace.to_owned()),
                name: Some(name.to_owned()),
            };
            if let Some(m) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                // An unconditional status write: usage is recounted each time.
                m.remove("resourceVersion");
            }
            let opts = WriteOptions {
                field_manager: "resourcequota-admission".into(),
                ..Default::default()
            };
            if let Err(e) = service.update(&target, next, Part::Status, &opts).await {
                tracing::warn!(quota = name, namespace, error = %e, "updating quota usage");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_use_their_containers_requests_and_limits() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2"}}}],
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "250m"}}},
            ],
        }});
        let usage = pod_usage(&pod);
        assert_eq!(
            usage["requests.cpu"], 2000,
            "init containers count at their max"
        );
        assert_eq!(usage["cpu"], 2000);
        assert_eq!(show("requests.memory", usage["requests.memory"]), "64Mi");
        assert_eq!(show("limits.memory", usage["limits.memory"]), "128Mi");
        assert_eq!(
            missing_compute(&pod, &["limits.cpu".into(), "requests.cpu".into()]),
            ["limits.cpu for: i,a,b"]
        );
        assert_eq!(
            count_keys("", "configmaps"),
            ["configmaps", "count/configmaps"]
        );
        assert_eq!(
            count_keys("apps", "deployments"),
            ["count/deployments.apps"]
        );
        assert_eq!(show("pods", 3000), "3");
    }
}
