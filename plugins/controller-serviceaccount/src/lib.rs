//! The ServiceAccount controller: every namespace has a ServiceAccount named
//! `default`, created when the namespace appears and re-created if deleted.
//!
//! Namespaces drive a [`Controller`]; an informer on ServiceAccounts named
//! `default` re-queues a namespace whose `default` account disappears.
//!
//! Config (`KERNO_PLUGIN_CONFIG`, JSON): none.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kerno_sdk::informer::{Informer, Notification};
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::{Action, Api, Controller, Error, KernelClient, ListParams, ObjectKey, PostParams};

/// The account every namespace gets.
pub const DEFAULT_ACCOUNT: &str = "default";
/// Our name in `managedFields`.
const FIELD_MANAGER: &str = "kerno-controller-serviceaccount";

/// What every reconcile gets.
pub struct Context {
    /// The kernel.
    pub client: KernelClient,
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
    ctx.health.set_serving("running");
    let shutdown = ctx.shutdown.clone();
    tokio::select! {
        () = controller(ctx.client.clone()) => {}
        _ = shutdown.wait() => {}
    }
    Ok(())
}

/// The controller, until dropped.
pub async fn controller(client: KernelClient) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let controller = Controller::new(
        namespaces,
        Arc::new(Context {
            client: client.clone(),
        }),
    )
    .concurrency(4);
    let queue = controller.queue();
    // A deleted `default` account wakes its namespace.
    let accounts: Api<ServiceAccount> = Api::all(client);
    let _accounts = Informer::builder(
        accounts,
        ListParams::default().fields(format!("metadata.name={DEFAULT_ACCOUNT}")),
    )
    .handler(move |change| {
        if let Notification::Deleted(sa) = change
            && let Some(ns) = sa.metadata.namespace.as_deref()
        {
            queue.add(ObjectKey::new(None, ns));
        }
    })
    .spawn();
    controller.run(reconcile, error_policy).await;
}

/// Ensures the namespace has its `default` ServiceAccount.
pub async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    // A terminating namespace refuses new objects; nothing to do.
    if ns.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(name) = ns.metadata.name.as_deref() else {
        return Ok(Action::await_change());
    };
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), name);
    if accounts.get_opt(DEFAULT_ACCOUNT).await?.is_some() {
        return Ok(Action::await_change());
    }
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match accounts.create(&pp, &default_account(name)).await {
        // Someone else created it meanwhile: fine.
        Ok(_) | Err(Error::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(namespace = name, "created default serviceaccount");
    Ok(Action::await_change())
}

/// Retries with the queue's back-off.
pub fn error_policy(_ns: Arc<Namespace>, _error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    Action::backoff()
}

/// The `default` ServiceAccount of `namespace`.
pub fn default_account(namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT_ACCOUNT.into()),
            namespace: Some(namespace.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_account_lives_in_its_namespace() {
        let sa = default_account("team");
        assert_eq!(sa.metadata.name.as_deref(), Some("default"));
        assert_eq!(sa.metadata.namespace.as_deref(), Some("team"));
    }
}
