//! The kubelet's config section (`KERNO_PLUGIN_CONFIG`).

use std::path::PathBuf;

use serde::Deserialize;

/// How one kubelet is set up; field names are the JSON keys in camelCase.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletConfig {
    /// The Node's name.
    pub node_name: String,
    /// The runtime driver, `unix:///path/to.sock`; when unset, the
    /// `cri-containerd` socket the supervisor's drivers serve on.
    #[serde(default)]
    pub runtime_endpoint: String,
    /// The network driver, `unix:///path/to.sock`; when unset, the
    /// `cni-bridge` socket the supervisor's drivers serve on.
    #[serde(default)]
    pub network_endpoint: String,
    /// The node's pod CIDR, written to `spec.podCIDR` when set.
    #[serde(default, rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    /// Per-node state: pod directories, volumes, logs.
    pub root_dir: PathBuf,
    /// The node's address; found from the host's interfaces when unset.
    #[serde(default, rename = "nodeIP")]
    pub node_ip: Option<String>,
    /// Pod capacity; 110 like Kubernetes when unset.
    #[serde(default)]
    pub max_pods: Option<u32>,
    /// Nameserver written into pods' resolv.conf (dnsPolicy ClusterFirst).
    #[serde(default, rename = "clusterDNS")]
    pub cluster_dns: Option<String>,
    /// The cluster's DNS domain; `cluster.local` when unset.
    #[serde(default)]
    pub cluster_domain: Option<String>,
    /// Port of the kubelet's HTTP server (logs); 10250 when unset, 0 picks a free one.
    #[serde(default)]
    pub kubelet_port: Option<u16>,
}

impl KubeletConfig {
    /// Reads the config from the plugin's JSON section.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(value.clone())
    }

    /// Fills unset driver endpoints with the sockets the shipped drivers
    /// create in the supervisor's socket directory, so a `kerno up` config
    /// needs no paths; without a directory they must be given.
    pub fn with_default_endpoints(
        mut self,
        socket_dir: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        for (endpoint, driver, key) in [
            (
                &mut self.runtime_endpoint,
                "cri-containerd",
                "runtimeEndpoint",
            ),
            (&mut self.network_endpoint, "cni-bridge", "networkEndpoint"),
        ] {
            if endpoint.is_empty() {
                let dir = socket_dir.ok_or_else(|| {
                    format!("{key} is not set and the kubelet runs outside kerno's supervisor")
                })?;
                *endpoint = format!("unix://{}", dir.join(format!("{driver}.sock")).display());
            }
        }
        Ok(self)
    }

    /// The cluster domain with its default.
    pub fn cluster_domain(&self) -> &str {
        self.cluster_domain.as_deref().unwrap_or("cluster.local")
    }

    /// Pod capacity with its default.
    pub fn max_pods(&self) -> u32 {
        self.max_pods.unwrap_or(110)
    }

    /// Directory of one pod's state.
    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.root_dir.join("pods").join(uid)
    }
}

/// Strips `unix://` from an endpoint, leaving the socket path.
pub fn unix_socket_path(endpoint: &str) -> Option<PathBuf> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    path.starts_with('/').then(|| PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_endpoints_default_to_the_supervisors_sockets() {
        let json = serde_json::json!({"nodeName": "n", "rootDir": "/var/lib/k"});
        let cfg = KubeletConfig::from_json(&json).unwrap();
        let err = cfg.clone().with_default_endpoints(None).unwrap_err();
        assert!(err.contains("runtimeEndpoint"), "{err}");
        let cfg = cfg
            .with_default_endpoints(Some(std::path::Path::new("/d/plugins/sockets")))
            .unwrap();
        assert_eq!(
            cfg.runtime_endpoint,
            "unix:///d/plugins/sockets/cri-containerd.sock"
        );
        assert_eq!(
            cfg.network_endpoint,
            "unix:///d/plugins/sockets/cni-bridge.sock"
        );
        let given = serde_json::json!({"nodeName": "n", "rootDir": "/r", "runtimeEndpoint": "unix:///x.sock", "networkEndpoint": "unix:///y.sock"});
        let cfg = KubeletConfig::from_json(&given)
            .unwrap()
            .with_default_endpoints(None)
            .unwrap();
        assert_eq!(
            (cfg.runtime_endpoint.as_str(), cfg.network_endpoint.as_str()),
            ("unix:///x.sock", "unix:///y.sock")
        );
    }

    #[test]
    fn config_reads_camel_case_and_defaults() {
        let json = serde_json::json!({
            "nodeName": "n1", "runtimeEndpoint": "unix:///run/r.sock",
            "networkEndpoint": "unix:///run/n.sock", "rootDir": "/var/lib/k",
            "clusterDNS": "10.96.0.10", "podCIDR": "10.244.1.0/24"
        });
        let Ok(cfg) = KubeletConfig::from_json(&json) else {
            panic!("valid config");
        };
        assert_eq!(cfg.node_name, "n1");
        assert_eq!(cfg.max_pods(), 110);
        assert_eq!(cfg.cluster_dns.as_deref(), Some("10.96.0.10"));
        assert_eq!(cfg.pod_cidr.as_deref(), Some("10.244.1.0/24"));
        assert_eq!(cfg.cluster_domain(), "cluster.local");
        assert_eq!(
            unix_socket_path(&cfg.runtime_endpoint),
            Some(PathBuf::from("/run/r.sock"))
        );
        assert_eq!(unix_socket_path("tcp://x"), None);
    }
}
