//! kerno's default scheduler, shaped like kube-scheduler: a scheduling queue
//! (priority order, back-off, unschedulable pods moved back on cluster
//! events), a cache of nodes and their pods updated incrementally from
//! informers (with assumed pods while bindings are in flight), filter and
//! score plugins as Rust traits evaluated in parallel across nodes, binding
//! through `pods/binding`, preemption of lower-priority pods, and
//! `Scheduled`/`FailedScheduling` events plus a `PodScheduled=False`
//! condition that `kubectl describe pod` shows.
//!
//! It places pods whose `schedulerName` is `default-scheduler` (or empty)
//! and that have no `nodeName`. Config: none needed.

pub mod algorithm;
pub mod cache;
pub mod filters;
pub mod framework;
pub mod labels;
pub mod preemption;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod scores;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use kerno_sdk::events::EventRecorder;
use kerno_sdk::informer::Informer;
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::{Api, ListParams};

pub use scheduler::{SCHEDULER_NAME, Scheduler};

/// The plugin's work, until told to stop.
pub async fn run(ctx: PluginContext) -> anyhow::Result<()> {
    let recorder = EventRecorder::new(ctx.client.clone(), SCHEDULER_NAME);
    let scheduler = Arc::new(Scheduler::new(
        ctx.client.clone(),
        recorder,
        tokio::runtime::Handle::current(),
    ));
    ctx.health.set_serving("syncing caches");
    let s = scheduler.clone();
    let nodes = Informer::builder(Api::<Node>::all(ctx.client.clone()), ListParams::default())
        .handler(move |change| s.on_node(change))
        .spawn();
    nodes.store().wait_until_ready().await;
    let s = scheduler.clone();
    let pods = Informer::builder(Api::<Pod>::all(ctx.client.clone()), ListParams::default())
        .handler(move |change| s.on_pod(change))
        .channel_capacity(16)
        .spawn();
    pods.store().wait_until_ready().await;
    ctx.health.set_serving("scheduling");
    tracing::info!("caches synced; scheduling");
    let s = scheduler.clone();
    let worker = std::thread::Builder::new()
        .name("scheduling".into())
        .spawn(move || s.run_loop())?;
    ctx.shutdown.wait().await;
    scheduler.stop();
    tokio::task::spawn_blocking(move || worker.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the scheduling thread panicked"))?;
    drop((nodes, pods));
    Ok(())
}
