//! The node lifecycle controller.
//!
//! Each node's Lease in `kube-node-lease` is its heartbeat. A node whose
//! lease `spec.renewTime` has not changed for `nodeMonitorGracePeriod`
//! (measured on our own clock from when we saw it change, like Kubernetes,
//! so clock skew does not matter) gets its Ready condition set to Unknown
//! ("Kubelet stopped posting node status."), the `node.kubernetes.io/unreachable`
//! NoSchedule and NoExecute taints, and its pods' Ready condition False. A
//! node whose Ready condition is False gets the `not-ready` taints instead.
//! Pods on a node with such a NoExecute taint are deleted once their
//! toleration runs out (see [`policy::eviction_after`]). When the lease is
//! renewed again the taints go, and a Ready=Unknown we set becomes True.
//!
//! Config (`KERNO_PLUGIN_CONFIG`, JSON):
//! `{"nodeMonitorGracePeriodSeconds": 40, "nodeMonitorPeriodMillis": 1000,
//!   "defaultTolerationSeconds": 300}`.

pub mod policy;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kerno_sdk::informer::{Informer, Store};
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::{Action, Api, Controller, Error, KernelClient, ListParams, ObjectKey};
use tokio::time::Instant;

/// Where node leases live.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Index of pods by node name.
const NODE_INDEX: &str = "node";

/// Tunables.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long a lease may go unrenewed before the node is unreachable.
    pub grace_period: Duration,
    /// How often every node is looked at.
    pub monitor_period: Duration,
    /// Toleration seconds of a pod without a matching toleration.
    pub default_toleration_seconds: i64,
}

impl Config {
    /// From the plugin's config section, with Kubernetes' defaults.
    pub fn from_json(config: &serde_json::Value) -> Self {
        let grace = config["nodeMonitorGracePeriodSeconds"]
            .as_f64()
            .unwrap_or(40.0)
            .max(0.1);
        Self {
            grace_period: Duration::from_secs_f64(grace),
            monitor_period: Duration::from_millis(
                config["nodeMonitorPeriodMillis"]
                    .as_u64()
                    .unwrap_or(1000)
                    .max(10),
            ),
            default_toleration_seconds: config["defaultTolerationSeconds"].as_i64().unwrap_or(300),
        }
    }
}

/// When we last saw a node's lease change.
#[derive(Clone, Debug)]
struct Observed {
    renew_time: Option<String>,
    at: Instant,
}

/// What every reconcile gets.
pub struct Context {
    /// The kernel.
    pub client: KernelClient,
    /// Tunables.
    pub config: Config,
    leases: Store<Lease>,
    pods: Store<Pod>,
    observed: Mutex<HashMap<String, Observed>>,
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
    let config = Config::from_json(&ctx.config);
    ctx.health.set_serving("running");
    let shutdown = ctx.shutdown.clone();
    tokio::select! {
        () = controller(ctx.client.clone(), config) => {}
        _ = shutdown.wait() => {}
    }
    Ok(())
}

/// The controller, until dropped.
pub async fn controller(client: KernelClient, config: Config) {
    let pods = Informer::builder(Api::<Pod>::all(client.clone()), ListParams::default())
        .index(NODE_INDEX, |p: &Pod| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|n| !n.is_empty())
                .into_iter()
                .collect()
        })
        .spawn();
    let leases_api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let leases = Informer::builder(leases_api, ListParams::default()).spawn();
    let monitor = config.monitor_period;
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        leases: leases.store(),
        pods: pods.store(),
        observed: Mutex::new(HashMap::new()),
    });
    let controller = Controller::new(Api::<Node>::all(client), ctx.clone()).concurrency(4);
    // A renewed lease wakes its node at once (the periodic look is the safety net).
    let queue = controller.queue();
    let mut lease_changes = leases.subscribe();
    let forward = tokio::spawn(async move {
        loop {
            match lease_changes.recv().await {
                Ok(change) => {
                    if let Some(name) = change.object().metadata.name.as_deref() {
                        queue.add(ObjectKey::new(None, name));
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    pods.store().wait_until_ready().await;
    leases.store().wait_until_ready().await;
    tracing::info!(?monitor, "node lifecycle controller running");
    controller.run(reconcile, error_policy).await;
    forward.abort();
}

/// Looks at one node: its lease, its Ready condition, its taints, its pods.
pub async fn reconcile(node: Arc<Node>, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
    let Some(name) = node.metadata.name.clone() else {
        return Ok(Action::await_change());
    };
    if node.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let stale = lease_is_stale(&ctx, &name);
    let health = status::judge(&node, stale);
    let next_check = status::sync(&ctx, &node, &name, health).await?;
    let after = next_check
        .map(|d| d.min(ctx.config.monitor_period))
        .unwrap_or(ctx.config.monitor_period);
    Ok(Action::requeue(after))
}

/// Whether the node's lease has not changed for the grace period, on our clock.
fn lease_is_stale(ctx: &Context, node: &str) -> bool {
    let renew_time = ctx
        .leases
        .get(&ObjectKey::new(Some(LEASE_NAMESPACE), node))
        .and_then(|l| {
            l.spec
                .as_ref()?
                .renew_time
                .as_ref()
                .map(|t| t.0.to_string())
        });
    let now = Instant::now();
    let mut observed = ctx.observed.lock().unwrap_or_else(|e| e.into_inner());
    let seen = observed.entry(node.to_owned()).or_insert(Observed {
        renew_time: renew_time.clone(),
        at: now,
    });
    if seen.renew_time != renew_time {
        *seen = Observed {
            renew_time,
            at: now,
        };
    }
    now.duration_since(seen.at) > ctx.config.grace_period
}

/// Retries with the queue's back-off.
pub fn error_policy(_node: Arc<Node>, _error: &ReconcileError, _ctx: Arc<Context>) -> Action {
    Action::backoff()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults() {
        let c = Config::from_json(&serde_json::json!({}));
        assert_eq!(c.grace_period, Duration::from_secs(40));
        assert_eq!(c.default_toleration_seconds, 300);
        let c = Config::from_json(&serde_json::json!({"nodeMonitorGracePeriodSeconds": 2.5}));
        assert_eq!(c.grace_period, Duration::from_millis(2500));
    }
}
