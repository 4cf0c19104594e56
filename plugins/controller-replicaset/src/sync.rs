//! One reconcile of a ReplicaSet.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use kerno_controller_common::is_active;
use kerno_sdk::{Action, Api, ObjectKey, Patch, PatchParams};

use crate::status::{Counts, next_availability};
use crate::{Context, FIELD_MANAGER, ReconcileError, manage};

/// Moves `rs` one step toward `spec.replicas` owned active pods, then reports status.
pub async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let key = ObjectKey::of(rs.as_ref());
    let namespace = rs.metadata.namespace.clone().unwrap_or_default();
    let replicas = rs
        .spec
        .as_ref()
        .ok_or(ReconcileError::Invalid("no spec"))?
        .replicas
        .unwrap_or(1);
    let replicas = usize::try_from(replicas).unwrap_or(0);
    // Pods being deleted or finished no longer count (and are not claimed).
    let candidates: Vec<_> = ctx
        .pods_in(&namespace)
        .into_iter()
        .filter(|p| is_active(p))
        .collect();
    let needs_sync = ctx.expectations.satisfied(&key);
    let owned = manage::claim(&rs, candidates, &ctx).await?;
    let mut result = Ok(());
    if needs_sync && rs.metadata.deletion_timestamp.is_none() {
        result = manage::scale(&rs, &key, &owned, replicas, &ctx).await;
    }
    // Status from what the cache shows now (the next event recounts).
    let now = kerno_controller_common::now();
    let counts = Counts::of(&rs, &owned, now);
    if counts != Counts::reported(&rs) {
        let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &namespace);
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let name = rs.metadata.name.clone().unwrap_or_default();
        match api
            .patch_status(&name, &pp, &Patch::Merge(&counts.patch()))
            .await
        {
            Ok(_) | Err(kerno_sdk::Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    result?;
    // A ready pod becomes available after minReadySeconds without any event.
    Ok(match next_availability(&rs, &owned, now) {
        Some(after) => Action::requeue(after + std::time::Duration::from_millis(100)),
        None => Action::await_change(),
    })
}
