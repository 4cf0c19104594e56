//! `kerno-cni-bridge`: the node's bridge network driver (`kerno.network.v1`).
//!
//! A bridge per node holding the pod CIDR's first address, a veth pair per
//! pod (the pod end named `eth0` inside the pod's namespace, the host end on
//! the bridge with hairpin mode), addresses from a persisted IPAM, and routes
//! to the other nodes' pod CIDRs via their node addresses. Everything is done
//! over netlink; no `ip` commands.
//!
//! Config (`KERNO_PLUGIN_CONFIG`): `{ "bridge": "kerno0", "podCIDR":
//! "10.244.0.0/24", "nodeName": "n1", "stateDir": "/var/lib/kerno/cni-bridge",
//! "mtu": 1500, "hairpin": true, "ipForward": true, "standalone": false }`.
//!
//! Two ways to run:
//! - as a plugin ([`PluginBuilder`], kind `network`): registers with the
//!   kernel; the pod CIDR comes from the config or the Node `nodeName`;
//! - `standalone: true`: serves only `Network` on its unix socket and
//!   never talks to the kernel, for a driver inside a node's network
//!   namespace that cannot reach the kernel's loopback address (only the
//!   kubelet talks to a network driver). It needs `podCIDR`.

pub mod config;
pub mod dataplane;
pub mod driver;
pub mod ipam;
pub mod service;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kerno_sdk::plugin::{
    Handshake, PROTOCOL_VERSION, PluginBuilder, PluginContext, PluginEndpoint, PluginError, env,
};
use tokio::sync::OnceCell;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

pub use config::{Config, ConfigError, PodNetwork};
pub use driver::{Driver, DriverError};
pub use service::NetworkService;

use dataplane::netlink::{NetlinkDataplane, enable_ip_forward};

/// Why the driver could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config section is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The driver could not start (bridge, state directory).
    #[error("cannot start the driver: {0}")]
    Driver(#[from] DriverError),
    /// The plugin runtime failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The standalone server failed.
    #[error("{0}")]
    Serve(String),
}

/// Starts the datapath and the driver for `network`.
async fn start_driver(config: &Config, network: PodNetwork) -> Result<Arc<Driver>, RunError> {
    let dataplane = NetlinkDataplane::connect().map_err(DriverError::from)?;
    if config.ip_forward {
        enable_ip_forward().map_err(DriverError::from)?;
    }
    Ok(Arc::new(
        Driver::start(config.clone(), network, Arc::new(dataplane)).await?,
    ))
}

/// Runs the driver as the environment says (see the crate docs).
pub async fn run_from_env() -> Result<(), RunError> {
    let raw = match std::env::var(env::PLUGIN_CONFIG) {
        Ok(json) if !json.trim().is_empty() => {
            serde_json::from_str(&json).map_err(|e| RunError::Config(ConfigError::Json(e)))?
        }
        _ => serde_json::json!({}),
    };
    let config = Config::from_json(&raw)?;
    if config.standalone {
        let name = std::env::var(env::PLUGIN_NAME)
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| service::DRIVER_NAME.to_owned());
        let socket_dir = std::env::var_os(env::PLUGIN_SOCKET_DIR)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        return run_standalone(config, &name, socket_dir).await;
    }
    run_plugin(config).await
}

/// Runs as a registered plugin.
async fn run_plugin(config: Config) -> Result<(), RunError> {
    let cell = Arc::new(OnceCell::new());
    if let Some(cidr) = &config.pod_cidr {
        let driver = start_driver(&config, PodNetwork::parse(cidr)?).await?;
        let _ = cell.set(driver);
    }
    let service = NetworkService::new(cell.clone());
    PluginBuilder::new("network", env!("CARGO_PKG_VERSION"))
        .capability("network.v1")
        .routes(|r| r.add_service(service.into_server()))
        .run(move |ctx: PluginContext| async move {
            if cell.get().is_none() {
                let network = tokio::select! {
                    n = node_pod_network(&ctx, config.node_name.as_deref().unwrap_or_default()) => n?,
                    _ = ctx.shutdown.wait() => return Ok(()),
                };
                let driver = start_driver(&config, network).await?;
                let _ = cell.set(driver);
            }
            ctx.shutdown.wait().await;
            Ok::<(), RunError>(())
        })
        .await?;
    Ok(())
}

/// Waits until the Node has a `spec.podCIDR` and returns it.
async fn node_pod_network(ctx: &PluginContext, node: &str) -> Result<PodNetwork, RunError> {
    let nodes = kerno_sdk::Api::<Node>::all(ctx.client.clone());
    loop {
        match nodes.get(node).await {
            Ok(n) => {
                if let Some(cidr) = n.spec.and_then(|s| s.pod_cidr) {
                    return Ok(PodNetwork::parse(&cidr)?);
                }
                tracing::info!(node, "waiting for the node's spec.podCIDR");
            }
            Err(e) => tracing::info!(node, error = %e, "waiting for the node"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Serves `Network` (only) on `<socket_dir>/<name>.sock`, or on a TCP port
/// of 127.0.0.1 without a socket directory; prints the handshake line.
async fn run_standalone(
    config: Config,
    name: &str,
    socket_dir: Option<PathBuf>,
) -> Result<(), RunError> {
    let network = config
        .pod_cidr
        .as_deref()
        .ok_or(ConfigError::NoPodCidr)
        .and_then(PodNetwork::parse)?;
    let driver = start_driver(&config, network).await?;
    let server = tonic::transport::Server::builder()
        .add_service(NetworkService::ready(driver).into_server());
    let stop = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM");
                    return std::future::pending().await;
                }
            };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    };
    let serve_err = |e: &dyn std::fmt::Display| RunError::Serve(e.to_string());
    match socket_dir {
        Some(dir) => {
            let path =
                std::path::absolute(dir.join(format!("{name}.sock"))).map_err(|e| serve_err(&e))?;
            // A socket left by a previous run would make bind fail.
            let _ = std::fs::remove_file(&path);
            let listener = tokio::net::UnixListener::bind(&path)
                .map_err(|e| serve_err(&format!("bind {}: {e}", path.display())))?;
            handshake(PluginEndpoint::Unix(path.clone()))?;
            let served = server
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), stop)
                .await;
            let _ = std::fs::remove_file(&path);
            served.map_err(|e| serve_err(&e))
        }
        None => {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| serve_err(&e))?;
            let addr = listener.local_addr().map_err(|e| serve_err(&e))?;
            handshake(PluginEndpoint::Tcp(addr))?;
            server
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop)
                .await
                .map_err(|e| serve_err(&e))
        }
    }
}

fn handshake(endpoint: PluginEndpoint) -> Result<(), RunError> {
    use std::io::Write;
    tracing::info!(%endpoint, "serving standalone");
    let line = Handshake {
        protocol_version: PROTOCOL_VERSION,
        endpoint,
    };
    let mut out = std::io::stdout();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| RunError::Serve(format!("cannot write the handshake line: {e}")))
}
