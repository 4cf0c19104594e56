//! `kerno-kubelet`: the node agent. It registers its Node, renews the node's
//! Lease, and runs the pods bound to it through the node's runtime driver
//! (`kerno.runtime.v1`) and network driver (`kerno.network.v1`).
//!
//! Layout: [`node`] and [`lease`] keep the Node alive; [`pod`] holds the
//! per-pod workers ([`pod::worker`]: sandbox → network → volumes → init
//! containers → containers → probes → status; [`pod::terminate`];
//! [`pod::adopt`] after a restart); [`env`], [`volumes`], [`probes`] are the
//! pure parts; [`server`] serves container logs to the kernel.

#![warn(missing_docs)]

pub mod atomic_dir;
pub mod backoff;
pub mod cluster;
pub mod config;
pub mod drivers;
pub mod env;
pub mod events;
pub mod exec;
pub mod lease;
pub mod machine;
pub mod node;
pub mod pod;
pub mod portforward;
pub mod probes;
pub mod quantity;
pub mod refs;
pub mod routes;
pub mod server;
pub mod time;
pub mod volumes;

#[cfg(test)]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kerno_proto::runtime::v1 as rt;
use kerno_sdk::informer::Informer;
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::{Api, ListParams};

use crate::cluster::KernelCluster;
use crate::config::KubeletConfig;
use crate::pod::{ContainerIndex, Deps, PodManager, WorkerOptions};

/// Why the kubelet could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    /// The config section is invalid.
    #[error("invalid kubelet config: {0}")]
    Config(#[from] serde_json::Error),
    /// A driver endpoint is neither given nor derivable.
    #[error("invalid kubelet config: {0}")]
    Endpoints(String),
    /// A driver endpoint is unusable.
    #[error("{0}")]
    Driver(#[from] drivers::DriverError),
    /// The kubelet port could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Listen(String, #[source] std::io::Error),
}

/// The runtime's version as Kubernetes shows it (`containerd://1.6.20`).
async fn runtime_version(runtime: &mut drivers::RuntimeClient) -> Option<String> {
    let call = runtime.version(rt::VersionRequest {});
    let v = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .ok()?
        .ok()?
        .into_inner();
    let backend = if v.backend_version.is_empty() {
        v.runtime_version
    } else {
        v.backend_version
    };
    let name = if v.runtime_name.contains("containerd") {
        "containerd"
    } else {
        v.runtime_name.as_str()
    };
    Some(format!("{name}://{backend}"))
}

/// The plugin's work: runs the node until shutdown.
pub async fn run(ctx: PluginContext) -> Result<(), KubeletError> {
    let socket_dir = std::env::var_os("KERNO_PLUGIN_SOCKET_DIR").map(std::path::PathBuf::from);
    let cfg = KubeletConfig::from_json(&ctx.config)?
        .with_default_endpoints(socket_dir.as_deref())
        .map_err(KubeletError::Endpoints)?;
    let mut runtime = drivers::runtime(&cfg.runtime_endpoint)?;
    let network = drivers::network(&cfg.network_endpoint)?;
    std::fs::create_dir_all(&cfg.root_dir)
        .map_err(|e| KubeletError::Listen(cfg.root_dir.display().to_string(), e))?;

    let node_ip = cfg.node_ip.clone().unwrap_or_else(machine::node_ip);
    let port = cfg.kubelet_port.unwrap_or(10250);
    let listener = match tokio::net::TcpListener::bind((node_ip.as_str(), port)).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind(("0.0.0.0", port))
            .await
            .map_err(|e| KubeletError::Listen(format!("{node_ip}:{port}"), e))?,
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    let index = ContainerIndex::default();
    let state = server::ServerState {
        runtime: runtime.clone(),
        index: index.clone(),
    };
    let stop = ctx.shutdown.clone();
    tokio::spawn(async move {
        if let Err(e) = server::serve(listener, state, async move {
            stop.wait().await;
        })
        .await
        {
            tracing::error!(error = %e, "kubelet server failed");
        }
    });

    let version = runtime_version(&mut runtime).await;
    let mut facts = node::machine_facts(&cfg, version.clone().unwrap_or_default(), port);
    facts.node_ip = node_ip.clone();
    ctx.health.set_serving("registering node");
    loop {
        match node::register(&ctx.client, &cfg, &facts).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, "cannot register the node; retrying");
                tokio::select! {
                    _ = ctx.shutdown.wait() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }
    tracing::info!(node = %cfg.node_name, ip = %node_ip, port, "node registered");

    // Lease every 10 s; node status every minute (and as soon as the runtime answers).
    let (client, name) = (ctx.client.clone(), cfg.node_name.clone());
    let lease_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            if let Err(e) = lease::renew(&client, &name).await {
                tracing::warn!(error = %e, "cannot renew the node lease");
            }
        }
    });
    let (client, status_cfg, mut status_runtime) =
        (ctx.client.clone(), cfg.clone(), runtime.clone());
    let status_task = tokio::spawn(async move {
        loop {
            // Check the runtime often while it is down, rarely once it answers.
            let wait = if facts.container_runtime.is_empty() {
                10
            } else {
                60
            };
            tokio::time::sleep(Duration::from_secs(wait)).await;
            facts.container_runtime = runtime_version(&mut status_runtime)
                .await
                .unwrap_or_default();
            if let Err(e) = node::update_status(&client, &status_cfg, &facts).await {
                tracing::warn!(error = %e, "cannot update node status");
            }
        }
    });
    let routes_task = tokio::spawn(routes::sync_routes(ctx.client.clone(), network.clone()));

    let deps = Arc::new(Deps {
        runtime,
        network,
        cluster: Arc::new(KernelCluster::new(ctx.client.clone(), &cfg.node_name)),
        host_ip: node_ip,
        node_cpu_millis: i64::from(machine::cpu_count()) * 1000,
        node_memory_bytes: machine::memory_bytes(),
        options: WorkerOptions::default(),
        index,
        cfg: cfg.clone(),
    });
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let lp = ListParams::default().fields(format!("spec.nodeName={}", cfg.node_name));
    let informer = Informer::builder(pods, lp).spawn();
    let events = informer.subscribe();
    ctx.health.set_serving("running pods");
    let stop = ctx.shutdown.clone();
    PodManager::new(deps)
        .run(informer.store(), events, async move {
            stop.wait().await;
        })
        .await;
    lease_task.abort();
    status_task.abort();
    routes_task.abort();
    Ok(())
}
