//! The node's datapath behind a small trait, so the driver's logic is tested
//! without root ([`fake`]) and the netlink implementation ([`netlink`]) is
//! tested against the real kernel in the integration tests.

pub mod fake;
pub mod netlink;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

/// Why a datapath change failed.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// A netlink request failed.
    #[error("netlink: {op}: {source}")]
    Netlink {
        /// What was attempted.
        op: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// A network namespace could not be opened or entered.
    #[error("network namespace {path}: {reason}")]
    Netns {
        /// The namespace's path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A link that should exist does not.
    #[error("link {0} not found")]
    LinkNotFound(String),
    /// A sysctl or other file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Everything needed to wire one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodLink {
    /// The node's bridge.
    pub bridge: String,
    /// Name of the host end of the veth pair (in the node's namespace).
    pub host_veth: String,
    /// The pod's network namespace.
    pub netns_path: PathBuf,
    /// Name of the pod end, inside the pod's namespace.
    pub interface: String,
    /// The pod's address with the pod CIDR's prefix.
    pub address: Ipv4Net,
    /// The bridge's address, the pod's default gateway.
    pub gateway: Ipv4Addr,
    /// MTU of both ends; the kernel default when `None`.
    pub mtu: Option<u32>,
    /// Hairpin mode on the bridge port.
    pub hairpin: bool,
}

/// A route to another node's pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeRoute {
    /// The other node's pod CIDR.
    pub pod_cidr: Ipv4Net,
    /// The other node's address.
    pub via: Ipv4Addr,
}

/// The node's datapath.
#[async_trait::async_trait]
pub trait Dataplane: Send + Sync + 'static {
    /// Creates the bridge if missing, gives it `gateway` and brings it up.
    async fn ensure_bridge(
        &self,
        bridge: &str,
        gateway: Ipv4Net,
        mtu: Option<u32>,
    ) -> Result<(), DataplaneError>;

    /// Wires a pod; succeeds again when it is already wired.
    async fn attach_pod(&self, link: &PodLink) -> Result<(), DataplaneError>;

    /// Removes the pod's veth (both ends); succeeds when it is already gone.
    async fn detach_pod(&self, host_veth: &str) -> Result<(), DataplaneError>;

    /// Makes the routes this driver installed exactly `routes`.
    async fn sync_routes(&self, routes: &[NodeRoute]) -> Result<(), DataplaneError>;
}

/// The host end's name for a sandbox: stable, unique per sandbox in
/// practice, and within the kernel's 15 characters.
pub fn host_veth_name(sandbox_id: &str) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut hash: u32 = 0x811c_9dc5;
    for b in sandbox_id.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("kv{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names_are_stable_and_short() {
        let a = host_veth_name("0123456789abcdef0123456789abcdef");
        assert_eq!(a, host_veth_name("0123456789abcdef0123456789abcdef"));
        assert_ne!(a, host_veth_name("0123456789abcdef0123456789abcdee"));
        assert!(a.len() <= 15, "{a}");
    }
}
