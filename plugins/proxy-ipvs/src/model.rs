//! The proxy's view of the cluster: every Service port with its virtual
//! addresses and ready endpoints, built from Services and EndpointSlices.
//! Datapath-neutral and ordered, so two builds of the same world compare
//! equal and render identically.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label naming a slice's Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A transport protocol a Service port can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// From a Service's `protocol` (default TCP); `None` for unknown ones.
    pub fn parse(protocol: Option<&str>) -> Option<Self> {
        match protocol.unwrap_or("TCP") {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }

    /// The lower-case name nftables uses.
    pub fn nft_name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

/// One Service port: `namespace/name` and port name identify it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServicePortName {
    /// The Service's namespace.
    pub namespace: String,
    /// The Service's name.
    pub name: String,
    /// The port's name (empty for a single unnamed port).
    pub port: String,
    /// Its protocol.
    pub protocol: Protocol,
}

impl std::fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.namespace,
            self.name,
            self.protocol.nft_name(),
            self.port
        )
    }
}

/// A ready backend of a Service port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Backend {
    /// The pod's address.
    pub ip: Ipv4Addr,
    /// The pod's port.
    pub port: u16,
    /// Whether the pod runs on this proxy's node (for `externalTrafficPolicy: Local`).
    pub local: bool,
}

/// Everything the datapath needs to serve one Service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePortState {
    /// The ClusterIP.
    pub cluster_ip: Ipv4Addr,
    /// The Service port.
    pub port: u16,
    /// The NodePort, for NodePort and LoadBalancer services that have one.
    pub node_port: Option<u16>,
    /// `sessionAffinity: ClientIP`: how long a client stays pinned.
    pub affinity_seconds: Option<u32>,
    /// `externalTrafficPolicy: Local`: NodePort traffic only to this node's
    /// endpoints, with the client's address kept.
    pub external_local: bool,
    /// Ready endpoints, ordered.
    pub backends: BTreeSet<Backend>,
}

/// The whole proxied world, ordered by Service port.
pub type ProxyState = BTreeMap<ServicePortName, ServicePortState>;

/// What the proxy is configured to know about its node.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    /// This node's name (endpoints with this `nodeName` are local).
    pub name: Option<String>,
}

/// The default ClientIP affinity timeout (Kubernetes': three hours).
const DEFAULT_AFFINITY_SECONDS: u32 = 10_800;

/// Builds the state from the cached Services and slices. Services without
/// an IPv4 ClusterIP (headless, ExternalName, IPv6) are not proxied.
pub fn build(
    services: &[std::sync::Arc<Service>],
    slices: &[std::sync::Arc<EndpointSlice>],
    node: &NodeInfo,
) -> ProxyState {
    // (namespace, service) → slices.
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let Some(service) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let namespace = slice.metadata.namespace.clone().unwrap_or_default();
        by_service
            .entry((namespace, service.clone()))
            .or_default()
            .push(slice);
    }
    let mut state = ProxyState::new();
    for service in services {
        let Some(spec) = &service.spec else { continue };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .filter(|t| *t > 0)
                .unwrap_or(DEFAULT_AFFINITY_SECONDS)
        });
        let node_ports_wanted = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
        let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
        let service_slices = by_service
            .get(&(namespace.clone(), name.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for port in spec.ports.iter().flatten() {
            let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
                continue;
            };
            let Ok(service_port) = u16::try_from(port.port) else {
                continue;
            };
            let port_name = port.name.clone().unwrap_or_default();
            let node_port = port
                .node_port
                .filter(|_| node_ports_wanted)
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0);
            let backends = backends_of(service_slices, &port_name, protocol, node);
            state.insert(
                ServicePortName {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    port: port_name,
                    protocol,
                },
                ServicePortState {
                    cluster_ip,
                    port: service_port,
                    node_port,
                    affinity_seconds,
                    external_local,
                    backends,
                },
            );
        }
    }
    state
}

/// The ready endpoints of the slices' port named `port_name`.
fn backends_of(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: Protocol,
    node: &NodeInfo,
) -> BTreeSet<Backend> {
    let mut backends = BTreeSet::new();
    for slice in slices {
        let Some(port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(port) = port.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            // An unset `ready` means ready (discovery.k8s.io/v1 semantics).
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !ready {
                continue;
            }
            let local = node.name.is_some() && endpoint.node_name == node.name;
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<Ipv4Addr>() {
                    backends.insert(Backend { ip, port, local });
                }
            }
        }
    }
    backends
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;

    fn service(spec: serde_json::Value) -> Arc<Service> {
        Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec}),
            )
            .expect("service"),
        )
    }

    fn slice(
        service: &str,
        endpoints: serde_json::Value,
        ports: serde_json::Value,
    ) -> Arc<EndpointSlice> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": format!("{service}-x"), "namespace": "default",
                    "labels": {SERVICE_NAME_LABEL: service}},
                "addressType": "IPv4", "endpoints": endpoints, "ports": ports,
            }))
            .expect("slice"),
        )
    }

    #[test]
    fn ready_endpoints_of_the_matching_port_become_backends() {
        let services = [service(
            json!({"clusterIP": "10.96.0.10", "type": "NodePort",
            "sessionAffinity": "ClientIP",
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}, {"name": "dns", "port": 53, "protocol": "UDP"}]}),
        )];
        let slices = [slice(
            "web",
            json!([
                {"addresses": ["10.0.0.2"], "conditions": {"ready": true}, "nodeName": "n1"},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.4"]},
            ]),
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
        )];
        let state = build(
            &services,
            &slices,
            &NodeInfo {
                name: Some("n1".into()),
            },
        );
        assert_eq!(state.len(), 2);
        let http = state
            .iter()
            .find(|(k, _)| k.port == "http")
            .map(|(_, v)| v.clone())
            .expect("http");
        assert_eq!(http.node_port, Some(30080));
        assert_eq!(http.affinity_seconds, Some(10_800));
        let backends: Vec<_> = http
            .backends
            .iter()
            .map(|b| (b.ip.to_string(), b.port, b.local))
            .collect();
        assert_eq!(
            backends,
            [
                ("10.0.0.2".to_owned(), 8080, true),
                ("10.0.0.4".to_owned(), 8080, false)
            ]
        );
        let dns = state
            .iter()
            .find(|(k, _)| k.port == "dns")
            .map(|(_, v)| v)
            .expect("dns");
        assert!(dns.backends.is_empty(), "the slice has no UDP port");
    }

    #[test]
    fn headless_external_name_and_cluster_ip_node_ports_are_skipped() {
        let services = [
            service(json!({"clusterIP": "None", "ports": [{"port": 80}]})),
            service(json!({"type": "ExternalName", "externalName": "x.org"})),
        ];
        assert!(build(&services, &[], &NodeInfo::default()).is_empty());
        let plain = [service(
            json!({"clusterIP": "10.96.0.1", "ports": [{"port": 80, "nodePort": 30001}]}),
        )];
        let state = build(&plain, &[], &NodeInfo::default());
        assert_eq!(
            state.values().next().and_then(|s| s.node_port),
            None,
            "ClusterIP type has no NodePort"
        );
    }
}
