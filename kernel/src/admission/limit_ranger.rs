//! LimitRanger: a pod's containers get the `default` limits and
//! `defaultRequest` requests of their namespace's LimitRanges (type
//! `Container`), then must fit their `min` and `max`, with Kubernetes'
//! messages (`maximum cpu usage per Container is 1, but limit is 2`).

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::quantity;
use super::{AdmissionModule, AdmissionRequest, AdmissionResponse, Phase};
use crate::error::ApiError;
use crate::service::{ListOptions, Service, Target};

/// The LimitRanger module.
pub struct LimitRanger {
    service: Weak<Service>,
}

impl LimitRanger {
    /// Reads LimitRanges through `service`.
    pub fn new(service: &Arc<Service>) -> Self {
        Self {
            service: Arc::downgrade(service),
        }
    }
}

/// The objects of `resource` (of `group`) in `namespace`, as the store has them now.
pub(super) async fn list_namespaced(
    service: &Weak<Service>,
    resource: &str,
    group: &str,
    namespace: &str,
) -> Result<Vec<Value>, ApiError> {
    let service = service
        .upgrade()
        .ok_or_else(|| ApiError::ServiceUnavailable("the kernel is stopping".into()))?;
    let found = service
        .registry()
        .all()
        .into_iter()
        .find(|rt| rt.group == group && rt.plural == resource);
    let Some(rt) = found else {
        return Ok(Vec::new());
    };
    let target = Target {
        rt,
        namespace: Some(namespace.to_owned()),
        name: None,
    };
    let page = service.list(&target, &ListOptions::default()).await?;
    Ok(page.items.iter().map(|o| o.value()).collect())
}

#[async_trait]
impl AdmissionModule for LimitRanger {
    fn name(&self) -> &str {
        "LimitRanger"
    }

    fn phase(&self) -> Phase {
        Phase::Mutating
    }

    fn wants(&self, req: &AdmissionRequest) -> bool {
        super::is_pod_create(req)
    }

    async fn review(&self, req: &AdmissionRequest) -> Result<AdmissionResponse, ApiError> {
        let ranges = list_namespaced(&self.service, "limitranges", "", &req.namespace).await?;
        if ranges.is_empty() {
            return Ok(AdmissionResponse::allow());
        }
        let mut pod = req.object.clone();
        let notes = apply_defaults(&mut pod, &ranges);
        let problems = check_bounds(&pod, &ranges);
        if !problems.is_empty() {
            let message = if problems.len() == 1 {
                problems.concat()
            } else {
                format!("[{}]", problems.join(", "))
            };
            return Err(ApiError::Forbidden(message));
        }
        if notes.is_empty() {
            return Ok(AdmissionResponse::allow());
        }
        if let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| json!({}))
                .as_object_mut();
            if let Some(a) = annotations {
                a.insert(
                    "kubernetes.io/limit-ranger".into(),
                    json!(format!("LimitRanger plugin set: {}", notes.join("; "))),
                );
            }
        }
        Ok(AdmissionResponse::mutate(pod))
    }
}

/// The `Container` items of the LimitRanges.
fn container_limits(ranges: &[Value]) -> impl Iterator<Item = &Value> {
    ranges
        .iter()
        .filter_map(|r| r.pointer("/spec/limits").and_then(Value::as_array))
        .flatten()
        .filter(|l| l["type"].as_str().unwrap_or("Container") == "Container")
}

/// Sets missing requests and limits; returns notes for the annotation.
fn apply_defaults(pod: &mut Value, ranges: &[Value]) -> Vec<String> {
    let mut defaults: Map<String, Value> = Map::new();
    let mut default_requests: Map<String, Value> = Map::new();
    for item in container_limits(ranges) {
        if let Some(d) = item["default"].as_object() {
            for (k, v) in d {
                defaults.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        // A resource without a defaultRequest is requested at its default
        // limit, as Kubernetes defaults LimitRanges.
        let requests = item["defaultRequest"].as_object().into_iter().flatten();
        let limits = item["default"].as_object().into_iter().flatten();
        for (k, v) in requests.chain(limits) {
            default_requests
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
    }
    let mut notes = Vec::new();
    for list in ["initContainers", "containers"] {
        let Some(containers) = pod
            .pointer_mut(&format!("/spec/{list}"))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for container in containers {
            let name = container["name"].as_str().unwrap_or_default().to_owned();
            for (field, from, what) in [
                ("requests", &default_requests, "request"),
                ("limits", &defaults, "limit"),
            ] {
                let mut set = Vec::new();
                let Some(c) = container.as_object_mut() else {
                    continue;
                };
                let resources = c
                    .entry("resources")
                    .or_insert_with(|| json!({}))
                    .as_object_mut();
                let Some(resources) = resources else { continue };
                for (resource, value) in from {
                    let slot = resources.entry(field).or_insert_with(|| json!({}));
                    if let Some(slot) = slot.as_object_mut()
                        && !slot.contains_key(resource)
                    {
                        slot.insert(resource.clone(), value.clone());
                        set.push(resource.clone());
                    }
                }
                if resources.get(field).is_some_and(|v| v == &json!({})) {
                    resources.remove(field);
                }
                if !set.is_empty() {
                    notes.push(format!("{} {what} for container {name}", set.join(", ")));
                }
            }
        }
    }
    notes
}

/// Kubernetes' messages for containers outside `min`/`max`.
fn check_bounds(pod: &Value, ranges: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let containers = ["initContainers", "containers"]
        .iter()
        .filter_map(|l| pod.pointer(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten();
    for container in containers {
        let resources = &container["resources"];
        for item in container_limits(ranges) {
            for (bound, wanted) in [("min", "request"), ("max", "limit")] {
                let Some(bounds) = item[bound].as_object() else {
                    continue;
                };
                for (resource, limit) in bounds {
                    let limit_text = limit.as_str().unwrap_or_default();
                    let Some(limit_value) = quantity::parse(limit_text) else {
                        continue;
                    };
                    let field = if wanted == "request" {
                        "requests"
                    } else {
                        "limits"
                    };
                    let given = resources[field][resource.as_str()].as_str();
                    let word = if bound == "min" { "minimum" } else { "maximum" };
                    match given.and_then(|g| quantity::parse(g).map(|v| (g, v))) {
                        None => problems.push(format!(
                            "{word} {resource} usage per Container is {limit_text}.  No {wanted} is specified"
                        )),
                        Some((g, v)) => {
                            let outside = if bound == "min" {
                                v < limit_value
                            } else {
                                v > limit_value
                            };
                            if outside {
                                problems.push(format!(
                                    "{word} {resource} usage per Container is {limit_text}, but {wanted} is {g}"
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges() -> Vec<Value> {
        vec![json!({"spec": {"limits": [{
            "type": "Container",
            "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "100m"},
            "max": {"cpu": "1"},
        }]}})]
    }

    #[test]
    fn defaults_fill_only_what_is_missing() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a"},
            {"name": "b", "resources": {"limits": {"cpu": "200m"}}},
        ]}});
        let notes = apply_defaults(&mut pod, &ranges());
        let a = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(a["requests"]["cpu"], "100m");
        // No defaultRequest for memory: the default limit is the request.
        assert_eq!(a["requests"]["memory"], "128Mi");
        assert_eq!(a["limits"], json!({"cpu": "500m", "memory": "128Mi"}));
        let b = &pod["spec"]["containers"][1]["resources"];
        assert_eq!(b["limits"], json!({"cpu": "200m", "memory": "128Mi"}));
        assert_eq!(
            notes,
            [
                "cpu, memory request for container a",
                "cpu, memory limit for container a",
                "cpu, memory request for container b",
                "memory limit for container b"
            ]
        );
        assert!(check_bounds(&pod, &ranges()).is_empty());
    }

    #[test]
    fn bounds_are_checked_with_kubernetes_messages() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"cpu": "2"}}},
            {"name": "b"},
        ]}});
        assert_eq!(
            check_bounds(&pod, &ranges()),
            [
                "maximum cpu usage per Container is 1, but limit is 2",
                "maximum cpu usage per Container is 1.  No limit is specified"
            ]
        );
    }
}
