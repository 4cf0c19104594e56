//! Reading and writing a Deployment's ReplicaSets: claim, create, scale,
//! annotate, delete.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kerno_controller_common::{controller_of, controller_ref, matches};
use kerno_sdk::{Api, DeleteParams, Error, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::hash::{POD_TEMPLATE_HASH, equal_ignoring_hash, pod_template_hash};
use crate::{Context, FIELD_MANAGER, ReconcileError};

/// The revision of a Deployment and of the ReplicaSet holding that template.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// replicas + maxSurge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Deployment annotations never copied to ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// `spec.replicas` of a ReplicaSet.
pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// `status.replicas`: active pods the ReplicaSet last counted.
pub fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

/// Available pods, never more than `spec.replicas`: right after a scale-down
/// the status still counts pods about to go, and the ReplicaSet deletes
/// unavailable pods first.
pub fn available(rs: &ReplicaSet) -> i32 {
    let reported = rs
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    reported.min(spec_replicas(rs))
}

/// Ready pods as reported.
pub fn ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// Whether the ReplicaSet's controller has seen its current spec.
pub fn observed(rs: &ReplicaSet) -> bool {
    rs.status.as_ref().and_then(|s| s.observed_generation) >= rs.metadata.generation
}

/// The `deployment.kubernetes.io/revision` of an object, 0 when unset.
pub fn revision(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn api(ctx: &Context, d: &Deployment) -> Api<ReplicaSet> {
    Api::namespaced(
        ctx.client.clone(),
        d.metadata.namespace.as_deref().unwrap_or_default(),
    )
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// The ReplicaSets `d` owns, after adopting matching orphans and releasing
/// owned ones that stopped matching; oldest first.
pub async fn claim(d: &Deployment, ctx: &Context) -> Result<Vec<ReplicaSet>, ReconcileError> {
    let uid = d.metadata.uid.clone().unwrap_or_default();
    let namespace = d.metadata.namespace.clone().unwrap_or_default();
    let selector = &d
        .spec
        .as_ref()
        .ok_or(ReconcileError::Invalid("no spec"))?
        .selector;
    let api = api(ctx, d);
    let mut owned = Vec::new();
    for rs in ctx.replicasets_in(&namespace) {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let matching = matches(selector, rs.metadata.labels.as_ref());
        match controller_of(&rs.metadata) {
            Some(owner) if owner.uid == uid => {
                if matching {
                    owned.push(Arc::unwrap_or_clone(rs));
                } else {
                    let refs: Vec<_> = rs
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .filter(|r| r.uid != uid)
                        .cloned()
                        .collect();
                    let patch =
                        json!({"metadata": {"uid": rs.metadata.uid, "ownerReferences": refs}});
                    ignore_gone(
                        api.patch(&name, &patch_params(), &Patch::Merge(&patch))
                            .await,
                    )?;
                }
            }
            Some(_) => {}
            None if matching && rs.metadata.deletion_timestamp.is_none() => {
                let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                refs.push(controller_ref("apps/v1", "Deployment", &d.metadata));
                let patch = json!({"metadata": {"uid": rs.metadata.uid, "ownerReferences": refs}});
                if let Some(adopted) = ignore_gone(
                    api.patch(&name, &patch_params(), &Patch::Merge(&patch))
                        .await,
                )? {
                    owned.push(adopted);
                }
            }
            None => {}
        }
    }
    owned.sort_by(|a, b| {
        (&a.metadata.creation_timestamp, &a.metadata.name)
            .cmp(&(&b.metadata.creation_timestamp, &b.metadata.name))
    });
    Ok(owned)
}

fn ignore_gone<T>(result: Result<T, Error>) -> Result<Option<T>, Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The index of the ReplicaSet whose template is the Deployment's (the oldest
/// if several are).
pub fn find_new(d: &Deployment, owned: &[ReplicaSet]) -> Option<usize> {
    let template = d.spec.as_ref()?.template.clone();
    owned.iter().position(|rs| {
        rs.spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| equal_ignoring_hash(t, &template))
    })
}

/// The annotations the Deployment's ReplicaSets carry: the Deployment's own
/// (minus bookkeeping ones) plus the scale bookkeeping.
fn scale_annotations(d: &Deployment, max_surge: i32) -> BTreeMap<String, String> {
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    BTreeMap::from([
        (DESIRED_REPLICAS.to_owned(), replicas.to_string()),
        (MAX_REPLICAS.to_owned(), (replicas + max_surge).to_string()),
    ])
}

/// Annotations copied from the Deployment to its new ReplicaSet (change-cause…).
fn copied_annotations(d: &Deployment) -> BTreeMap<String, String> {
    d.metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Creates the ReplicaSet for the Deployment's template at `revision` with
/// `replicas`. Returns it (or the identical one a lagging cache did not show).
pub async fn create_new(
    d: &Deployment,
    revision: i64,
    replicas: i32,
    max_surge: i32,
    ctx: &Context,
) -> Result<ReplicaSet, ReconcileError> {
    let spec = d.spec.as_ref().ok_or(ReconcileError::Invalid("no spec"))?;
    let collisions = d.status.as_ref().and_then(|s| s.collision_count);
    let hash = pod_template_hash(&spec.template, collisions);
    let d_name = d.metadata.name.clone().unwrap_or_default();
    let name = format!("{d_name}-{hash}");
    let mut template = spec.template.clone();
    let tmeta = template.metadata.get_or_insert_with(ObjectMeta::default);
    tmeta
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(POD_TEMPLATE_HASH.into(), hash.clone());
    let mut labels = tmeta.labels.clone().unwrap_or_default();
    labels.insert(POD_TEMPLATE_HASH.into(), hash);
    let mut annotations = copied_annotations(d);
    annotations.extend(scale_annotations(d, max_surge));
    annotations.insert(REVISION.into(), revision.to_string());
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: d.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref("apps/v1", "Deployment", &d.metadata)]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    let api = api(ctx, d);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match api.create(&pp, &rs).await {
        Ok(created) => {
            tracing::info!(deployment = %d_name, replicaset = %name, "created new replicaset");
            Ok(created)
        }
        Err(Error::AlreadyExists(_)) => {
            let existing = api.get(&name).await?;
            let ours = kerno_controller_common::is_controlled_by(
                &existing.metadata,
                d.metadata.uid.as_deref().unwrap_or_default(),
            );
            let same = existing
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignoring_hash(t, &spec.template));
            if ours && same {
                return Ok(existing);
            }
            // Another template got this name: count the collision, which
            // changes the hash on the next attempt.
            let count = collisions.unwrap_or(0).saturating_add(1);
            let deployments: Api<Deployment> = Api::namespaced(
                ctx.client.clone(),
                d.metadata.namespace.as_deref().unwrap_or_default(),
            );
            let patch = json!({"status": {"collisionCount": count}});
            deployments
                .patch_status(&d_name, &patch_params(), &Patch::Merge(&patch))
                .await?;
            Err(ReconcileError::HashCollision(name))
        }
        Err(e) => Err(e.into()),
    }
}

/// Brings the new ReplicaSet's annotations (revision, copied ones) up to date.
pub async fn annotate_new(
    d: &Deployment,
    rs: ReplicaSet,
    revision: i64,
    ctx: &Context,
) -> Result<ReplicaSet, ReconcileError> {
    let mut wanted = copied_annotations(d);
    if crate::replicasets::revision(&rs.metadata) < revision {
        wanted.insert(REVISION.into(), revision.to_string());
    }
    let current = rs.metadata.annotations.clone().unwrap_or_default();
    if wanted.iter().all(|(k, v)| current.get(k) == Some(v)) {
        return Ok(rs);
    }
    let name = rs.metadata.name.clone().unwrap_or_default();
    let patch = json!({"metadata": {"annotations": wanted}});
    Ok(api(ctx, d)
        .patch(&name, &patch_params(), &Patch::Merge(&patch))
        .await?)
}

/// Scales `rs` to `replicas`, recording the Deployment's size in its annotations.
pub async fn scale(
    d: &Deployment,
    rs: ReplicaSet,
    replicas: i32,
    max_surge: i32,
    ctx: &Context,
) -> Result<ReplicaSet, ReconcileError> {
    let wanted = scale_annotations(d, max_surge);
    let current = rs.metadata.annotations.clone().unwrap_or_default();
    let annotated = wanted.iter().all(|(k, v)| current.get(k) == Some(v));
    if spec_replicas(&rs) == replicas && annotated {
        return Ok(rs);
    }
    let name = rs.metadata.name.clone().unwrap_or_default();
    let patch = json!({
        "metadata": {"annotations": wanted},
        "spec": {"replicas": replicas},
    });
    tracing::info!(replicaset = %name, from = spec_replicas(&rs), to = replicas, "scaling replicaset");
    Ok(api(ctx, d)
        .patch(&name, &patch_params(), &Patch::Merge(&patch))
        .await?)
}

/// Deletes old, empty ReplicaSets beyond `revisionHistoryLimit`, oldest revision first.
pub async fn clean_up_history(
    d: &Deployment,
    old: &[ReplicaSet],
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    let mut empty: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| {
            spec_replicas(rs) == 0
                && status_replicas(rs) == 0
                && observed(rs)
                && rs.metadata.deletion_timestamp.is_none()
        })
        .collect();
    let excess = empty
        .len()
        .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
    if excess == 0 {
        return Ok(());
    }
    empty.sort_by_key(|rs| revision(&rs.metadata));
    let api = api(ctx, d);
    for rs in empty.into_iter().take(excess) {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let dp = DeleteParams {
            resource_version: rs.metadata.resource_version.clone(),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) | Err(Error::NotFound(_)) | Err(Error::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::info!(replicaset = %name, "deleted old replicaset beyond the history limit");
    }
    Ok(())
}
