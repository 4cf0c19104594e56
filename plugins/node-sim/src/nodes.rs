//! Node objects and their heartbeats (Leases in `kube-node-lease`).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, stream};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kerno_sdk::informer::Store;
use kerno_sdk::{Api, Error, KernelClient, ObjectKey, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::config::SimConfig;

/// The namespace of node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Setting this annotation to `stopped` on a Node stops its heartbeat.
pub const HEARTBEAT_ANNOTATION: &str = "kerno.dev/sim-heartbeat";
const FIELD_MANAGER: &str = "kerno-node-sim";

/// The Node object for node `i`.
pub fn desired_node(config: &SimConfig, i: usize) -> Node {
    let name = config.node_name(i);
    let mut labels = config.labels.clone();
    labels.insert("kubernetes.io/hostname".into(), name.clone());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    labels.insert("kubernetes.io/arch".into(), "amd64".into());
    labels.insert("type".into(), "kerno-sim".into());
    if config.zones > 0 {
        labels.insert(
            "topology.kubernetes.io/zone".into(),
            format!("zone-{}", i % config.zones),
        );
    }
    let cidr = config.pod_cidr(i);
    Node {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: Some(cidr.clone()),
            pod_cidrs: Some(vec![cidr]),
            taints: (!config.taints.is_empty()).then(|| config.taints.clone()),
            ..NodeSpec::default()
        }),
        status: Some(node_status(config, i)),
    }
}

/// A Ready status with the configured capacity.
pub fn node_status(config: &SimConfig, i: usize) -> NodeStatus {
    let mut capacity = BTreeMap::from([
        ("cpu".to_owned(), Quantity(config.cpu.clone())),
        ("memory".to_owned(), Quantity(config.memory.clone())),
        ("pods".to_owned(), Quantity(config.pods.to_string())),
        ("ephemeral-storage".to_owned(), Quantity("100Gi".into())),
    ]);
    for (k, v) in &config.extended {
        capacity.insert(k.clone(), Quantity(v.clone()));
    }
    let now = Time(kerno_sdk::events::now());
    let condition = |type_: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(now.clone()),
        last_transition_time: Some(now.clone()),
    };
    NodeStatus {
        allocatable: Some(capacity.clone()),
        capacity: Some(capacity),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: config.node_ip(i),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: config.node_name(i),
            },
        ]),
        conditions: Some(vec![
            condition(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status (simulated)",
            ),
            condition(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            container_runtime_version: "kerno-sim://0.1.0".into(),
            kernel_version: "sim".into(),
            kube_proxy_version: String::new(),
            kubelet_version: "v1.33.0-kerno-sim".into(),
            operating_system: "linux".into(),
            os_image: "kerno simulated node".into(),
            machine_id: format!("sim-{i}"),
            system_uuid: format!("sim-{i}"),
            boot_id: format!("sim-{i}"),
            ..NodeSystemInfo::default()
        }),
        ..NodeStatus::default()
    }
}

/// Creates every Node (with Ready status) that does not exist yet; existing
/// Nodes get a fresh Ready status. The lease namespace is the kernel's: it
/// exists from the first start (and this plugin's role may not create
/// namespaces).
pub async fn register_nodes(client: &KernelClient, config: &SimConfig) -> Result<(), Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let results: Vec<Result<(), Error>> = stream::iter(0..config.nodes)
        .map(|i| {
            let nodes = nodes.clone();
            async move { register_node(&nodes, config, i).await }
        })
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

async fn register_node(nodes: &Api<Node>, config: &SimConfig, i: usize) -> Result<(), Error> {
    let node = desired_node(config, i);
    let name = config.node_name(i);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    match nodes.create(&pp, &node).await {
        Ok(_) | Err(Error::AlreadyExists(_)) => {}
        Err(e) => return Err(e),
    }
    // Status is written separately: a create may drop it, as for any type
    // with a status subresource.
    let status = json!({ "status": node.status });
    nodes
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// Whether the node's heartbeat was stopped through its annotation.
pub fn heartbeat_stopped(node: Option<&Node>) -> bool {
    node.and_then(|n| n.metadata.annotations.as_ref())
        .and_then(|a| a.get(HEARTBEAT_ANNOTATION))
        .is_some_and(|v| v == "stopped")
}

/// Renews every node's Lease each `lease_seconds`, in batches of
/// `concurrency` calls, until dropped. Nodes whose heartbeat is stopped are
/// skipped.
pub async fn renew_leases(client: KernelClient, config: SimConfig, nodes: Store<Node>) {
    let leases: Api<Lease> = Api::namespaced(client, LEASE_NAMESPACE);
    let period = Duration::from_secs(config.lease_seconds.max(1));
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let started = std::time::Instant::now();
        let failures = stream::iter(0..config.nodes)
            .filter_map(|i| {
                let name = config.node_name(i);
                let node = nodes.get(&ObjectKey::new(None, &name));
                let stopped = heartbeat_stopped(node.as_deref());
                async move { (!stopped).then_some(name) }
            })
            .map(|name| {
                let leases = leases.clone();
                let duration = i32::try_from(config.lease_seconds * 4).unwrap_or(40);
                async move { renew_lease(&leases, &name, duration).await.is_err() }
            })
            .buffer_unordered(config.concurrency.max(1))
            .filter(|failed| futures::future::ready(*failed))
            .count()
            .await;
        if failures > 0 {
            tracing::warn!(
                failures,
                "some node leases were not renewed (see debug logs)"
            );
        }
        tracing::debug!(elapsed = ?started.elapsed(), "renewed node leases");
    }
}

async fn renew_lease(leases: &Api<Lease>, node: &str, duration: i32) -> Result<(), Error> {
    let now = MicroTime(kerno_sdk::events::now());
    let patch = json!({ "spec": { "holderIdentity": node, "renewTime": now, "leaseDurationSeconds": duration } });
    match leases
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(Error::NotFound(_)) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node.to_owned()),
                    namespace: Some(LEASE_NAMESPACE.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(node.to_owned()),
                    lease_duration_seconds: Some(duration),
                    renew_time: Some(now),
                    ..LeaseSpec::default()
                }),
            };
            match leases.create(&PostParams::default(), &lease).await {
                Ok(_) | Err(Error::AlreadyExists(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        other => other.map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_has_capacity_labels_and_ready() {
        let config = SimConfig {
            zones: 3,
            ..SimConfig::default()
        };
        let node = desired_node(&config, 4);
        let labels = node.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get("topology.kubernetes.io/zone")
                .map(String::as_str),
            Some("zone-1")
        );
        assert_eq!(
            labels.get("kubernetes.io/hostname").map(String::as_str),
            Some("sim-node-4")
        );
        let status = node.status.unwrap_or_default();
        let alloc = status.allocatable.unwrap_or_default();
        assert_eq!(alloc.get("pods"), Some(&Quantity("110".into())));
        let ready = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready");
        assert_eq!(ready.map(|c| c.status).as_deref(), Some("True"));
    }

    #[test]
    fn annotation_stops_heartbeat() {
        let mut node = desired_node(&SimConfig::default(), 0);
        assert!(!heartbeat_stopped(Some(&node)));
        node.metadata.annotations = Some(BTreeMap::from([(
            HEARTBEAT_ANNOTATION.to_owned(),
            "stopped".to_owned(),
        )]));
        assert!(heartbeat_stopped(Some(&node)));
    }
}
