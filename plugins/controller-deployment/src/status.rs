//! Deployment status: counts from its ReplicaSets and the Available and
//! Progressing conditions `kubectl rollout status` reads.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kerno_sdk::{Api, Patch, PatchParams};
use serde_json::json;

use crate::replicasets::{ready, spec_replicas, status_replicas};
use crate::rollout::fenceposts;
use crate::sync::Sets;
use crate::{Context, FIELD_MANAGER, ReconcileError};

/// What this reconcile did, for the Progressing condition.
#[derive(Debug, Default)]
pub struct Progress {
    /// The name of a ReplicaSet created now.
    pub created: Option<String>,
    /// Some ReplicaSet was scaled.
    pub scaled: bool,
}

fn reported_available(rs: &k8s_openapi::api::apps::v1::ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// Computes and writes the status; returns whether the rollout is complete.
pub async fn write_status(
    d: &Deployment,
    sets: &Sets,
    progress: &Progress,
    ctx: &Context,
) -> Result<bool, ReconcileError> {
    let now = kerno_controller_common::now();
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let all: Vec<_> = sets.new.iter().chain(sets.old.iter()).collect();
    let replicas: i32 = all.iter().map(|rs| status_replicas(rs)).sum();
    let updated = sets.new.as_ref().map_or(0, status_replicas);
    let ready_count: i32 = all.iter().map(|rs| ready(rs)).sum();
    let available: i32 = all.iter().map(|rs| reported_available(rs)).sum();
    let total_spec: i32 = all.iter().map(|rs| spec_replicas(rs)).sum();
    let old = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(replicas),
        updated_replicas: Some(updated),
        ready_replicas: Some(ready_count),
        available_replicas: Some(available),
        unavailable_replicas: Some((total_spec - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
        terminating_replicas: None,
    };
    let complete = updated == desired && replicas == desired && available == desired;
    let new_name = sets
        .new
        .as_ref()
        .and_then(|rs| rs.metadata.name.clone())
        .unwrap_or_default();

    let (_, max_unavailable) = fenceposts(d);
    if available >= desired - max_unavailable {
        set_condition(
            &mut status,
            now,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        );
    } else {
        set_condition(
            &mut status,
            now,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        );
    }

    let spec = d.spec.as_ref();
    let paused = spec.and_then(|s| s.paused).unwrap_or(false);
    let was_paused = condition(&old, "Progressing")
        .is_some_and(|c| c.reason.as_deref() == Some("DeploymentPaused"));
    if paused {
        set_condition(
            &mut status,
            now,
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused".into(),
        );
    } else if let Some(created) = &progress.created {
        set_condition(
            &mut status,
            now,
            "Progressing",
            "True",
            "NewReplicaSetCreated",
            format!("Created new replica set \"{created}\""),
        );
    } else if complete {
        set_condition(
            &mut status,
            now,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{new_name}\" has successfully progressed."),
        );
    } else if was_paused {
        set_condition(
            &mut status,
            now,
            "Progressing",
            "Unknown",
            "DeploymentResumed",
            "Deployment is resumed".into(),
        );
    } else if progress.scaled || made_progress(&old, &status) {
        set_condition(
            &mut status,
            now,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{new_name}\" is progressing."),
        );
    } else if let Some(deadline) = spec.and_then(|s| s.progress_deadline_seconds) {
        let last = condition(&status, "Progressing")
            .filter(|c| c.reason.as_deref() != Some("NewReplicaSetAvailable"))
            .and_then(|c| c.last_update_time.as_ref().map(|t| t.0));
        let expired = last.is_some_and(|at| {
            at.checked_add(SignedDuration::from_secs(i64::from(deadline)))
                .is_ok_and(|end| end < now)
        });
        if expired {
            set_condition(
                &mut status,
                now,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{new_name}\" has timed out progressing."),
            );
        }
    }

    let old_json = serde_json::to_value(&old).unwrap_or_default();
    let new_json = serde_json::to_value(&status).unwrap_or_default();
    if old_json != new_json {
        let api: Api<Deployment> = Api::namespaced(
            ctx.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let patch = json!({"status": new_json});
        match api
            .patch_status(
                d.metadata.name.as_deref().unwrap_or_default(),
                &pp,
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) | Err(kerno_sdk::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(complete && d.metadata.generation <= status.observed_generation)
}

/// Any counter moved toward the goal since the last status.
fn made_progress(old: &DeploymentStatus, new: &DeploymentStatus) -> bool {
    let old_pods = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_pods = new.replicas.unwrap_or(0) - new.updated_replicas.unwrap_or(0);
    new.updated_replicas > old.updated_replicas
        || new.ready_replicas > old.ready_replicas
        || new.available_replicas > old.available_replicas
        || new_pods < old_pods
}

fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == type_)
}

/// Sets a condition, keeping its transition time while the status stays and
/// all of it when nothing changes.
fn set_condition(
    status: &mut DeploymentStatus,
    now: Timestamp,
    type_: &str,
    value: &str,
    reason: &str,
    message: String,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let existing = conditions.iter().position(|c| c.type_ == type_);
    let mut next = DeploymentCondition {
        type_: type_.to_owned(),
        status: value.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    };
    if let Some(i) = existing {
        let old = &conditions[i];
        if old.status == next.status && old.reason == next.reason && old.message == next.message {
            // Progress refreshes the update time (the deadline counts from it).
            if reason != "ReplicaSetUpdated" {
                return;
            }
        }
        if old.status == next.status {
            next.last_transition_time = old.last_transition_time.clone();
        }
        conditions[i] = next;
    } else {
        conditions.push(next);
    }
}
