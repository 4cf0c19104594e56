//! What every pod worker shares: config, driver clients, the cluster, tuning.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::cluster::Cluster;
use crate::config::KubeletConfig;
use crate::drivers::{NetworkClient, RuntimeClient};

/// Timing knobs (Kubernetes' values by default; tests shorten them).
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// First restart back-off (10 s).
    pub backoff_initial: Duration,
    /// Back-off cap (5 min).
    pub backoff_max: Duration,
    /// How often a worker re-reads its containers' states (1 s, like PLEG).
    pub resync: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            backoff_initial: Duration::from_secs(10),
            backoff_max: Duration::from_secs(300),
            resync: Duration::from_secs(1),
        }
    }
}

/// Current runtime container ids by `namespace/pod/container`, and pods'
/// network namespaces by `namespace/pod`, for the log, exec and port-forward
/// server.
#[derive(Clone, Debug, Default)]
pub struct ContainerIndex(Arc<RwLock<IndexMaps>>);

/// Where a pod's network lives.
#[derive(Clone, Debug, PartialEq)]
pub enum PodNetwork {
    /// `hostNetwork: true`: the node's own.
    Host,
    /// Its own network namespace, at this path.
    Namespace(PathBuf),
}

#[derive(Debug, Default)]
struct IndexMaps {
    containers: HashMap<String, String>,
    pod_networks: HashMap<String, PodNetwork>,
}

impl ContainerIndex {
    fn key(namespace: &str, pod: &str, container: &str) -> String {
        format!("{namespace}/{pod}/{container}")
    }

    /// Records the current instance of a container.
    pub fn set(&self, namespace: &str, pod: &str, container: &str, id: &str) {
        if let Ok(mut maps) = self.0.write() {
            maps.containers
                .insert(Self::key(namespace, pod, container), id.to_owned());
        }
    }

    /// The current instance of a container.
    pub fn get(&self, namespace: &str, pod: &str, container: &str) -> Option<String> {
        self.0
            .read()
            .ok()?
            .containers
            .get(&Self::key(namespace, pod, container))
            .cloned()
    }

    /// Records where a pod's network is.
    pub fn set_pod_network(&self, namespace: &str, pod: &str, network: PodNetwork) {
        if let Ok(mut maps) = self.0.write() {
            maps.pod_networks
                .insert(format!("{namespace}/{pod}"), network);
        }
    }

    /// Where a pod's network is, while it has one.
    pub fn pod_network(&self, namespace: &str, pod: &str) -> Option<PodNetwork> {
        self.0
            .read()
            .ok()?
            .pod_networks
            .get(&format!("{namespace}/{pod}"))
            .cloned()
    }

    /// Forgets a pod's containers and IP.
    pub fn remove_pod(&self, namespace: &str, pod: &str) {
        let prefix = format!("{namespace}/{pod}/");
        if let Ok(mut maps) = self.0.write() {
            maps.containers.retain(|k, _| !k.starts_with(&prefix));
            maps.pod_networks.remove(&format!("{namespace}/{pod}"));
        }
    }
}

/// Shared by all pod workers of this kubelet.
pub struct Deps {
    /// The kubelet's config.
    pub cfg: KubeletConfig,
    /// The runtime driver.
    pub runtime: RuntimeClient,
    /// The network driver.
    pub network: NetworkClient,
    /// The cluster (kernel).
    pub cluster: Arc<dyn Cluster>,
    /// The node's IP (hostIP of pods).
    pub host_ip: String,
    /// Node CPU in millicores (resourceFieldRef defaults).
    pub node_cpu_millis: i64,
    /// Node memory in bytes.
    pub node_memory_bytes: i64,
    /// Timing knobs.
    pub options: WorkerOptions,
    /// Current container ids, for logs.
    pub index: ContainerIndex,
}
