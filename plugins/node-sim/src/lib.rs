//! Simulated nodes, KWOK-like: one process registers N Nodes, renews their
//! Leases, and plays kubelet for pods bound to them (Running with a pod IP
//! and Ready conditions; deletions finished), without any containers.
//!
//! Config (`KERNO_PLUGIN_CONFIG`, JSON, all optional): see [`SimConfig`],
//! e.g. `{"nodes": 5000, "namePrefix": "sim-", "cpu": "32", "memory": "256Gi",
//! "pods": 110, "labels": {}, "taints": [], "zones": 3}`. Annotating a Node
//! `kerno.dev/sim-heartbeat: stopped` stops renewing its Lease.

pub mod config;
pub mod nodes;
pub mod pods;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use kerno_sdk::informer::Informer;
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::{Action, Api, Controller, ListParams};

pub use config::SimConfig;

/// The plugin's work, until told to stop.
pub async fn run(ctx: PluginContext) -> anyhow::Result<()> {
    let config: SimConfig = serde_json::from_value(ctx.config.clone())?;
    ctx.health.set_serving("registering nodes");
    nodes::register_nodes(&ctx.client, &config).await?;
    tracing::info!(nodes = config.nodes, prefix = %config.name_prefix, "registered simulated nodes");
    ctx.health.set_serving("running");
    let node_informer = Informer::builder(
        Api::<Node>::all(ctx.client.clone()),
        ListParams::default().labels("type=kerno-sim"),
    )
    .spawn();
    let leases = nodes::renew_leases(ctx.client.clone(), config.clone(), node_informer.store());
    let pod_ctx = Arc::new(pods::PodContext::new(ctx.client.clone(), config.clone()));
    let kubelet = Controller::new(Api::<Pod>::all(ctx.client.clone()), pod_ctx)
        .concurrency(config.concurrency.max(1))
        .run(pods::reconcile, |_, _, _| Action::backoff());
    tokio::select! {
        () = leases => {}
        () = kubelet => {}
        _ = ctx.shutdown.wait() => {}
    }
    drop(node_informer);
    Ok(())
}
