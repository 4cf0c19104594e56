//! One reconcile of a Deployment: pick the strategy, move one step, report status.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kerno_sdk::{Action, Api, Patch, PatchParams};
use serde_json::json;

use crate::replicasets::{
    self as sets, REVISION, available, find_new, observed, spec_replicas, status_replicas,
};
use crate::rollout::{fenceposts, new_rs_target, old_scale_down_budget};
use crate::status::{Progress, write_status};
use crate::{Context, FIELD_MANAGER, ReconcileError};

/// The Deployment's ReplicaSets: the one with its template, and the others
/// (oldest first).
pub struct Sets {
    /// The ReplicaSet with the Deployment's template, if created.
    pub new: Option<ReplicaSet>,
    /// All other owned ReplicaSets.
    pub old: Vec<ReplicaSet>,
}

impl Sets {
    fn all(&self) -> impl Iterator<Item = &ReplicaSet> {
        self.new.iter().chain(self.old.iter())
    }
}

/// Moves `d` one step toward its desired rollout.
pub async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let spec = d.spec.as_ref().ok_or(ReconcileError::Invalid("no spec"))?;
    let sel = &spec.selector;
    if sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty())
    {
        return Err(ReconcileError::Invalid("empty selector"));
    }
    let mut owned = sets::claim(&d, &ctx).await?;
    let new = find_new(&d, &owned).map(|i| owned.remove(i));
    let mut sets = Sets { new, old: owned };
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let paused = spec.paused.unwrap_or(false);
    let mut progress = Progress::default();
    if paused {
        sync_paused(&d, &mut sets, &ctx).await?;
    } else if recreate {
        rollout_recreate(&d, &mut sets, &mut progress, &ctx).await?;
    } else {
        rollout_rolling(&d, &mut sets, &mut progress, &ctx).await?;
    }
    sync_revision_annotation(&d, &sets, &ctx).await?;
    let complete = write_status(&d, &sets, &progress, &ctx).await?;
    if complete && !paused {
        sets::clean_up_history(&d, &sets.old, &ctx).await?;
    }
    // While a rollout runs, wake up at its progress deadline even without events.
    Ok(if complete {
        Action::await_change()
    } else {
        Action::requeue(std::time::Duration::from_secs(10))
    })
}

/// The revision the new ReplicaSet gets: one past every old one.
fn next_revision(sets: &Sets) -> i64 {
    sets.old
        .iter()
        .map(|rs| sets::revision(&rs.metadata))
        .max()
        .unwrap_or(0)
        + 1
}

/// Makes sure the new ReplicaSet exists (when `create`), carrying the latest
/// revision and the Deployment's annotations.
async fn ensure_new(
    d: &Deployment,
    sets: &mut Sets,
    create_with: Option<i32>,
    max_surge: i32,
    progress: &mut Progress,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let revision = next_revision(sets);
    sets.new = match sets.new.take() {
        Some(rs) => Some(sets::annotate_new(d, rs, revision, ctx).await?),
        None => match create_with {
            Some(replicas) => {
                let rs = sets::create_new(d, revision, replicas, max_surge, ctx).await?;
                progress.created = rs.metadata.name.clone();
                Some(rs)
            }
            None => None,
        },
    };
    Ok(())
}

fn desired(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// RollingUpdate: grow the new ReplicaSet within maxSurge, shrink old ones
/// within maxUnavailable.
async fn rollout_rolling(
    d: &Deployment,
    sets: &mut Sets,
    progress: &mut Progress,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let desired = desired(d);
    let (max_surge, max_unavailable) = fenceposts(d);
    // Pods that exist or are about to: the larger of spec and status per set,
    // so a set still deleting pods counts them.
    let pods_of = |rs: &ReplicaSet| spec_replicas(rs).max(status_replicas(rs));
    let old_pods: i32 = sets.old.iter().map(pods_of).sum();
    let initial = new_rs_target(desired, 0, old_pods, max_surge);
    ensure_new(d, sets, Some(initial), max_surge, progress, ctx).await?;
    if let Some(new) = sets.new.take() {
        let total: i32 = old_pods + pods_of(&new);
        let target = new_rs_target(desired, spec_replicas(&new), total, max_surge);
        if target != spec_replicas(&new) {
            progress.scaled = true;
        }
        sets.new = Some(sets::scale(d, new, target, max_surge, ctx).await?);
    }
    if sets.old.iter().all(|rs| spec_replicas(rs) == 0) {
        return Ok(());
    }
    // First drop old pods that are not available anyway, as far as the
    // new set's own unavailable pods leave room.
    let all_pods: i32 = sets.all().map(spec_replicas).sum();
    let new_unavailable = sets
        .new
        .as_ref()
        .map_or(0, |rs| spec_replicas(rs) - available(rs));
    let mut unhealthy_budget = (all_pods - (desired - max_unavailable) - new_unavailable).max(0);
    let mut old = std::mem::take(&mut sets.old);
    for rs in &mut old {
        let unhealthy = spec_replicas(rs) - available(rs);
        let n = unhealthy.min(unhealthy_budget);
        if n > 0 {
            unhealthy_budget -= n;
            *rs = sets::scale(d, rs.clone(), spec_replicas(rs) - n, max_surge, ctx).await?;
            progress.scaled = true;
        }
    }
    // Then available old pods, keeping desired - maxUnavailable available.
    let available_total: i32 =
        old.iter().map(available).sum::<i32>() + sets.new.as_ref().map_or(0, available);
    let mut budget = old_scale_down_budget(desired, max_unavailable, available_total);
    for rs in &mut old {
        let n = spec_replicas(rs).min(budget);
        if n > 0 {
            budget -= n;
            *rs = sets::scale(d, rs.clone(), spec_replicas(rs) - n, max_surge, ctx).await?;
            progress.scaled = true;
        }
    }
    sets.old = old;
    Ok(())
}

/// Recreate: scale every old ReplicaSet to zero, wait until their pods are
/// gone, then bring up the new one at full size.
async fn rollout_recreate(
    d: &Deployment,
    sets: &mut Sets,
    progress: &mut Progress,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let desired = desired(d);
    let mut old = std::mem::take(&mut sets.old);
    for rs in &mut old {
        if spec_replicas(rs) != 0 {
            *rs = sets::scale(d, rs.clone(), 0, 0, ctx).await?;
            progress.scaled = true;
        }
    }
    let old_gone = old
        .iter()
        .all(|rs| spec_replicas(rs) == 0 && status_replicas(rs) == 0 && observed(rs));
    sets.old = old;
    if !old_gone {
        // Keep the new set (if any) from growing while old pods still run.
        ensure_new(d, sets, None, 0, progress, ctx).await?;
        return Ok(());
    }
    ensure_new(d, sets, Some(desired), 0, progress, ctx).await?;
    if let Some(new) = sets.new.take() {
        if spec_replicas(&new) != desired {
            progress.scaled = true;
        }
        sets.new = Some(sets::scale(d, new, desired, 0, ctx).await?);
    }
    Ok(())
}

/// Paused: no rollout, but scaling still applies to the one active set.
async fn sync_paused(d: &Deployment, sets: &mut Sets, ctx: &Context) -> Result<(), ReconcileError> {
    let desired = desired(d);
    let (max_surge, _) = fenceposts(d);
    let active_old: Vec<usize> = (0..sets.old.len())
        .filter(|&i| spec_replicas(&sets.old[i]) > 0)
        .collect();
    match (sets.new.take(), active_old.as_slice()) {
        (Some(new), []) => sets.new = Some(sets::scale(d, new, desired, max_surge, ctx).await?),
        (None, [only]) => {
            let rs = sets.old[*only].clone();
            sets.old[*only] = sets::scale(d, rs, desired, max_surge, ctx).await?;
        }
        (new, _) => sets.new = new,
    }
    Ok(())
}

/// The Deployment carries the revision of its new ReplicaSet.
async fn sync_revision_annotation(
    d: &Deployment,
    sets: &Sets,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let Some(new) = &sets.new else { return Ok(()) };
    let revision = sets::revision(&new.metadata).to_string();
    let current = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION));
    if current == Some(&revision) {
        return Ok(());
    }
    let api: Api<Deployment> = Api::namespaced(
        ctx.client.clone(),
        d.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    match api
        .patch(
            d.metadata.name.as_deref().unwrap_or_default(),
            &pp,
            &Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) | Err(kerno_sdk::Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
