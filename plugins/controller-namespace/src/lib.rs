//! The namespace controller: a namespace being deleted (phase `Terminating`)
//! has every namespaced object in it deleted; once it is empty the
//! `kubernetes` entry of `spec.finalizers` is removed, and the kernel then
//! completes the namespace's deletion.
//!
//! The resource types are the kernel's built-in namespaced types
//! ([`BUILTIN_NAMESPACED`]) plus every namespaced CustomResourceDefinition,
//! read at each reconcile (the kernel's gRPC API has no discovery call).
//!
//! Config (`KERNO_PLUGIN_CONFIG`, JSON): `{"recheckMillis": 1000}`, how often a
//! terminating namespace that is not yet empty is looked at again.

mod resources;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::{
    Action, Api, ApiResource, Controller, DeleteParams, DynamicObject, Error, KernelClient,
    ListParams, Patch, PatchParams,
};
use serde_json::json;

pub use resources::{BUILTIN_NAMESPACED, namespaced_resources};

/// The spec finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";
/// Our name in `managedFields`.
const FIELD_MANAGER: &str = "kerno-controller-namespace";

/// What every reconcile gets.
pub struct Context {
    /// The kernel.
    pub client: KernelClient,
    /// How soon a namespace with content left is looked at again.
    pub recheck: Duration,
}

/// Why a reconcile failed; retried with back-off.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A kernel call failed.
    #[error("kernel: {0}")]
    Kernel(#[from] Error),
}

/// Runs the controller until the plugin is told to stop.
pub async fn run(ctx: PluginContext) -> anyhow::Result<()> {
    let recheck = Duration::from_millis(ctx.config["recheckMillis"].as_u64().unwrap_or(1000));
    ctx.health.set_serving("running");
    let shutdown = ctx.shutdown.clone();
    tokio::select! {
        () = controller(ctx.client.clone(), recheck) => {}
        _ = shutdown.wait() => {}
    }
    Ok(())
}

/// The controller, until dropped.
pub async fn controller(client: KernelClient, recheck: Duration) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    Controller::new(namespaces, Arc::new(Context { client, recheck }))
        .concurrency(4)
        .run(reconcile, error_policy)
        .await;
}

/// One step of emptying a terminating namespace.
pub async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    if ns.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let Some(name) = ns.metadata.name.as_deref() else {
        return Ok(Action::await_change());
    };
    let spec_finalizers = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !spec_finalizers.iter().any(|f| f == FINALIZER) {
        // Not ours to finish (or already finished).
        return Ok(Action::await_change());
    }
    let types = namespaced_resources(&ctx.client).await?;
    let mut remaining = Vec::new();
    for resource in &types {
        let left = delete_all(&ctx.client, resource, name).await?;
        if left > 0 {
            remaining.push(format!("{}: {left}", resource.plural));
        }
    }
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    if !remaining.is_empty() {
        tracing::debug!(namespace = name, ?remaining, "waiting for content to go");
        let status = json!({"status": {"conditions": [{
            "type": "NamespaceContentRemaining",
            "status": "True",
            "reason": "SomeResourcesRemain",
            "message": format!("Some resources are remaining: {}", remaining.join(", ")),
            "lastTransitionTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }]}});
        // Conditions are informative: a failed status write must not stop the deletion.
        if let Err(e) = namespaces
            .patch_status(name, &pp, &Patch::Merge(status))
            .await
        {
            tracing::debug!(namespace = name, error = %e, "cannot record remaining content");
        }
        return Ok(Action::requeue(ctx.recheck));
    }
    // Empty: hand the namespace back to the kernel, which deletes it once no
    // finalizer is left. The resourceVersion makes this a compare-and-swap
    // against objects created since we looked.
    let rest: Vec<&String> = spec_finalizers.iter().filter(|f| *f != FINALIZER).collect();
    let patch = json!({
        "metadata": {"resourceVersion": ns.metadata.resource_version},
        "spec": {"finalizers": rest},
    });
    match namespaces.patch(name, &pp, &Patch::Merge(patch)).await {
        Ok(_) | Err(Error::NotFound(_)) => {
            tracing::info!(namespace = name, "namespace emptied and finalized");
            Ok(Action::await_change())
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes every object of `resource` in `namespace` that is not already
/// being deleted; returns how many objects are still there.
async fn delete_all(
    client: &KernelClient,
    resource: &ApiResource,
    namespace: &str,
) -> Result<usize, ReconcileError> {
    let api: Api<DynamicObject> = Api::dynamic(client.clone(), resource.clone(), Some(namespace));
    let objects = match api.list(&ListParams::default()).await {
        Ok(list) => list.items,
        // A CRD removed meanwhile has no objects left to delete.
        Err(Error::NotFound(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let dp = DeleteParams {
        propagation_policy: Some("Background".into()),
        ..DeleteParams::default()
    };
    let mut left = 0;
    for obj in &objects {
        if obj.metadata.deletion_timestamp.is_some() {
            left += 1;
            continue;
        }
        let Some(name) = obj.metadata.name.as_deref() else {
            continue;
        };
        match api.delete(name, &dp).await {
            // Finalizers or a grace period hold it back.
            Ok(Some(pending)) if pending.metadata.deletion_timestamp.is_some() => left += 1,
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(left)
}

/// Retries with the queue's back-off.
pub fn error_policy(_ns: Arc<Namespace>, _error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    Action::backoff()
}
