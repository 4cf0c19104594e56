//! The garbage collector: deletion along `ownerReferences`.
//!
//! - **Background**: an object whose every owner is gone (a different uid
//!   under the owner's name counts as gone) is deleted.
//! - **Foreground**: an owner being deleted with the `foregroundDeletion`
//!   finalizer has its dependents deleted (those that themselves have
//!   dependents in the foreground too); once no dependent with
//!   `blockOwnerDeletion` is left the finalizer is removed and the kernel
//!   completes the owner's deletion.
//! - **Orphan**: an owner being deleted with the `orphan` finalizer has its
//!   reference removed from every dependent, then the finalizer removed.
//!
//! A dependent that still has a live owner is never deleted: references to
//! gone or foreground-deleting owners are just removed from it.
//!
//! The graph is one dynamic informer per type ([`OWNABLE`] plus the custom
//! resources of every CRD present at start), indexed by owner uid; one work
//! queue of objects; a few workers. Everything is level-based: an item is
//! judged from the caches and, before any deletion, a live read of its owners.
//!
//! Config (`KERNO_PLUGIN_CONFIG`, JSON): `{"workers": 4, "recheckMillis": 1000}`.

mod graph;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

use kerno_sdk::informer::{Informer, Notification};
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::queue::{RateLimits, WorkQueue};
use kerno_sdk::{Api, ApiResource, DynamicObject, KernelClient, ListParams, ObjectKey};
use tokio::sync::broadcast::error::RecvError;

pub use graph::{FOREGROUND, Graph, Item, ORPHAN, OwnerState};
pub use sweep::{SweepError, process};

/// Built-in types whose objects can have owners: (group, version, kind, plural).
pub const OWNABLE: &[(&str, &str, &str, &str)] = &[
    ("", "v1", "Pod", "pods"),
    ("", "v1", "Service", "services"),
    ("", "v1", "Endpoints", "endpoints"),
    ("", "v1", "ConfigMap", "configmaps"),
    ("", "v1", "Secret", "secrets"),
    ("", "v1", "ServiceAccount", "serviceaccounts"),
    ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ("apps", "v1", "Deployment", "deployments"),
    ("apps", "v1", "ReplicaSet", "replicasets"),
    ("apps", "v1", "DaemonSet", "daemonsets"),
    ("apps", "v1", "StatefulSet", "statefulsets"),
    ("apps", "v1", "ControllerRevision", "controllerrevisions"),
    ("batch", "v1", "Job", "jobs"),
    ("batch", "v1", "CronJob", "cronjobs"),
    ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    ("coordination.k8s.io", "v1", "Lease", "leases"),
];

/// Tunables.
#[derive(Clone, Debug)]
pub struct Config {
    /// Items processed at once.
    pub workers: usize,
    /// How soon an owner still waiting for dependents is looked at again
    /// (events also wake it; this is the safety net).
    pub recheck: Duration,
}

impl Config {
    /// From the plugin's config section, with defaults.
    pub fn from_json(config: &serde_json::Value) -> Self {
        Self {
            workers: config["workers"].as_u64().unwrap_or(4).clamp(1, 64) as usize,
            recheck: Duration::from_millis(config["recheckMillis"].as_u64().unwrap_or(1000)),
        }
    }
}

/// Runs the garbage collector until the plugin is told to stop.
pub async fn run(ctx: PluginContext) -> anyhow::Result<()> {
    let config = Config::from_json(&ctx.config);
    let shutdown = ctx.shutdown.clone();
    let health = ctx.health.clone();
    tokio::select! {
        result = collector(ctx.client.clone(), config, move || health.set_serving("running")) => result?,
        _ = shutdown.wait() => {}
    }
    Ok(())
}

/// The resource types to watch: built-in ones plus custom resources.
async fn resource_types(client: &KernelClient) -> anyhow::Result<Vec<ApiResource>> {
    let mut types: Vec<ApiResource> = OWNABLE
        .iter()
        .map(|(g, v, k, p)| ApiResource::new(*g, *v, *k, *p, true))
        .collect();
    let crds: Api<DynamicObject> = Api::dynamic(
        client.clone(),
        ApiResource::new(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        ),
        None,
    );
    // The kernel may still be starting: retry the first call.
    let list = loop {
        match crds.list(&ListParams::default()).await {
            Ok(list) => break list,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list CRDs yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    for crd in list.items {
        if let Some(resource) = sweep::custom_resource(&crd) {
            types.push(resource);
        }
    }
    Ok(types)
}

/// The collector: informers, the fan-out of their changes into the queue,
/// and the workers. Calls `ready` once the caches are filled.
pub async fn collector(
    client: KernelClient,
    config: Config,
    ready: impl FnOnce(),
) -> anyhow::Result<()> {
    let mut informers: Vec<Informer<DynamicObject>> = Vec::new();
    let mut types = Vec::new();
    for resource in resource_types(&client).await? {
        let (watched, informer) = graph::watch(&client, resource);
        types.push(watched);
        informers.push(informer);
    }
    let graph = Arc::new(Graph { types });
    let queue: WorkQueue<Item> = WorkQueue::new(RateLimits::default());
    let mut tasks = tokio::task::JoinSet::new();
    for (type_index, informer) in informers.iter().enumerate() {
        let mut changes = informer.subscribe();
        let graph = graph.clone();
        let queue = queue.clone();
        tasks.spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(change) => enqueue_related(&graph, &queue, type_index, &change),
                    // Missed changes: look at everything of this type again.
                    Err(RecvError::Lagged(_)) => {
                        for key in graph.types[type_index].store.keys() {
                            queue.add(Item { type_index, key });
                        }
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
    }
    for t in &graph.types {
        t.store.wait_until_ready().await;
    }
    // Changes before we subscribed are covered by one pass over everything.
    for (type_index, t) in graph.types.iter().enumerate() {
        for key in t.store.keys() {
            queue.add(Item { type_index, key });
        }
    }
    ready();
    tracing::info!(types = graph.types.len(), "garbage collector running");
    for _ in 0..config.workers {
        let graph = graph.clone();
        let queue = queue.clone();
        let recheck = config.recheck;
        tasks.spawn(async move {
            while let Some(item) = queue.get().await {
                match process(&graph, &item).await {
                    Ok(true) => {
                        queue.forget(&item);
                        queue.add_after(item.clone(), recheck);
                    }
                    Ok(false) => queue.forget(&item),
                    Err(e) => {
                        tracing::debug!(object = %item.key, error = %e, "gc step failed; retrying");
                        queue.add_rate_limited(item.clone());
                    }
                }
                queue.done(&item);
            }
        });
    }
    // The tasks run until the collector is dropped; the informers with them.
    while tasks.join_next().await.is_some() {}
    drop(informers);
    Ok(())
}

/// After a change of one object: look at it, at its dependents (their owner
/// changed) and at its owners (a foreground owner waits for it).
fn enqueue_related(
    graph: &Graph,
    queue: &WorkQueue<Item>,
    type_index: usize,
    change: &Notification<DynamicObject>,
) {
    let obj = change.object();
    if !matches!(change, Notification::Deleted(_)) {
        queue.add(Item {
            type_index,
            key: ObjectKey::of(obj.as_ref()),
        });
    }
    if let Some(uid) = obj.metadata.uid.as_deref() {
        for (i, dependent) in graph.dependents(uid) {
            queue.add(Item {
                type_index: i,
                key: ObjectKey::of(dependent.as_ref()),
            });
        }
    }
    for owner in graph::owner_refs(obj) {
        if let Some(item) = graph.owner_item(owner, obj.metadata.namespace.as_deref()) {
            queue.add(item);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_overrides() {
        let c = Config::from_json(&serde_json::json!({}));
        assert_eq!(c.workers, 4);
        assert_eq!(c.recheck, Duration::from_secs(1));
        let c = Config::from_json(&serde_json::json!({"workers": 0, "recheckMillis": 50}));
        assert_eq!(c.workers, 1);
        assert_eq!(c.recheck, Duration::from_millis(50));
    }
}
