//! The ReplicaSet controller: keeps `spec.replicas` pods matching each
//! ReplicaSet's selector, owned by it through a controller owner reference.
//!
//! - Watches ReplicaSets (the [`Controller`]) and pods (an informer whose
//!   handler enqueues the owning ReplicaSet, or for orphans every ReplicaSet
//!   whose selector matches).
//! - Creates missing pods from the template (`generateName: <rs>-`), deletes
//!   surplus ones (unscheduled, pending, not ready and newer first), adopts
//!   matching orphans and releases owned pods that stopped matching.
//! - [`expectations::Expectations`] keep a lagging cache from causing double
//!   creation; after a restart they start empty, which is safe because the
//!   controller only reconciles once the pod cache has fully listed.
//! - Writes `status` (replicas, fullyLabeledReplicas, readyReplicas,
//!   availableReplicas with `minReadySeconds`, observedGeneration).
//!
//! Config (`KERNO_PLUGIN_CONFIG`): `{"leaderElection": false, "workers": 4}`.

#![warn(missing_docs)]

pub mod expectations;
mod manage;
pub mod status;
mod sync;

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kerno_controller_common::{controller_of, matches};
use kerno_sdk::informer::{Informer, Notification, Store};
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::queue::WorkQueue;
use kerno_sdk::{Action, Api, Controller, KernelClient, ListParams, ObjectKey};

pub use expectations::Expectations;
pub use sync::reconcile;

/// Our name in `managedFields` and the Lease's name.
pub const FIELD_MANAGER: &str = "kerno-controller-replicaset";
/// The pod cache index of pods by namespace.
const BY_NAMESPACE: &str = "namespace";

/// What every reconcile gets.
pub struct Context {
    /// Authenticated as this plugin.
    pub client: KernelClient,
    /// Pending creations/deletions per ReplicaSet.
    pub expectations: Expectations,
    pods: OnceLock<Store<Pod>>,
}

impl Context {
    /// A context whose pod cache is wired later by [`controller`].
    pub fn new(client: KernelClient) -> Self {
        Self {
            client,
            expectations: Expectations::default(),
            pods: OnceLock::new(),
        }
    }

    /// The cached pods of `namespace`.
    fn pods_in(&self, namespace: &str) -> Vec<Arc<Pod>> {
        self.pods
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
    /// The ReplicaSet is malformed (no spec, selector or template).
    #[error("invalid replicaset: {0}")]
    Invalid(&'static str),
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

/// Runs the ReplicaSet controller until dropped.
pub async fn controller(client: KernelClient, workers: usize) {
    let ctx = Arc::new(Context::new(client.clone()));
    let replicasets: Api<ReplicaSet> = Api::all(client.clone());
    let controller = Controller::new(replicasets, ctx.clone()).concurrency(workers);
    let queue = controller.queue();
    let rs_store = controller.store();
    let handler_ctx = ctx.clone();
    let pods: Api<Pod> = Api::all(client);
    let informer = Informer::builder(pods, ListParams::default())
        .index(BY_NAMESPACE, |p: &Pod| {
            p.metadata.namespace.clone().into_iter().collect()
        })
        .handler(move |change| on_pod_change(change, &queue, &rs_store, &handler_ctx))
        .spawn();
    let _ = ctx.pods.set(informer.store());
    // Reconciling before the pod cache is complete would create pods that exist.
    informer.store().wait_until_ready().await;
    controller.run(reconcile, error_policy).await;
    drop(informer);
}

/// On failure, retry with the queue's exponential back-off.
pub fn error_policy(_rs: Arc<ReplicaSet>, _error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    Action::backoff()
}

/// The key of the ReplicaSet controlling `pod`, if one does.
fn owning_replicaset(pod: &Pod) -> Option<ObjectKey> {
    let owner = controller_of(&pod.metadata)?;
    (owner.kind == "ReplicaSet" && owner.api_version.starts_with("apps/"))
        .then(|| ObjectKey::new(pod.metadata.namespace.as_deref(), owner.name.clone()))
}

/// Enqueues every ReplicaSet that could adopt the orphan `pod`.
fn enqueue_adopters(pod: &Pod, queue: &WorkQueue<ObjectKey>, replicasets: &Store<ReplicaSet>) {
    let namespace = pod.metadata.namespace.as_deref();
    for rs in replicasets.list() {
        let selector = rs.spec.as_ref().map(|s| &s.selector);
        if rs.metadata.namespace.as_deref() == namespace
            && selector.is_some_and(|s| matches(s, pod.metadata.labels.as_ref()))
        {
            queue.add(ObjectKey::of(rs.as_ref()));
        }
    }
}

/// Pod informer handler: settles expectations and enqueues affected ReplicaSets.
fn on_pod_change(
    change: &Notification<Pod>,
    queue: &WorkQueue<ObjectKey>,
    replicasets: &Store<ReplicaSet>,
    ctx: &Context,
) {
    match change {
        Notification::Added(pod) => match owning_replicaset(pod) {
            Some(key) => {
                if pod.metadata.deletion_timestamp.is_some() {
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    ctx.expectations.deletion_observed(&key, &name);
                } else {
                    ctx.expectations.creation_observed(&key);
                }
                queue.add(key);
            }
            None => enqueue_adopters(pod, queue, replicasets),
        },
        Notification::Updated { old, new } => {
            let name = new.metadata.name.clone().unwrap_or_default();
            let new_owner = owning_replicaset(new);
            if new.metadata.deletion_timestamp.is_some()
                && old.metadata.deletion_timestamp.is_none()
            {
                // A graceful deletion has started: for counting, the pod is gone.
                if let Some(key) = &new_owner {
                    ctx.expectations.deletion_observed(key, &name);
                }
            }
            let old_owner = owning_replicaset(old);
            if old_owner != new_owner
                && let Some(key) = old_owner
            {
                queue.add(key);
            }
            match new_owner {
                Some(key) => queue.add(key),
                None => {
                    if old.metadata.labels != new.metadata.labels
                        || owning_replicaset(old).is_some()
                    {
                        enqueue_adopters(new, queue, replicasets);
                    }
                }
            }
        }
        Notification::Deleted(pod) => {
            if let Some(key) = owning_replicaset(pod) {
                let name = pod.metadata.name.clone().unwrap_or_default();
                ctx.expectations.deletion_observed(&key, &name);
                queue.add(key);
            }
        }
    }
}
