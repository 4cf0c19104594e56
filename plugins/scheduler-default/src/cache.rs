//! The scheduler's view of the cluster: nodes with the pods on them (bound
//! and assumed), kept up to date incrementally from the informers.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::labels::Labels;
use crate::resources::{Resources, pod_requests};

/// `namespace/name` of a pod.
pub type PodKey = String;

/// The key of `pod`.
pub fn pod_key(pod: &Pod) -> PodKey {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// The node a pod is bound to, if any.
pub fn node_of(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// The uid of the pod's controlling owner, for spreading.
pub fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// A pod on a node.
#[derive(Clone, Debug)]
pub struct PodInfo {
    /// The pod.
    pub pod: Arc<Pod>,
    /// Its requests.
    pub requests: Resources,
    /// Whether it is assumed (binding in flight), not yet seen bound.
    pub assumed: bool,
}

/// One node and what runs on it.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// The Node, once seen (pods may be seen before their node).
    pub node: Option<Arc<Node>>,
    /// The node's labels.
    pub labels: Labels,
    /// What the node offers.
    pub allocatable: Resources,
    /// The sum of its pods' requests.
    pub requested: Resources,
    /// Its pods by key.
    pub pods: HashMap<PodKey, PodInfo>,
    /// How many of its pods each controller (by uid) owns.
    pub owner_counts: HashMap<String, i64>,
}

impl NodeInfo {
    /// An empty node named `name`.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Sets the Node object.
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        self.allocatable = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(Resources::from_list)
            .unwrap_or_default();
        self.node = Some(node);
    }

    /// Adds (or replaces) a pod.
    pub fn add_pod(&mut self, pod: Arc<Pod>, assumed: bool) {
        let key = pod_key(&pod);
        self.remove_pod(&key);
        let requests = pod_requests(&pod);
        self.requested.add(&requests);
        if let Some(uid) = controller_uid(&pod) {
            *self.owner_counts.entry(uid.to_owned()).or_insert(0) += 1;
        }
        self.pods.insert(
            key,
            PodInfo {
                pod,
                requests,
                assumed,
            },
        );
    }

    /// Removes a pod; returns it if it was there.
    pub fn remove_pod(&mut self, key: &str) -> Option<PodInfo> {
        let info = self.pods.remove(key)?;
        self.requested.sub(&info.requests);
        if let Some(uid) = controller_uid(&info.pod)
            && let Some(n) = self.owner_counts.get_mut(uid)
        {
            *n -= 1;
            if *n <= 0 {
                self.owner_counts.remove(uid);
            }
        }
        Some(info)
    }
}

/// All nodes, and where each pod is.
#[derive(Debug, Default)]
pub struct Cache {
    /// Nodes by name.
    pub nodes: HashMap<String, NodeInfo>,
    /// Node names in a stable order, for round-robin search.
    pub order: Vec<String>,
    pod_node: HashMap<PodKey, String>,
}

impl Cache {
    /// Adds or updates a node.
    pub fn upsert_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let info = self.nodes.entry(name.clone()).or_insert_with(|| {
            self.order.push(name.clone());
            NodeInfo::named(&name)
        });
        info.set_node(node);
    }

    /// Removes a node (its pods stay accounted until they go).
    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            info.node = None;
            if info.pods.is_empty() {
                self.nodes.remove(name);
                self.order.retain(|n| n != name);
            }
        }
    }

    /// Records a pod seen bound (or changed) by the informer; terminated
    /// pods free their node.
    pub fn update_pod(&mut self, pod: Arc<Pod>) {
        let key = pod_key(&pod);
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let Some(node) = node_of(&pod).map(str::to_owned) else {
            // Unbound: not on any node, unless we assumed it.
            if !self.is_assumed(&key) {
                self.remove_pod(&key);
            }
            return;
        };
        if matches!(phase, Some("Succeeded" | "Failed")) {
            self.remove_pod(&key);
            return;
        }
        if let Some(old) = self.pod_node.get(&key)
            && *old != node
        {
            let old = old.clone();
            self.remove_from(&old, &key);
        }
        let info = self.nodes.entry(node.clone()).or_insert_with(|| {
            self.order.push(node.clone());
            NodeInfo::named(&node)
        });
        info.add_pod(pod, false);
        self.pod_node.insert(key, node);
    }

    /// Forgets a pod (deleted).
    pub fn remove_pod(&mut self, key: &str) {
        if let Some(node) = self.pod_node.remove(key) {
            self.remove_from(&node, key);
        }
    }

    fn remove_from(&mut self, node: &str, key: &str) {
        if let Some(info) = self.nodes.get_mut(node) {
            info.remove_pod(key);
            if info.node.is_none() && info.pods.is_empty() {
                self.nodes.remove(node);
                self.order.retain(|n| n != node);
            }
        }
    }

    /// Whether `key` is assumed (binding in flight).
    pub fn is_assumed(&self, key: &str) -> bool {
        self.pod_node
            .get(key)
            .and_then(|n| self.nodes.get(n))
            .and_then(|i| i.pods.get(key))
            .is_some_and(|p| p.assumed)
    }

    /// Places `pod` on `node` before the binding is confirmed, so the next
    /// pods see its resources taken.
    pub fn assume(&mut self, pod: Arc<Pod>, node: &str) {
        let key = pod_key(&pod);
        self.remove_pod(&key);
        if let Some(info) = self.nodes.get_mut(node) {
            info.add_pod(pod, true);
            self.pod_node.insert(key, node.to_owned());
        }
    }

    /// Undoes [`Cache::assume`] after a failed binding.
    pub fn forget(&mut self, key: &str) {
        if self.is_assumed(key) {
            self.remove_pod(key);
        }
    }

    /// Every pod in the cluster with its node.
    pub fn all_pods(&self) -> impl Iterator<Item = (&NodeInfo, &PodInfo)> {
        self.nodes
            .values()
            .flat_map(|n| n.pods.values().map(move |p| (n, p)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, NodeSpec, NodeStatus, PodSpec, ResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    /// A node with `cpu` and `memory` allocatable and `labels`.
    pub fn node(name: &str, cpu: &str, memory: &str, labels: &[(&str, &str)]) -> Arc<Node> {
        let list = BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.into())),
            ("memory".to_owned(), Quantity(memory.into())),
            ("pods".to_owned(), Quantity("110".into())),
        ]);
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(list.clone()),
                capacity: Some(list),
                ..NodeStatus::default()
            }),
        })
    }

    /// A pod requesting `cpu`, labelled, optionally bound to `node`.
    pub fn pod(name: &str, cpu: &str, labels: &[(&str, &str)], node: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(str::to_owned),
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some(BTreeMap::from([("cpu".to_owned(), Quantity(cpu.into()))])),
                        ..ResourceRequirements::default()
                    }),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn assume_then_forget_restores_the_node() {
        let mut cache = Cache::default();
        cache.upsert_node(node("n1", "2", "4Gi", &[]));
        cache.assume(Arc::new(pod("p", "500m", &[], None)), "n1");
        assert_eq!(cache.nodes["n1"].requested.milli_cpu, 500);
        assert!(cache.is_assumed("default/p"));
        cache.forget("default/p");
        assert_eq!(cache.nodes["n1"].requested.milli_cpu, 0);
    }

    #[test]
    fn bound_pod_confirms_an_assumed_one_and_deletion_frees() {
        let mut cache = Cache::default();
        cache.upsert_node(node("n1", "2", "4Gi", &[]));
        cache.assume(Arc::new(pod("p", "1", &[], None)), "n1");
        cache.update_pod(Arc::new(pod("p", "1", &[], Some("n1"))));
        assert!(!cache.is_assumed("default/p"));
        assert_eq!(cache.nodes["n1"].requested.milli_cpu, 1000);
        cache.remove_pod("default/p");
        assert_eq!(cache.nodes["n1"].requested.milli_cpu, 0);
    }
}
