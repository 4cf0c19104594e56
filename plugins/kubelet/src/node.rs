//! The Node object: registration (capacity, addresses, podCIDR, labels) and
//! periodic status (conditions, node info, daemon endpoints).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kerno_sdk::{Api, KernelClient, Patch, PatchParams, PostParams};

use crate::config::KubeletConfig;
use crate::machine;
use crate::time;

/// The Kubernetes version the kubelet reports.
pub const KUBELET_VERSION: &str = "v1.33.0";

/// What the node reports about itself.
#[derive(Clone, Debug)]
pub struct NodeFacts {
    /// CPUs.
    pub cpus: u32,
    /// Memory in bytes.
    pub memory_bytes: i64,
    /// Host name.
    pub hostname: String,
    /// The node's IP.
    pub node_ip: String,
    /// `containerd://1.6.20`-like runtime version; empty while the runtime
    /// does not answer (the node is then NotReady, as in Kubernetes).
    pub container_runtime: String,
    /// The port of the kubelet's server.
    pub kubelet_port: u16,
}

fn quantities(cfg: &KubeletConfig, facts: &NodeFacts) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_owned(), Quantity(facts.cpus.to_string())),
        (
            "memory".to_owned(),
            Quantity(format!("{}Ki", facts.memory_bytes / 1024)),
        ),
        ("pods".to_owned(), Quantity(cfg.max_pods().to_string())),
        ("ephemeral-storage".to_owned(), Quantity("0".to_owned())),
    ])
}

/// The node's status now.
pub fn node_status(
    cfg: &KubeletConfig,
    facts: &NodeFacts,
    previous: Option<&NodeStatus>,
) -> NodeStatus {
    let now = time::now();
    let cond = |type_: &str, ok_status: &str, reason: &str, message: &str| {
        let since = previous
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
            .filter(|c| c.status == ok_status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        NodeCondition {
            type_: type_.to_owned(),
            status: ok_status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(since),
        }
    };
    NodeStatus {
        capacity: Some(quantities(cfg, facts)),
        allocatable: Some(quantities(cfg, facts)),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".to_owned(),
                address: facts.node_ip.clone(),
            },
            NodeAddress {
                type_: "Hostname".to_owned(),
                address: facts.hostname.clone(),
            },
        ]),
        conditions: Some(vec![
            cond(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            cond(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            cond(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            if facts.container_runtime.is_empty() {
                cond(
                    "Ready",
                    "False",
                    "KubeletNotReady",
                    "container runtime is down",
                )
            } else {
                cond(
                    "Ready",
                    "True",
                    "KubeletReady",
                    "kubelet is posting ready status",
                )
            },
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: i32::from(facts.kubelet_port),
            }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64"),
            operating_system: "linux".to_owned(),
            container_runtime_version: facts.container_runtime.clone(),
            kubelet_version: KUBELET_VERSION.to_owned(),
            kube_proxy_version: String::new(),
            kernel_version: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            os_image: "kerno".to_owned(),
            machine_id: std::fs::read_to_string("/etc/machine-id")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            system_uuid: String::new(),
            boot_id: std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            swap: None,
        }),
        ..NodeStatus::default()
    }
}

/// The Node object to create.
pub fn node_object(cfg: &KubeletConfig, facts: &NodeFacts) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(cfg.node_name.clone()),
            labels: Some(node_labels(cfg)),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: cfg.pod_cidr.clone(),
            pod_cidrs: cfg.pod_cidr.clone().map(|c| vec![c]),
            ..NodeSpec::default()
        }),
        status: Some(node_status(cfg, facts, None)),
    }
}

fn node_labels(cfg: &KubeletConfig) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), cfg.node_name.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
        (
            "kubernetes.io/arch".to_owned(),
            std::env::consts::ARCH
                .replace("x86_64", "amd64")
                .replace("aarch64", "arm64"),
        ),
    ])
}

/// Creates the Node or brings an existing one's labels and podCIDR up to date,
/// then writes its status.
pub async fn register(
    client: &KernelClient,
    cfg: &KubeletConfig,
    facts: &NodeFacts,
) -> Result<(), kerno_sdk::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let desired = node_object(cfg, facts);
    let pp = PatchParams {
        field_manager: Some("kubelet".to_owned()),
        ..PatchParams::default()
    };
    match nodes.create(&PostParams::default(), &desired).await {
        Ok(_) => {}
        Err(kerno_sdk::Error::AlreadyExists(_)) => {
            let mut patch = serde_json::json!({ "metadata": { "labels": node_labels(cfg) } });
            if let Some(cidr) = &cfg.pod_cidr {
                let current = nodes.get(&cfg.node_name).await?;
                // podCIDR is immutable once set; only fill it in.
                if current
                    .spec
                    .as_ref()
                    .and_then(|s| s.pod_cidr.as_ref())
                    .is_none()
                {
                    patch["spec"] = serde_json::json!({ "podCIDR": cidr, "podCIDRs": [cidr] });
                }
            }
            nodes
                .patch(&cfg.node_name, &pp, &Patch::Merge(patch))
                .await?;
        }
        Err(e) => return Err(e),
    }
    update_status(client, cfg, facts).await
}

/// Writes the node's status (heartbeat of the conditions).
pub async fn update_status(
    client: &KernelClient,
    cfg: &KubeletConfig,
    facts: &NodeFacts,
) -> Result<(), kerno_sdk::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let previous = nodes.get_opt(&cfg.node_name).await?.and_then(|n| n.status);
    let status = node_status(cfg, facts, previous.as_ref());
    let pp = PatchParams {
        field_manager: Some("kubelet".to_owned()),
        ..PatchParams::default()
    };
    nodes
        .patch_status(
            &cfg.node_name,
            &pp,
            &Patch::Merge(serde_json::json!({ "status": status })),
        )
        .await?;
    Ok(())
}

/// Facts read from the machine plus what the caller knows.
pub fn machine_facts(
    cfg: &KubeletConfig,
    container_runtime: String,
    kubelet_port: u16,
) -> NodeFacts {
    NodeFacts {
        cpus: machine::cpu_count(),
        memory_bytes: machine::memory_bytes(),
        hostname: machine::hostname(),
        node_ip: cfg.node_ip.clone().unwrap_or_else(machine::node_ip),
        container_runtime,
        kubelet_port,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_reports_capacity_addresses_conditions_and_info() {
        let cfg: KubeletConfig = serde_json::from_value(serde_json::json!({
            "nodeName": "n1", "runtimeEndpoint": "unix:///r", "networkEndpoint": "unix:///n",
            "rootDir": "/tmp/x", "podCIDR": "10.244.1.0/24", "maxPods": 50
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let facts = NodeFacts {
            cpus: 2,
            memory_bytes: 4 << 30,
            hostname: "host".into(),
            node_ip: "10.0.0.5".into(),
            container_runtime: "containerd://1.6.20".into(),
            kubelet_port: 10250,
        };
        let node = node_object(&cfg, &facts);
        let facts = &facts;
        assert_eq!(
            node.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()),
            Some("10.244.1.0/24")
        );
        let status = node.status.unwrap_or_default();
        let cap = status.capacity.unwrap_or_default();
        assert_eq!(cap["cpu"].0, "2");
        assert_eq!(cap["memory"].0, "4194304Ki");
        assert_eq!(cap["pods"].0, "50");
        let addrs = status.addresses.unwrap_or_default();
        assert_eq!(addrs[0].type_, "InternalIP");
        assert_eq!(addrs[0].address, "10.0.0.5");
        let conds = status.conditions.unwrap_or_default();
        let ready = conds
            .iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.as_str());
        assert_eq!(ready, Some("True"));
        assert_eq!(conds.len(), 4);
        let info = status.node_info.unwrap_or_default();
        assert!(info.kubelet_version.starts_with("v1.33."));
        assert_eq!(info.container_runtime_version, "containerd://1.6.20");
        let down = NodeFacts {
            container_runtime: String::new(),
            ..facts.clone()
        };
        let status = node_status(&cfg, &down, None);
        let ready = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready");
        assert_eq!(ready.map(|c| c.status), Some("False".to_owned()));
        assert_eq!(
            status
                .daemon_endpoints
                .and_then(|d| d.kubelet_endpoint)
                .map(|e| e.port),
            Some(10250)
        );
    }
}
