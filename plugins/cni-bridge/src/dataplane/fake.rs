//! An in-memory [`Dataplane`] that records what it was asked, for unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use ipnet::Ipv4Net;

use super::{Dataplane, DataplaneError, NodeRoute, PodLink};

/// What the fake datapath holds.
#[derive(Debug, Default, Clone)]
pub struct FakeState {
    /// Bridges by name with their address.
    pub bridges: BTreeMap<String, Ipv4Net>,
    /// Wired pods by host veth name.
    pub pods: BTreeMap<String, PodLink>,
    /// Installed node routes.
    pub routes: BTreeSet<NodeRoute>,
    /// How many times a pod was (re)wired.
    pub attach_calls: usize,
}

/// A datapath in memory.
#[derive(Debug, Default)]
pub struct FakeDataplane {
    /// The current state.
    pub state: Mutex<FakeState>,
}

impl FakeDataplane {
    /// A copy of the current state.
    pub fn snapshot(&self) -> FakeState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Dataplane for FakeDataplane {
    async fn ensure_bridge(
        &self,
        bridge: &str,
        gateway: Ipv4Net,
        _mtu: Option<u32>,
    ) -> Result<(), DataplaneError> {
        if let Ok(mut s) = self.state.lock() {
            s.bridges.insert(bridge.to_owned(), gateway);
        }
        Ok(())
    }

    async fn attach_pod(&self, link: &PodLink) -> Result<(), DataplaneError> {
        if let Ok(mut s) = self.state.lock() {
            if !s.bridges.contains_key(&link.bridge) {
                return Err(DataplaneError::LinkNotFound(link.bridge.clone()));
            }
            s.attach_calls += 1;
            s.pods.insert(link.host_veth.clone(), link.clone());
        }
        Ok(())
    }

    async fn detach_pod(&self, host_veth: &str) -> Result<(), DataplaneError> {
        if let Ok(mut s) = self.state.lock() {
            s.pods.remove(host_veth);
        }
        Ok(())
    }

    async fn sync_routes(&self, routes: &[NodeRoute]) -> Result<(), DataplaneError> {
        if let Ok(mut s) = self.state.lock() {
            s.routes = routes.iter().copied().collect();
        }
        Ok(())
    }
}
