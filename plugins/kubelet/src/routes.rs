//! Tells the network driver about every node's pod CIDR whenever Nodes change.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kerno_proto::network::v1 as net;
use kerno_sdk::informer::Informer;
use kerno_sdk::{Api, KernelClient, ListParams};

use crate::drivers::NetworkClient;

/// The routes `nodes` imply (nodes without a podCIDR or InternalIP are skipped).
pub fn node_routes(nodes: &[std::sync::Arc<Node>]) -> Vec<net::NodeRoute> {
    let mut out: Vec<net::NodeRoute> = nodes
        .iter()
        .filter_map(|n| {
            let cidr = n.spec.as_ref()?.pod_cidr.clone()?;
            let ip = n
                .status
                .as_ref()?
                .addresses
                .iter()
                .flatten()
                .find(|a| a.type_ == "InternalIP")?
                .address
                .clone();
            Some(net::NodeRoute {
                node_name: n.metadata.name.clone()?,
                pod_cidr: cidr,
                node_ip: ip,
            })
        })
        .collect();
    out.sort_by(|a, b| a.node_name.cmp(&b.node_name));
    out
}

/// Watches Nodes and calls SyncRoutes when the set of routes changes (and
/// every minute, in case the driver restarted).
pub async fn sync_routes(client: KernelClient, mut network: NetworkClient) {
    let nodes: Api<Node> = Api::all(client);
    let informer = Informer::builder(nodes, ListParams::default()).spawn();
    let store = informer.store();
    let mut changes = informer.subscribe();
    store.wait_until_ready().await;
    let mut last: Option<Vec<net::NodeRoute>> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        let routes = node_routes(&store.list());
        let forced = tokio::select! {
            _ = changes.recv() => false,
            _ = tick.tick() => true,
        };
        if !forced && last.as_ref() == Some(&routes) {
            continue;
        }
        match network
            .sync_routes(net::SyncRoutesRequest {
                nodes: routes.clone(),
            })
            .await
        {
            Ok(_) => last = Some(routes),
            Err(s) => tracing::debug!(error = %s.message(), "network driver did not take routes"),
        }
    }
}
