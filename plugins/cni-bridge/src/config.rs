//! The driver's configuration: the plugin's `KERNO_PLUGIN_CONFIG` section.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::Deserialize;

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not have the expected shape.
    #[error("invalid config: {0}")]
    Json(#[from] serde_json::Error),
    /// A pod CIDR that is not an IPv4 network with room for pods.
    #[error("invalid pod cidr {cidr:?}: {reason}")]
    PodCidr {
        /// What was given.
        cidr: String,
        /// Why it is unusable.
        reason: String,
    },
    /// Neither a pod CIDR nor a node to read it from.
    #[error("config needs podCIDR, or nodeName to read the Node's spec.podCIDR from")]
    NoPodCidr,
    /// A bridge name the kernel would refuse.
    #[error("invalid bridge name {0:?}: 1 to 15 characters, no '/' or whitespace")]
    BridgeName(String),
}

/// The driver's configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// Name of the node's bridge.
    #[serde(default = "default_bridge")]
    pub bridge: String,
    /// The node's pod CIDR; read from the Node when absent.
    #[serde(default, rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    /// The Node whose `spec.podCIDR` to use when `podCIDR` is absent; also
    /// the name skipped in SyncRoutes.
    #[serde(default)]
    pub node_name: Option<String>,
    /// Where IPAM allocations are persisted.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// MTU of the bridge and the pods' interfaces; the kernel default when absent.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Hairpin mode on the pods' bridge ports (a pod reaching itself through a service).
    #[serde(default = "yes")]
    pub hairpin: bool,
    /// Turn on IPv4 forwarding in the driver's network namespace (the node's).
    #[serde(default = "yes")]
    pub ip_forward: bool,
    /// Serve the Network service without registering with the kernel: for a
    /// driver in a network namespace that cannot reach the kernel (tests'
    /// nodes), which then needs `podCIDR` in its config.
    #[serde(default)]
    pub standalone: bool,
}

fn default_bridge() -> String {
    "kerno0".into()
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/kerno/cni-bridge")
}

fn yes() -> bool {
    true
}

impl Config {
    /// Reads and checks a config section.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ConfigError> {
        let config: Config = serde_json::from_value(value.clone())?;
        let name = &config.bridge;
        if name.is_empty()
            || name.len() > 15
            || name.contains('/')
            || name.chars().any(char::is_whitespace)
        {
            return Err(ConfigError::BridgeName(name.clone()));
        }
        if config.pod_cidr.is_none() && config.node_name.is_none() {
            return Err(ConfigError::NoPodCidr);
        }
        if config.standalone && config.pod_cidr.is_none() {
            return Err(ConfigError::NoPodCidr);
        }
        if let Some(cidr) = &config.pod_cidr {
            PodNetwork::parse(cidr)?;
        }
        Ok(config)
    }
}

/// The node's pod network: the CIDR and its gateway (the bridge's address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodNetwork {
    /// The pod CIDR, host bits cleared.
    pub cidr: Ipv4Net,
    /// The first host address, held by the bridge.
    pub gateway: Ipv4Addr,
}

impl PodNetwork {
    /// Parses `10.244.0.0/24`; the network must leave room for a gateway and a pod.
    pub fn parse(cidr: &str) -> Result<Self, ConfigError> {
        let bad = |reason: &str| ConfigError::PodCidr {
            cidr: cidr.to_owned(),
            reason: reason.to_owned(),
        };
        let net: Ipv4Net = cidr
            .trim()
            .parse()
            .map_err(|_| bad("not an IPv4 network like 10.244.0.0/24"))?;
        if net.prefix_len() > 30 {
            return Err(bad("the prefix leaves no room for a gateway and pods"));
        }
        let cidr = net.trunc();
        let gateway = Ipv4Addr::from(u32::from(cidr.network()) + 1);
        Ok(Self { cidr, gateway })
    }

    /// The gateway with the CIDR's prefix, as the bridge holds it.
    pub fn gateway_net(&self) -> Ipv4Net {
        // The prefix came from a valid Ipv4Net, so this cannot fail.
        Ipv4Net::new(self.gateway, self.cidr.prefix_len()).unwrap_or(self.cidr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_is_the_first_host() {
        let net = PodNetwork::parse("10.244.3.7/24").unwrap();
        assert_eq!(net.cidr.to_string(), "10.244.3.0/24");
        assert_eq!(net.gateway, Ipv4Addr::new(10, 244, 3, 1));
        assert_eq!(net.gateway_net().to_string(), "10.244.3.1/24");
    }

    #[test]
    fn refuses_bad_cidrs_and_configs() {
        assert!(PodNetwork::parse("10.244.0.0/31").is_err());
        assert!(PodNetwork::parse("fd00::/64").is_err());
        assert!(PodNetwork::parse("nonsense").is_err());
        let err = Config::from_json(&serde_json::json!({"bridge": "kerno0"})).unwrap_err();
        assert!(matches!(err, ConfigError::NoPodCidr), "{err}");
        let err = Config::from_json(&serde_json::json!({"standalone": true, "nodeName": "n1"}))
            .unwrap_err();
        assert!(matches!(err, ConfigError::NoPodCidr), "{err}");
        let err = Config::from_json(&serde_json::json!({
            "bridge": "a-very-long-bridge-name", "podCIDR": "10.0.0.0/24"
        }))
        .unwrap_err();
        assert!(matches!(err, ConfigError::BridgeName(_)), "{err}");
    }

    #[test]
    fn reads_the_documented_fields() {
        let c = Config::from_json(&serde_json::json!({
            "bridge": "br1", "podCIDR": "10.1.0.0/24", "stateDir": "/tmp/x",
            "mtu": 1400, "hairpin": false, "standalone": true
        }))
        .unwrap();
        assert_eq!(c.bridge, "br1");
        assert_eq!(c.pod_cidr.as_deref(), Some("10.1.0.0/24"));
        assert_eq!(c.mtu, Some(1400));
        assert!(!c.hairpin && c.standalone && c.ip_forward);
    }
}
