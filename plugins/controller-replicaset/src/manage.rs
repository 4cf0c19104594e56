//! Claiming pods (adopt/release) and creating or deleting pods to reach
//! `spec.replicas`.

use std::cmp::Reverse;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kerno_controller_common::{controller_of, controller_ref, is_ready, matches};
use kerno_sdk::{Api, DeleteParams, Error, ObjectKey, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Context, FIELD_MANAGER, ReconcileError};

/// At most this many pods are created or deleted per sync (as Kubernetes' burstReplicas).
const BURST: usize = 500;

/// The active pods `rs` owns after adopting matching orphans and releasing
/// owned pods that no longer match.
pub async fn claim(
    rs: &ReplicaSet,
    candidates: Vec<Arc<Pod>>,
    ctx: &Context,
) -> Result<Vec<Arc<Pod>>, ReconcileError> {
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();
    let selector = rs
        .spec
        .as_ref()
        .map(|s| &s.selector)
        .ok_or(ReconcileError::Invalid("no spec"))?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let deleting = rs.metadata.deletion_timestamp.is_some();
    let mut owned = Vec::new();
    for pod in candidates {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let matching = matches(selector, pod.metadata.labels.as_ref());
        match controller_of(&pod.metadata) {
            Some(owner) if owner.uid == uid => {
                if matching || deleting {
                    owned.push(pod);
                } else {
                    // Release: drop our owner reference (uid-guarded JSON patch).
                    let refs: Vec<_> = pod
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .filter(|r| r.uid != uid)
                        .cloned()
                        .collect();
                    let patch = json!({"metadata": {
                        "uid": pod.metadata.uid,
                        "ownerReferences": refs,
                    }});
                    ignore_gone(pods.patch(&name, &pp, &Patch::Merge(&patch)).await)?;
                    tracing::info!(pod = %name, "released pod");
                }
            }
            Some(_) => {}
            None if matching && !deleting && pod.metadata.deletion_timestamp.is_none() => {
                let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
                refs.push(controller_ref("apps/v1", "ReplicaSet", &rs.metadata));
                let patch = json!({"metadata": {
                    "uid": pod.metadata.uid,
                    "ownerReferences": refs,
                }});
                if let Some(adopted) =
                    ignore_gone(pods.patch(&name, &pp, &Patch::Merge(&patch)).await)?
                {
                    tracing::info!(pod = %name, "adopted pod");
                    owned.push(Arc::new(adopted));
                }
            }
            None => {}
        }
    }
    Ok(owned)
}

/// `Ok(None)` for an object that vanished meanwhile.
fn ignore_gone<T>(result: Result<T, Error>) -> Result<Option<T>, Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The pod `rs` creates from its template.
pub fn pod_from_template(rs: &ReplicaSet) -> Result<Pod, ReconcileError> {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .ok_or(ReconcileError::Invalid("no pod template"))?;
    let tmeta = template.metadata.unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: rs.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![controller_ref("apps/v1", "ReplicaSet", &rs.metadata)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    })
}

/// Creates or deletes pods so `owned` (the active pods) reaches `replicas`.
pub async fn scale(
    rs: &ReplicaSet,
    key: &ObjectKey,
    owned: &[Arc<Pod>],
    replicas: usize,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    if owned.len() < replicas {
        let missing = (replicas - owned.len()).min(BURST);
        let pod = pod_from_template(rs)?;
        ctx.expectations.expect_creations(key, missing);
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        // Slow start (1, 2, 4, ...): a failing create (quota, validation)
        // fails fast instead of `missing` times.
        let mut remaining = missing;
        let mut batch = 1;
        while remaining > 0 {
            let n = batch.min(remaining);
            let results = futures::future::join_all((0..n).map(|_| pods.create(&pp, &pod))).await;
            let mut first_error = None;
            for result in results {
                if let Err(e) = result {
                    // This creation will never be observed.
                    ctx.expectations.creation_observed(key);
                    first_error.get_or_insert(e);
                }
            }
            remaining -= n;
            if let Some(e) = first_error {
                for _ in 0..remaining {
                    ctx.expectations.creation_observed(key);
                }
                return Err(e.into());
            }
            batch *= 2;
        }
        tracing::info!(replicaset = %key, created = missing, "created pods");
    } else if owned.len() > replicas {
        let surplus = (owned.len() - replicas).min(BURST);
        let victims = pods_to_delete(owned, surplus);
        let names: Vec<String> = victims
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        ctx.expectations.expect_deletions(key, names.clone());
        let mut first_error = None;
        for name in &names {
            match pods.delete(name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(Error::NotFound(_)) => ctx.expectations.deletion_observed(key, name),
                Err(e) => {
                    ctx.expectations.deletion_observed(key, name);
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e.into());
        }
        tracing::info!(replicaset = %key, deleted = names.len(), "deleted pods");
    }
    Ok(())
}

/// The `count` pods to delete first: unscheduled before scheduled, pending
/// before running, not ready before ready, more restarts first, newer first.
pub fn pods_to_delete(pods: &[Arc<Pod>], count: usize) -> Vec<Arc<Pod>> {
    let mut ranked: Vec<Arc<Pod>> = pods.to_vec();
    ranked.sort_by_key(|p| {
        let scheduled = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        let phase = match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
            Some("Pending") | None => 0,
            Some("Unknown") => 1,
            _ => 2,
        };
        let restarts: i32 = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| c.restart_count).sum())
            .unwrap_or(0);
        let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        (
            scheduled,
            phase,
            is_ready(p),
            Reverse(restarts),
            Reverse(created),
            Reverse(p.metadata.name.clone()),
        )
    });
    ranked.truncate(count);
    ranked
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool, age_s: i64) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(
                    k8s_openapi::jiff::Timestamp::from_second(1_000_000 - age_s)
                        .unwrap_or_default(),
                )),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(str::to_owned),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        })
    }

    #[test]
    fn deletes_unscheduled_then_not_ready_then_newest() {
        let pods = vec![
            pod("old-ready", Some("n"), "Running", true, 100),
            pod("new-ready", Some("n"), "Running", true, 10),
            pod("not-ready", Some("n"), "Running", false, 200),
            pod("unscheduled", None, "Pending", false, 300),
        ];
        let names: Vec<_> = pods_to_delete(&pods, 3)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["unscheduled", "not-ready", "new-ready"]);
    }
}
