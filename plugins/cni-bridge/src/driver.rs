//! The driver's logic: IPAM plus the datapath, per sandbox, behind the
//! `kerno.network.v1.Network` service.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ipnet::Ipv4Net;
use kerno_proto::network::v1 as pb;

use crate::config::{Config, PodNetwork};
use crate::dataplane::{self, Dataplane, DataplaneError, NodeRoute, PodLink};
use crate::ipam::{Ipam, IpamError};

/// Why a driver call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The request is malformed.
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// The sandbox holds no address.
    #[error("sandbox {0} has no network")]
    NotFound(String),
    /// The driver does not know its pod CIDR yet.
    #[error("the driver is not ready: {0}")]
    NotReady(String),
    /// Address management failed.
    #[error(transparent)]
    Ipam(#[from] IpamError),
    /// The datapath refused a change.
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
}

impl From<DriverError> for tonic::Status {
    fn from(e: DriverError) -> Self {
        let message = e.to_string();
        match e {
            DriverError::InvalidArgument(_) | DriverError::Ipam(IpamError::SandboxId(_)) => {
                tonic::Status::invalid_argument(message)
            }
            DriverError::NotFound(_) => tonic::Status::not_found(message),
            DriverError::NotReady(_) => tonic::Status::unavailable(message),
            DriverError::Ipam(IpamError::Exhausted(_)) => {
                tonic::Status::resource_exhausted(message)
            }
            DriverError::Ipam(IpamError::Io { .. }) | DriverError::Dataplane(_) => {
                tonic::Status::internal(message)
            }
        }
    }
}

/// The bridge driver of one node.
pub struct Driver {
    config: Config,
    network: PodNetwork,
    dataplane: Arc<dyn Dataplane>,
    ipam: Mutex<Ipam>,
    // SetUp and TearDown of one sandbox run one at a time; different
    // sandboxes proceed in parallel.
    sandbox_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Driver {
    /// Creates the bridge and loads the persisted allocations.
    pub async fn start(
        config: Config,
        network: PodNetwork,
        dataplane: Arc<dyn Dataplane>,
    ) -> Result<Self, DriverError> {
        dataplane
            .ensure_bridge(&config.bridge, network.gateway_net(), config.mtu)
            .await?;
        let state_dir = config.state_dir.clone();
        let ipam = tokio::task::spawn_blocking(move || Ipam::load(&state_dir, network))
            .await
            .map_err(|e| DriverError::NotReady(format!("loading ipam state: {e}")))??;
        tracing::info!(bridge = %config.bridge, cidr = %network.cidr,
            allocations = ipam.allocations().count(), "bridge ready");
        Ok(Self {
            config,
            network,
            dataplane,
            ipam: Mutex::new(ipam),
            sandbox_locks: Mutex::new(HashMap::new()),
        })
    }

    /// The node's pod network.
    pub fn network(&self) -> PodNetwork {
        self.network
    }

    fn sandbox_lock(&self, sandbox_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .sandbox_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Drop locks nobody holds, so the map does not grow with every pod.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(sandbox_id.to_owned()).or_default().clone()
    }

    fn with_ipam<T>(&self, f: impl FnOnce(&mut Ipam) -> T) -> T {
        let mut ipam = self
            .ipam
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut ipam)
    }

    fn response(&self, ip: Ipv4Addr, interface: &str) -> pb::SetUpResponse {
        pb::SetUpResponse {
            ips: vec![ip.to_string()],
            gateway: self.network.gateway.to_string(),
            interface_name: interface.to_owned(),
        }
    }

    /// Wires the sandbox's namespace; the same address on every call.
    #[tracing::instrument(skip_all, fields(sandbox = %req.sandbox_id))]
    pub async fn set_up(&self, req: pb::SetUpRequest) -> Result<pb::SetUpResponse, DriverError> {
        if req.sandbox_id.is_empty() {
            return Err(DriverError::InvalidArgument("sandbox_id is empty".into()));
        }
        if req.netns_path.is_empty() {
            return Err(DriverError::InvalidArgument("netns_path is empty".into()));
        }
        let interface = if req.interface_name.is_empty() {
            "eth0".to_owned()
        } else {
            req.interface_name.clone()
        };
        if interface.len() > 15 || interface.contains('/') {
            return Err(DriverError::InvalidArgument(format!(
                "invalid interface name {interface:?}"
            )));
        }
        let lock = self.sandbox_lock(&req.sandbox_id);
        let _held = lock.lock().await;
        let pod = req
            .pod
            .as_ref()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .unwrap_or_default();
        let existed = self.with_ipam(|ipam| ipam.get(&req.sandbox_id).is_some());
        let allocation = self.with_ipam(|ipam| ipam.allocate(&req.sandbox_id, &pod))?;
        let host_veth = dataplane::host_veth_name(&req.sandbox_id);
        let link = PodLink {
            bridge: self.config.bridge.clone(),
            host_veth: host_veth.clone(),
            netns_path: PathBuf::from(&req.netns_path),
            interface: interface.clone(),
            address: Ipv4Net::new(allocation.ip, self.network.cidr.prefix_len())
                .unwrap_or(self.network.cidr),
            gateway: self.network.gateway,
            mtu: self.config.mtu,
            hairpin: self.config.hairpin,
        };
        if let Err(e) = self.dataplane.attach_pod(&link).await {
            if !existed {
                // Leave nothing behind for a sandbox that never got its network.
                let _ = self.dataplane.detach_pod(&host_veth).await;
                let _ = self.with_ipam(|ipam| ipam.release(&req.sandbox_id));
            }
            return Err(e.into());
        }
        tracing::debug!(ip = %allocation.ip, %pod, "pod network set up");
        Ok(self.response(allocation.ip, &interface))
    }

    /// Removes the sandbox's veth and frees its address; succeeds when done before.
    #[tracing::instrument(skip_all, fields(sandbox = %req.sandbox_id))]
    pub async fn tear_down(&self, req: pb::TearDownRequest) -> Result<(), DriverError> {
        if req.sandbox_id.is_empty() {
            return Err(DriverError::InvalidArgument("sandbox_id is empty".into()));
        }
        let lock = self.sandbox_lock(&req.sandbox_id);
        let _held = lock.lock().await;
        self.dataplane
            .detach_pod(&dataplane::host_veth_name(&req.sandbox_id))
            .await?;
        let released = self.with_ipam(|ipam| ipam.release(&req.sandbox_id))?;
        tracing::debug!(ip = ?released.map(|a| a.ip), "pod network torn down");
        Ok(())
    }

    /// The sandbox's addresses.
    pub fn status(&self, sandbox_id: &str) -> Result<pb::SetUpResponse, DriverError> {
        let ip = self
            .with_ipam(|ipam| ipam.get(sandbox_id).map(|a| a.ip))
            .ok_or_else(|| DriverError::NotFound(sandbox_id.to_owned()))?;
        Ok(self.response(ip, "eth0"))
    }

    /// Routes to the other nodes' pod CIDRs; entries for this node, without
    /// an IPv4 CIDR or address, or malformed, are skipped.
    pub async fn sync_routes(&self, nodes: &[pb::NodeRoute]) -> Result<(), DriverError> {
        let routes = routes_to_other_nodes(nodes, self.config.node_name.as_deref(), self.network);
        self.dataplane.sync_routes(&routes).await?;
        tracing::debug!(routes = routes.len(), "node routes synced");
        Ok(())
    }
}

/// The routes for `nodes`, leaving out this node (by name or pod CIDR) and
/// entries that are not IPv4 (dual-stack nodes list both families).
pub fn routes_to_other_nodes(
    nodes: &[pb::NodeRoute],
    own_name: Option<&str>,
    own: PodNetwork,
) -> Vec<NodeRoute> {
    let mut routes: Vec<NodeRoute> = nodes
        .iter()
        .filter(|n| own_name != Some(n.node_name.as_str()))
        .filter_map(|n| {
            let pod_cidr = n.pod_cidr.trim().parse::<Ipv4Net>().ok()?.trunc();
            let via = n.node_ip.trim().parse::<Ipv4Addr>().ok()?;
            (pod_cidr != own.cidr && !own.cidr.contains(&via))
                .then_some(NodeRoute { pod_cidr, via })
        })
        .collect();
    routes.sort();
    routes.dedup_by_key(|r| r.pod_cidr);
    routes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::fake::FakeDataplane;

    async fn driver(dir: &std::path::Path) -> (Driver, Arc<FakeDataplane>) {
        let config = Config::from_json(&serde_json::json!({
            "podCIDR": "10.7.0.0/24", "nodeName": "me", "stateDir": dir
        }))
        .unwrap();
        let fake = Arc::new(FakeDataplane::default());
        let network = PodNetwork::parse("10.7.0.0/24").unwrap();
        let d = Driver::start(config, network, fake.clone()).await.unwrap();
        (d, fake)
    }

    fn set_up_req(sandbox: &str) -> pb::SetUpRequest {
        pb::SetUpRequest {
            sandbox_id: sandbox.into(),
            netns_path: format!("/run/netns/{sandbox}"),
            pod: None,
            interface_name: String::new(),
        }
    }

    #[tokio::test]
    async fn set_up_is_idempotent_and_tear_down_frees() {
        let dir = tempfile::tempdir().unwrap();
        let (d, fake) = driver(dir.path()).await;
        assert_eq!(
            fake.snapshot()
                .bridges
                .get("kerno0")
                .map(ToString::to_string),
            Some("10.7.0.1/24".into())
        );
        let a = d.set_up(set_up_req("a")).await.unwrap();
        assert_eq!(a.ips, ["10.7.0.2"]);
        assert_eq!(
            (a.gateway.as_str(), a.interface_name.as_str()),
            ("10.7.0.1", "eth0")
        );
        assert_eq!(d.set_up(set_up_req("a")).await.unwrap(), a);
        let link = fake.snapshot().pods[&dataplane::host_veth_name("a")].clone();
        assert_eq!(link.address.to_string(), "10.7.0.2/24");
        assert!(link.hairpin);
        d.tear_down(pb::TearDownRequest {
            sandbox_id: "a".into(),
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(fake.snapshot().pods.is_empty());
        assert!(matches!(d.status("a"), Err(DriverError::NotFound(_))));
    }

    #[tokio::test]
    async fn refuses_empty_ids_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let (d, _) = driver(dir.path()).await;
        let mut req = set_up_req("");
        assert!(matches!(
            d.set_up(req.clone()).await,
            Err(DriverError::InvalidArgument(_))
        ));
        req.sandbox_id = "x".into();
        req.netns_path.clear();
        assert!(matches!(
            d.set_up(req).await,
            Err(DriverError::InvalidArgument(_))
        ));
    }

    #[test]
    fn routes_skip_this_node_and_non_ipv4() {
        let own = PodNetwork::parse("10.7.0.0/24").unwrap();
        let node = |name: &str, cidr: &str, ip: &str| pb::NodeRoute {
            node_name: name.into(),
            pod_cidr: cidr.into(),
            node_ip: ip.into(),
        };
        let routes = routes_to_other_nodes(
            &[
                node("me", "10.7.0.0/24", "192.168.0.1"),
                node("other-same-cidr", "10.7.0.0/24", "192.168.0.9"),
                node("b", "10.7.1.0/24", "192.168.0.2"),
                node("v6", "fd00::/64", "fd00::1"),
                node("no-ip", "10.7.2.0/24", ""),
            ],
            Some("me"),
            own,
        );
        assert_eq!(
            routes,
            [NodeRoute {
                pod_cidr: "10.7.1.0/24".parse().unwrap(),
                via: Ipv4Addr::new(192, 168, 0, 2),
            }]
        );
    }
}
