//! The service proxy: runs on every node, watches Services and
//! EndpointSlices and programs the node's datapath so ClusterIPs and
//! NodePorts reach ready endpoints.
//!
//! - [`model`] turns the cached objects into an ordered, datapath-neutral
//!   state; [`sync`] coalesces changes and syncs only when that state
//!   changed; [`datapath`] is the trait with its implementations: nftables
//!   ([`nft`], one atomic `nft -f -` transaction per sync) and the IPVS
//!   generic-netlink message encoding ([`ipvs`]).
//! - The chosen datapath and the reason are reported on the Plugin object
//!   (the `datapath=` and `datapath-reason=` capabilities) and in its health
//!   message.
//! - On shutdown the rules stay in place (as kube-proxy's do), so traffic
//!   keeps flowing while the proxy restarts; the restarted proxy replaces
//!   them with an identical ruleset. Deleting every Service removes the
//!   proxy's table.
//!
//! The proxy programs nothing until it knows its node (`nodeName`) or the
//! network namespace to program (`netns`): `kerno up` starts it by default,
//! and a machine that is no node keeps its network as it is.
//!
//! Config (`KERNO_PLUGIN_CONFIG`): `{"nodeName": "node-1", "netns":
//! "/run/netns/x", "clusterCidr": "10.244.0.0/16", "datapath": "ipvs",
//! "coalesceMs": 100}`; `netns` programs another network namespace than the
//! proxy's own (a node whose network lives in a namespace).

#![warn(missing_docs)]

pub mod datapath;
pub mod ipvs;
pub mod model;
pub mod nft;
pub mod sync;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kerno_sdk::informer::Informer;
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::{Api, ListParams};
use serde::Deserialize;
use tokio::sync::watch;

/// The plugin's config section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProxyConfig {
    /// This node's name, for `externalTrafficPolicy: Local`.
    pub node_name: Option<String>,
    /// A network namespace path to program instead of our own.
    pub netns: Option<PathBuf>,
    /// The pod network, `a.b.c.d/len`: ClusterIP traffic from outside it is masqueraded.
    pub cluster_cidr: Option<String>,
    /// `ipvs` (where the kernel has it) or `nftables` (the default).
    pub datapath: Option<String>,
    /// Milliseconds changes are collected before a sync (default 100).
    pub coalesce_ms: Option<u64>,
}

/// A bad plugin config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config is not the expected shape.
    #[error("proxy config: {0}")]
    Shape(#[from] serde_json::Error),
    /// `clusterCidr` is not an IPv4 CIDR.
    #[error("clusterCidr {0:?} is not an IPv4 CIDR")]
    Cidr(String),
    /// A datapath that cannot serve here.
    #[error("{0}")]
    Datapath(String),
}

/// Parses `a.b.c.d/len`.
pub fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = text.split_once('/')?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    Some((ip.parse().ok()?, len))
}

/// Whether this kernel has IPVS.
pub fn ip_vs_available() -> bool {
    std::path::Path::new("/proc/net/ip_vs").exists()
}

/// The plugin's work: watch, and sync the datapath until stopped.
pub async fn run(ctx: PluginContext) -> anyhow::Result<()> {
    let config: ProxyConfig =
        serde_json::from_value(ctx.config.clone()).map_err(ConfigError::from)?;
    let cluster_cidr = match &config.cluster_cidr {
        Some(text) => Some(parse_cidr(text).ok_or_else(|| ConfigError::Cidr(text.clone()))?),
        None => None,
    };
    let (name, reason) = datapath::choose(ip_vs_available(), config.datapath.as_deref())
        .map_err(ConfigError::Datapath)?;
    if name == "ipvs" && config.netns.is_some() {
        return Err(ConfigError::Datapath(
            "the IPVS datapath programs the proxy's own network namespace; netns is for nftables"
                .into(),
        )
        .into());
    }
    tracing::info!(datapath = name, reason = %reason, "datapath chosen");
    if config.node_name.is_none() && config.netns.is_none() {
        // A node agent needs its node: `kerno up` starts the proxy by default,
        // also on machines that are no node (a laptop, a test host), whose
        // network it must not rewrite.
        tracing::info!("no nodeName or netns configured; not programming any datapath");
        ctx.health
            .set_serving(format!("idle: no nodeName or netns configured ({reason})"));
        ctx.shutdown.wait().await;
        return Ok(());
    }
    ctx.health
        .set_serving(format!("{reason}; waiting for caches"));
    let dp: Box<dyn datapath::Datapath> = if name == "ipvs" {
        Box::new(ipvs::IpvsDatapath::new(
            ipvs::socket::NetlinkIpvs::open().map_err(datapath::Error::Ipvs)?,
            ipvs::socket::DummyInterface::default(),
        ))
    } else {
        Box::new(datapath::NftDatapath::new(
            datapath::NftCommand {
                netns: config.netns.clone(),
            },
            nft::RenderOptions { cluster_cidr },
        ))
    };

    let (changes, changed) = watch::channel(0u64);
    let on_change = {
        let changes = changes.clone();
        move || changes.send_modify(|g| *g = g.wrapping_add(1))
    };
    let services: Api<Service> = Api::all(ctx.client.clone());
    let slices: Api<EndpointSlice> = Api::all(ctx.client.clone());
    let bump = on_change.clone();
    let service_informer = Informer::builder(services, ListParams::default())
        .handler(move |_| bump())
        .spawn();
    let bump = on_change.clone();
    let slice_informer = Informer::builder(slices, ListParams::default())
        .handler(move |_| bump())
        .spawn();
    let service_store = service_informer.store();
    let slice_store = slice_informer.store();
    // A sync from half-listed caches would drop live services' rules.
    service_store.wait_until_ready().await;
    slice_store.wait_until_ready().await;
    on_change();
    let node = model::NodeInfo {
        name: config.node_name.clone(),
    };
    let health = ctx.health.clone();
    let snapshot = move || model::build(&service_store.list(), &slice_store.list(), &node);
    let report = move |outcome: &sync::Outcome| match outcome {
        sync::Outcome::Synced { services } => {
            health.set_serving(format!("{reason}; {services} service ports programmed"));
        }
        sync::Outcome::Failed(e) => health.set_not_serving(format!("{reason}; sync failed: {e}")),
    };
    let pacing = sync::Pacing {
        coalesce: Duration::from_millis(config.coalesce_ms.unwrap_or(100)),
        ..sync::Pacing::default()
    };
    tokio::select! {
        () = sync::run(changed, snapshot, dp, pacing, report) => {}
        _ = ctx.shutdown.wait() => {
            // Rules stay: traffic flows while the proxy is restarted.
            tracing::info!("stopping; the datapath keeps its rules");
        }
    }
    drop((service_informer, slice_informer, changes));
    Ok(())
}
