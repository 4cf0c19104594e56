//! Pod priority admission: `spec.priority` from `spec.priorityClassName`
//! (or the global-default PriorityClass), as Kubernetes' Priority plugin.

use serde_json::{Value, json};

use super::{Service, Target};
use crate::error::{ApiError, FieldError, Result};

/// The built-in classes every cluster has.
const SYSTEM_CLASSES: &[(&str, i64)] = &[
    ("system-cluster-critical", 2_000_000_000),
    ("system-node-critical", 2_000_001_000),
];

impl Service {
    /// Fills `spec.priority` (and `preemptionPolicy`) of a pod being created.
    pub(super) async fn resolve_pod_priority(&self, pod: &mut Value) -> Result<()> {
        let class_name = pod
            .pointer("/spec/priorityClassName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let Some(rt) = self
            .registry()
            .get("scheduling.k8s.io", "v1", "priorityclasses")
        else {
            return Ok(());
        };
        let (value, policy) = match class_name {
            Some(name) => {
                if let Some((_, v)) = SYSTEM_CLASSES.iter().find(|(n, _)| *n == name) {
                    (*v, None)
                } else {
                    let t = Target {
                        rt,
                        namespace: None,
                        name: Some(name.clone()),
                    };
                    match self.get(&t).await {
                        Ok(class) => class_value(&class),
                        Err(ApiError::NotFound(_)) => {
                            return Err(ApiError::Forbidden(format!(
                                "pods is forbidden: no PriorityClass with name {name} was found"
                            )));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            None => {
                let t = Target {
                    rt,
                    namespace: None,
                    name: None,
                };
                // From the watch cache ("0"): this runs on every pod create.
                let any_revision = super::ListOptions {
                    resource_version: Some("0".into()),
                    ..super::ListOptions::default()
                };
                let classes = self.list(&t, &any_revision).await?;
                let default = classes.items.iter().find_map(|item| {
                    let class = item.value();
                    (class.get("globalDefault").and_then(Value::as_bool) == Some(true))
                        .then(|| (super::meta::name(&class).to_owned(), class_value(&class)))
                });
                match default {
                    Some((name, v)) => {
                        pod["spec"]["priorityClassName"] = json!(name);
                        v
                    }
                    None => (0, None),
                }
            }
        };
        if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64)
            && given != value
        {
            return Err(ApiError::Invalid {
                target: crate::error::ErrorTarget {
                    group: String::new(),
                    resource: "pods".into(),
                    kind: "Pod".into(),
                    name: super::meta::name(pod).to_owned(),
                },
                causes: vec![FieldError::forbidden(
                    "spec.priority",
                    "the integer value of priority must not be provided in pod spec; \
                     priority admission controller computed it from the given PriorityClass name",
                )],
            });
        }
        pod["spec"]["priority"] = json!(value);
        if let Some(policy) = policy
            && pod.pointer("/spec/preemptionPolicy").is_none()
        {
            pod["spec"]["preemptionPolicy"] = json!(policy);
        }
        Ok(())
    }
}

fn class_value(class: &Value) -> (i64, Option<String>) {
    (
        class.get("value").and_then(Value::as_i64).unwrap_or(0),
        class
            .get("preemptionPolicy")
            .and_then(Value::as_str)
            .map(str::to_owned),
    )
}
