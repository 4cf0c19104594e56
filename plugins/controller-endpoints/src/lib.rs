//! The endpoints controller: keeps each Service's `Endpoints` and
//! `discovery.k8s.io/v1` EndpointSlices in step with the pods its selector
//! matches.
//!
//! - Watches Services (the [`Controller`]), pods (an informer whose handler
//!   enqueues every Service of the pod's namespace that selects it before or
//!   after the change) and the slices it manages (so a slice deleted or edited
//!   by hand is rewritten).
//! - Ready pods are `addresses` / `ready: true`; not-ready (and terminating)
//!   ones `notReadyAddresses` / `ready: false`, unless the Service publishes
//!   not-ready addresses. Named target ports are resolved per pod.
//! - Everything it writes is controlled by the Service (owner reference), so
//!   the garbage collector removes it with the Service, and the controller can
//!   tell its objects from the user's: Services without a selector keep the
//!   Endpoints and slices their users wrote, untouched; ExternalName services
//!   get none (ones the controller wrote earlier are deleted).
//!
//! Config (`KERNO_PLUGIN_CONFIG`): `{"leaderElection": false, "workers": 4}`.

#![warn(missing_docs)]

pub mod desired;
mod sync;

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kerno_sdk::informer::{Informer, Notification, Store};
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::queue::WorkQueue;
use kerno_sdk::{Action, Api, Controller, KernelClient, ListParams, ObjectKey};

pub use sync::reconcile;

/// Our name in `managedFields` and the Lease's name.
pub const FIELD_MANAGER: &str = "kerno-controller-endpoints";
/// The cache index of pods and services by namespace.
const BY_NAMESPACE: &str = "namespace";

/// What every reconcile gets.
pub struct Context {
    /// Authenticated as this plugin.
    pub client: KernelClient,
    pods: OnceLock<Store<Pod>>,
}

impl Context {
    /// A context whose pod cache is wired later by [`controller`].
    pub fn new(client: KernelClient) -> Self {
        Self {
            client,
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

fn namespace_index<K: kerno_sdk::Resource>(obj: &K) -> Vec<String> {
    obj.meta().namespace.clone().into_iter().collect()
}

/// Runs the endpoints controller until dropped.
pub async fn controller(client: KernelClient, workers: usize) {
    let ctx = Arc::new(Context::new(client.clone()));
    let services: Api<Service> = Api::all(client.clone());
    let controller = Controller::new(services, ctx.clone())
        .concurrency(workers)
        .index(BY_NAMESPACE, namespace_index::<Service>);
    let queue = controller.queue();
    let service_store = controller.store();
    let pods: Api<Pod> = Api::all(client.clone());
    let pod_queue = queue.clone();
    let pod_informer = Informer::builder(pods, ListParams::default())
        .index(BY_NAMESPACE, namespace_index::<Pod>)
        .handler(move |change| on_pod_change(change, &pod_queue, &service_store))
        .spawn();
    let _ = ctx.pods.set(pod_informer.store());
    let slices: Api<EndpointSlice> = Api::all(client);
    let slice_queue = queue.clone();
    let slice_informer = Informer::builder(
        slices,
        ListParams::default().labels(format!(
            "{}={}",
            desired::MANAGED_BY_LABEL,
            desired::MANAGED_BY
        )),
    )
    .handler(move |change| on_slice_change(change, &slice_queue))
    .spawn();
    // Reconciling before the pod cache is complete would drop live endpoints.
    pod_informer.store().wait_until_ready().await;
    controller.run(reconcile, error_policy).await;
    drop((pod_informer, slice_informer));
}

/// On failure, retry with the queue's exponential back-off.
pub fn error_policy(_service: Arc<Service>, _error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    Action::backoff()
}

/// Enqueues every Service that selects `pod`.
fn enqueue_selecting(pod: &Pod, queue: &WorkQueue<ObjectKey>, services: &Store<Service>) {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    for service in services.by_index(BY_NAMESPACE, namespace) {
        if desired::selects(&service, pod) {
            queue.add(ObjectKey::of(service.as_ref()));
        }
    }
}

/// Pod informer handler: the Services selecting the pod before or after.
fn on_pod_change(
    change: &Notification<Pod>,
    queue: &WorkQueue<ObjectKey>,
    services: &Store<Service>,
) {
    match change {
        Notification::Added(pod) | Notification::Deleted(pod) => {
            enqueue_selecting(pod, queue, services);
        }
        Notification::Updated { old, new } => {
            enqueue_selecting(old, queue, services);
            enqueue_selecting(new, queue, services);
        }
    }
}

/// Slice informer handler: the slice's Service, to rewrite a slice changed
/// or deleted by someone else.
fn on_slice_change(change: &Notification<EndpointSlice>, queue: &WorkQueue<ObjectKey>) {
    let slice = change.object();
    let service = slice
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(desired::SERVICE_NAME_LABEL));
    if let Some(service) = service {
        queue.add(ObjectKey::new(
            slice.metadata.namespace.as_deref(),
            service.clone(),
        ));
    }
}
