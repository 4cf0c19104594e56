//! One reconcile of a Service: write the desired Endpoints and slices,
//! delete the ones it controls that are no longer wanted.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kerno_controller_common::is_controlled_by;
use kerno_sdk::{Action, Api, DeleteParams, ListParams, PostParams};

use crate::desired::{self, MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL};
use crate::{Context, FIELD_MANAGER, ReconcileError};

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

/// A write's outcome; conflicts and races become errors, so the reconcile
/// is retried with back-off and reads the world again.
fn settled<T>(result: kerno_sdk::Result<T>) -> Result<(), ReconcileError> {
    result.map(|_| ()).map_err(ReconcileError::from)
}

/// A deletion's outcome: already gone is done.
fn deleted<T>(result: kerno_sdk::Result<T>) -> Result<(), ReconcileError> {
    match result {
        Ok(_) | Err(kerno_sdk::Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Moves `service`'s Endpoints and EndpointSlices to what its pods say.
pub async fn reconcile(service: Arc<Service>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if service.metadata.deletion_timestamp.is_some() {
        // The garbage collector removes what the Service owns.
        return Ok(Action::await_change());
    }
    let namespace = service.metadata.namespace.clone().unwrap_or_default();
    let name = service.metadata.name.clone().unwrap_or_default();
    let uid = service.metadata.uid.clone().unwrap_or_default();
    let pods = ctx.pods_in(&namespace);
    sync_endpoints(&service, &namespace, &name, &uid, &pods, &ctx).await?;
    sync_slices(&service, &namespace, &name, &uid, &pods, &ctx).await?;
    Ok(Action::await_change())
}

async fn sync_endpoints(
    service: &Service,
    namespace: &str,
    name: &str,
    uid: &str,
    pods: &[Arc<k8s_openapi::api::core::v1::Pod>],
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), namespace);
    let existing = api.get_opt(name).await?;
    match (desired::desired_endpoints(service, pods), existing) {
        (Some(want), None) => settled(api.create(&post_params(), &want).await),
        (Some(want), Some(have)) => {
            if desired::endpoints_up_to_date(&have, &want) {
                return Ok(());
            }
            let mut next = want;
            // Keep what others added to the object; replace ours.
            let mut labels = have.metadata.labels.clone().unwrap_or_default();
            labels.extend(next.metadata.labels.take().unwrap_or_default());
            next.metadata.labels = Some(labels);
            next.metadata.annotations = have.metadata.annotations.clone();
            next.metadata.resource_version = have.metadata.resource_version.clone();
            settled(api.replace(name, &post_params(), &next).await)
        }
        // Unmanaged: only what this controller wrote goes (a user's stays).
        (None, Some(have)) if is_controlled_by(&have.metadata, uid) => {
            deleted(api.delete(name, &DeleteParams::default()).await)
        }
        (None, _) => Ok(()),
    }
}

async fn sync_slices(
    service: &Service,
    namespace: &str,
    name: &str,
    uid: &str,
    pods: &[Arc<k8s_openapi::api::core::v1::Pod>],
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), namespace);
    // A list, not the cache: the slices written a moment ago must be seen.
    let selector = format!("{SERVICE_NAME_LABEL}={name},{MANAGED_BY_LABEL}={MANAGED_BY}");
    let existing = api
        .list(&ListParams::default().labels(selector))
        .await?
        .items;
    let mut want = desired::desired_slices(service, pods);
    for have in existing {
        let have_name = have.metadata.name.clone().unwrap_or_default();
        match want.remove(&have_name) {
            Some(slice) if desired::slice_up_to_date(&have, &slice) => {}
            Some(mut slice) => {
                slice.metadata.resource_version = have.metadata.resource_version.clone();
                settled(api.replace(&have_name, &post_params(), &slice).await)?;
            }
            None if is_controlled_by(&have.metadata, uid)
                || have.metadata.owner_references.is_none() =>
            {
                deleted(api.delete(&have_name, &DeleteParams::default()).await)?;
            }
            None => {}
        }
    }
    for slice in want.into_values() {
        settled(api.create(&post_params(), &slice).await)?;
    }
    Ok(())
}
