//! The plugin's config section (`KERNO_PLUGIN_CONFIG`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Taint;
use serde::Deserialize;

/// What nodes to simulate.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SimConfig {
    /// How many nodes.
    pub nodes: usize,
    /// Node names are `<namePrefix><index>`.
    pub name_prefix: String,
    /// CPU capacity of each node (a Kubernetes quantity).
    pub cpu: String,
    /// Memory capacity of each node.
    pub memory: String,
    /// Pod capacity of each node.
    pub pods: u32,
    /// Extra capacity (extended resources), name → quantity.
    pub extended: BTreeMap<String, String>,
    /// Labels on every node (plus `kubernetes.io/hostname`).
    pub labels: BTreeMap<String, String>,
    /// Taints on every node.
    pub taints: Vec<Taint>,
    /// When > 0, node `i` gets `topology.kubernetes.io/zone=zone-<i % zones>`.
    pub zones: usize,
    /// The second octet of the first node's pod CIDR: node `i` gets
    /// `10.<podCidrBase + i / 256>.<i % 256>.0/24`.
    pub pod_cidr_base: u32,
    /// Whether pods bound to these nodes are moved to Running.
    pub run_pods: bool,
    /// Seconds between Lease renewals.
    pub lease_seconds: u64,
    /// How many kernel calls run at once.
    pub concurrency: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 1,
            name_prefix: "sim-node-".into(),
            cpu: "32".into(),
            memory: "256Gi".into(),
            pods: 110,
            extended: BTreeMap::new(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
            zones: 0,
            pod_cidr_base: 64,
            run_pods: true,
            lease_seconds: 10,
            concurrency: 64,
        }
    }
}

impl SimConfig {
    /// The name of node `i`.
    pub fn node_name(&self, i: usize) -> String {
        format!("{}{i}", self.name_prefix)
    }

    /// The pod CIDR of node `i`.
    pub fn pod_cidr(&self, i: usize) -> String {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        format!("10.{}.{}.0/24", self.pod_cidr_base + i / 256, i % 256)
    }

    /// The InternalIP of node `i` (in 172.16.0.0/12).
    pub fn node_ip(&self, i: usize) -> String {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        format!("172.{}.{}.{}", 16 + (i >> 16) % 16, (i >> 8) & 255, i & 255)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_config_keeps_defaults() -> anyhow::Result<()> {
        let c: SimConfig = serde_json::from_value(serde_json::json!({"nodes": 3, "zones": 2}))?;
        assert_eq!(c.nodes, 3);
        assert_eq!(c.pods, 110);
        assert_eq!(c.node_name(2), "sim-node-2");
        Ok(())
    }

    #[test]
    fn addresses_are_distinct_per_node() {
        let c = SimConfig::default();
        assert_eq!(c.pod_cidr(0), "10.64.0.0/24");
        assert_eq!(c.pod_cidr(257), "10.65.1.0/24");
        assert_ne!(c.node_ip(1), c.node_ip(257));
    }
}
