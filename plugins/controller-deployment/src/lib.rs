//! The Deployment controller: rolls a Deployment's pod template out through
//! ReplicaSets named `<deployment>-<pod-template-hash>`.
//!
//! - Watches Deployments (the [`Controller`]) and ReplicaSets (an informer
//!   whose handler enqueues the owning Deployment, or for orphans every
//!   Deployment whose selector matches).
//! - RollingUpdate (maxSurge/maxUnavailable), Recreate, `spec.paused`,
//!   `revisionHistoryLimit` clean-up, the revision / desired-replicas /
//!   max-replicas annotations that `kubectl rollout history/undo` rely on, and
//!   status with the Available and Progressing conditions `kubectl rollout
//!   status` reads.
//! - No state besides the caches: every reconcile recomputes from them.
//!
//! Config (`KERNO_PLUGIN_CONFIG`): `{"leaderElection": false, "workers": 4}`.

#![warn(missing_docs)]

pub mod hash;
mod replicasets;
pub mod rollout;
mod status;
mod sync;

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kerno_controller_common::{controller_of, matches};
use kerno_sdk::informer::{Informer, Notification, Store};
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::queue::WorkQueue;
use kerno_sdk::{Action, Api, Controller, KernelClient, ListParams, ObjectKey};

pub use sync::reconcile;

/// Our name in `managedFields` and the Lease's name.
pub const FIELD_MANAGER: &str = "kerno-controller-deployment";
/// The ReplicaSet cache index by namespace.
const BY_NAMESPACE: &str = "namespace";

/// What every reconcile gets.
pub struct Context {
    /// Authenticated as this plugin.
    pub client: KernelClient,
    replicasets: OnceLock<Store<ReplicaSet>>,
}

impl Context {
    /// A context whose ReplicaSet cache is wired later by [`controller`].
    pub fn new(client: KernelClient) -> Self {
        Self {
            client,
            replicasets: OnceLock::new(),
        }
    }

    /// The cached ReplicaSets of `namespace`.
    fn replicasets_in(&self, namespace: &str) -> Vec<Arc<ReplicaSet>> {
        self.replicasets
            .get()
            .map(|s| s.by_index(BY_NAMESPACE, namespace))
            .unwrap_or_default()
    }
}

/// Why a reconcile failed; retried with back-off.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A kernel call failed.
    #[error("kernel: {0}")]
    Kernel(#[from] kerno_sdk::Error),
    /// The Deployment is malformed.
    #[error("invalid deployment: {0}")]
    Invalid(&'static str),
    /// The ReplicaSet name for the template is taken by another template.
    #[error("replicaset name {0} collides; retrying with a new collision count")]
    HashCollision(String),
}

/// The plugin's work: the controller, under leader election if configured.
pub async fn run(ctx: PluginContext) -> anyhow::Result<()> {
    let workers = ctx.config["workers"].as_u64().unwrap_or(4);
    let workers = usize::try_from(workers).unwrap_or(4);
    kerno_controller_common::run::run_controller(ctx, FIELD_MANAGER, move |client| {
        controller(client, workers)
    })
    .await
}

/// Runs the Deployment controller until dropped.
pub async fn controller(client: KernelClient, workers: usize) {
    let ctx = Arc::new(Context::new(client.clone()));
    let deployments: Api<Deployment> = Api::all(client.clone());
    let controller = Controller::new(deployments, ctx.clone()).concurrency(workers);
    let queue = controller.queue();
    let deployment_store = controller.store();
    let replicasets: Api<ReplicaSet> = Api::all(client);
    let informer = Informer::builder(replicasets, ListParams::default())
        .index(BY_NAMESPACE, |rs: &ReplicaSet| {
            rs.metadata.namespace.clone().into_iter().collect()
        })
        .handler(move |change| on_replicaset_change(change, &queue, &deployment_store))
        .spawn();
    let _ = ctx.replicasets.set(informer.store());
    // Reconciling before the cache is complete would create ReplicaSets that exist.
    informer.store().wait_until_ready().await;
    controller.run(reconcile, error_policy).await;
    drop(informer);
}

/// On failure, retry with the queue's exponential back-off.
pub fn error_policy(_d: Arc<Deployment>, _error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    Action::backoff()
}

/// The key of the Deployment controlling `rs`, if one does.
fn owning_deployment(rs: &ReplicaSet) -> Option<ObjectKey> {
    let owner = controller_of(&rs.metadata)?;
    (owner.kind == "Deployment" && owner.api_version.starts_with("apps/"))
        .then(|| ObjectKey::new(rs.metadata.namespace.as_deref(), owner.name.clone()))
}

/// ReplicaSet informer handler: enqueues the Deployments concerned.
fn on_replicaset_change(
    change: &Notification<ReplicaSet>,
    queue: &WorkQueue<ObjectKey>,
    deployments: &Store<Deployment>,
) {
    let enqueue_for = |rs: &ReplicaSet| match owning_deployment(rs) {
        Some(key) => queue.add(key),
        None => {
            for d in deployments.list() {
                let selector = d.spec.as_ref().map(|s| &s.selector);
                if d.metadata.namespace == rs.metadata.namespace
                    && selector.is_some_and(|s| matches(s, rs.metadata.labels.as_ref()))
                {
                    queue.add(ObjectKey::of(d.as_ref()));
                }
            }
        }
    };
    if let Notification::Updated { old, .. } = change
        && owning_deployment(old) != owning_deployment(change.object())
    {
        enqueue_for(old);
    }
    enqueue_for(change.object());
}
