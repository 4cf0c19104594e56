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

/// How soon a failed SyncRoutes (a restarting driver) is tried again.
const ROUTE_RETRY: Duration = Duration::from_secs(1);

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
    let mut failed = false;
    loop {
        let forced = tokio::select! {
            _ = changes.recv() => false,
            _ = tick.tick() => true,
            () = tokio::time::sleep(ROUTE_RETRY), if failed => true,
        };
        // Read the nodes after waking: the change that woke us is in the store.
        let routes = node_routes(&store.list());
        if !forced && last.as_ref() == Some(&routes) {
            continue;
        }
        match network
            .sync_routes(net::SyncRoutesRequest {
                nodes: routes.clone(),
            })
            .await
        {
            Ok(_) => {
                last = Some(routes);
                failed = false;
            }
            Err(s) => {
                failed = true;
                tracing::debug!(error = %s.message(), "network driver did not take routes");
            }
        }
    }
}
