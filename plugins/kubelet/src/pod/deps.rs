//! What every pod worker shares: config, driver clients, the cluster, tuning.

use std::collections::HashMap;
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

/// Current runtime container ids by `namespace/pod/container`, for the log server.
#[derive(Clone, Debug, Default)]
pub struct ContainerIndex(Arc<RwLock<HashMap<String, String>>>);

impl ContainerIndex {
    fn key(namespace: &str, pod: &str, container: &str) -> String {
        format!("{namespace}/{pod}/{container}")
    }

    /// Records the current instance of a container.
    pub fn set(&self, namespace: &str, pod: &str, container: &str, id: &str) {
        if let Ok(mut map) = self.0.write() {
            map.insert(Self::key(namespace, pod, container), id.to_owned());
        }
    }

    /// The current instance of a container.
    pub fn get(&self, namespace: &str, pod: &str, container: &str) -> Option<String> {
        self.0
            .read()
            .ok()?
            .get(&Self::key(namespace, pod, container))
            .cloned()
    }

    /// Forgets a pod's containers.
    pub fn remove_pod(&self, namespace: &str, pod: &str) {
        let prefix = format!("{namespace}/{pod}/");
        if let Ok(mut map) = self.0.write() {
            map.retain(|k, _| !k.starts_with(&prefix));
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
