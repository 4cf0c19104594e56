//! What a Service's Endpoints and EndpointSlices should hold, computed from
//! the Service and the pods of its namespace: pure, so it is unit-tested
//! without a kernel.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kerno_controller_common::{controller_ref, is_ready};

/// The label naming a slice's Service (what proxies and DNS select on).
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label naming who manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// Our value of [`MANAGED_BY_LABEL`], the one Kubernetes' controller uses, so
/// tools that look for controller-managed slices find ours.
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Kubernetes' limit of endpoints per slice.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// Whether the controller keeps endpoints for `service`: it has a non-empty
/// selector and is not of type ExternalName. Other services' endpoints are
/// the user's (selector-less) or not wanted (ExternalName).
pub fn is_managed(service: &Service) -> bool {
    let Some(spec) = &service.spec else {
        return false;
    };
    spec.type_.as_deref() != Some("ExternalName")
        && spec.selector.as_ref().is_some_and(|s| !s.is_empty())
}

/// Whether `service` selects `pod` (same namespace, every selector label matches).
pub fn selects(service: &Service, pod: &Pod) -> bool {
    if service.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let labels = pod.metadata.labels.as_ref();
    !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// One resolved port of a pod for one Service port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResolvedPort {
    /// The Service port's name (empty when the service has a single unnamed port).
    pub name: String,
    /// The pod's port number.
    pub port: i32,
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The Service port's appProtocol.
    pub app_protocol: Option<String>,
}

/// The port `service_port` targets on `pod`: a number as is, a name looked
/// up in the pod's container ports (same protocol); `None` when the pod has
/// no port of that name (then the pod is not an endpoint for that port).
pub fn resolve_target_port(service_port: &ServicePort, pod: &Pod) -> Option<i32> {
    let protocol = service_port.protocol.as_deref().unwrap_or("TCP");
    match &service_port.target_port {
        None => Some(service_port.port),
        Some(IntOrString::Int(port)) => Some(*port),
        Some(IntOrString::String(name)) => {
            if let Ok(port) = name.parse::<i32>() {
                return Some(port);
            }
            let spec = pod.spec.as_ref()?;
            spec.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// A pod as an endpoint.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PodEndpoint {
    ip: String,
    ready: bool,
    terminating: bool,
    serving: bool,
    node: Option<String>,
    pod_name: String,
    pod_uid: Option<String>,
}

/// The pod's endpoint for `service`, or `None` when it cannot be one (no IP
/// yet, finished).
fn pod_endpoint(service: &Service, pod: &Pod) -> Option<PodEndpoint> {
    let status = pod.status.as_ref()?;
    let ip = status.pod_ip.clone().filter(|ip| !ip.is_empty())?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let serving = is_ready(pod);
    Some(PodEndpoint {
        ip,
        ready: publish_not_ready || (serving && !terminating),
        terminating,
        serving: publish_not_ready || serving,
        node: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        pod_name: pod.metadata.name.clone().unwrap_or_default(),
        pod_uid: pod.metadata.uid.clone(),
    })
}

/// The pods of `service` grouped by their resolved port set (pods with
/// different named-port numbers land in different subsets and slices).
fn grouped(service: &Service, pods: &[Arc<Pod>]) -> BTreeMap<Vec<ResolvedPort>, Vec<PodEndpoint>> {
    let service_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut groups: BTreeMap<Vec<ResolvedPort>, Vec<PodEndpoint>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| selects(service, p)) {
        let Some(endpoint) = pod_endpoint(service, pod) else {
            continue;
        };
        let ports: Vec<ResolvedPort> = service_ports
            .iter()
            .filter_map(|sp| {
                Some(ResolvedPort {
                    name: sp.name.clone().unwrap_or_default(),
                    port: resolve_target_port(sp, pod)?,
                    protocol: sp.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    app_protocol: sp.app_protocol.clone(),
                })
            })
            .collect();
        // A pod exposing none of a ported service's ports serves nothing.
        if ports.is_empty() && !service_ports.is_empty() {
            continue;
        }
        groups.entry(ports).or_default().push(endpoint);
    }
    for endpoints in groups.values_mut() {
        endpoints.sort();
    }
    groups
}

fn pod_ref(service: &Service, e: &PodEndpoint) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: service.metadata.namespace.clone(),
        name: Some(e.pod_name.clone()),
        uid: e.pod_uid.clone(),
        ..ObjectReference::default()
    }
}

fn owner_meta(service: &Service, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: service.metadata.namespace.clone(),
        labels: Some(labels),
        owner_references: Some(vec![controller_ref("v1", "Service", &service.metadata)]),
        ..ObjectMeta::default()
    }
}

/// The service's labels plus the headless marker, as Kubernetes copies them.
fn copied_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels = service.metadata.labels.clone().unwrap_or_default();
    if service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    labels
}

/// The Endpoints object `service` should have: one subset per port set,
/// ready addresses apart from not-ready ones. `None` when unmanaged.
pub fn desired_endpoints(service: &Service, pods: &[Arc<Pod>]) -> Option<Endpoints> {
    if !is_managed(service) {
        return None;
    }
    let name = service.metadata.name.clone()?;
    let subsets: Vec<EndpointSubset> = grouped(service, pods)
        .into_iter()
        .map(|(ports, endpoints)| {
            let address = |e: &PodEndpoint| EndpointAddress {
                ip: e.ip.clone(),
                node_name: e.node.clone(),
                target_ref: Some(pod_ref(service, e)),
                ..EndpointAddress::default()
            };
            let ready: Vec<_> = endpoints.iter().filter(|e| e.ready).map(address).collect();
            let not_ready: Vec<_> = endpoints.iter().filter(|e| !e.ready).map(address).collect();
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then(|| {
                    ports
                        .iter()
                        .map(|p| EndpointPort {
                            name: (!p.name.is_empty()).then(|| p.name.clone()),
                            port: p.port,
                            protocol: Some(p.protocol.clone()),
                            app_protocol: p.app_protocol.clone(),
                        })
                        .collect()
                }),
            }
        })
        .collect();
    Some(Endpoints {
        metadata: owner_meta(service, name, copied_labels(service)),
        subsets: (!subsets.is_empty()).then_some(subsets),
    })
}

/// A short stable hash (FNV-1a) naming a slice after its port set, so a
/// reconcile finds the slice it wrote before without remembering anything.
fn port_set_hash(ports: &[ResolvedPort]) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for p in ports {
        let key = format!("{}/{}/{}/{:?};", p.name, p.port, p.protocol, p.app_protocol);
        for b in key.bytes() {
            hash ^= u32::from(b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    }
    format!("{:05x}", hash & 0xf_ffff)
}

/// `<service>-<hash>[-<chunk>]`, within the 63-character name limit.
fn slice_name(service: &str, ports: &[ResolvedPort], chunk: usize) -> String {
    let suffix = if chunk == 0 {
        port_set_hash(ports)
    } else {
        format!("{}-{chunk}", port_set_hash(ports))
    };
    let room = 63 - suffix.len() - 1;
    let prefix: String = service.chars().take(room).collect();
    format!("{prefix}-{suffix}")
}

/// The EndpointSlices `service` should have, by name: one per port set (and
/// per hundred endpoints); an empty service still gets one empty slice, as in
/// Kubernetes, so consumers see that it has no endpoints. Empty when unmanaged.
pub fn desired_slices(service: &Service, pods: &[Arc<Pod>]) -> BTreeMap<String, EndpointSlice> {
    let mut slices = BTreeMap::new();
    let Some(name) = service
        .metadata
        .name
        .clone()
        .filter(|_| is_managed(service))
    else {
        return slices;
    };
    let mut labels = copied_labels(service);
    labels.insert(SERVICE_NAME_LABEL.into(), name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let address_type = if service
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
        .is_some_and(|f| f == "IPv6")
    {
        "IPv6"
    } else {
        "IPv4"
    };
    let mut groups = grouped(service, pods);
    // Endpoints of the other family do not belong in this slice.
    for endpoints in groups.values_mut() {
        endpoints.retain(|e| e.ip.contains(':') == (address_type == "IPv6"));
    }
    groups.retain(|_, endpoints| !endpoints.is_empty());
    if groups.is_empty() {
        let service_ports: Vec<ResolvedPort> = Vec::new();
        let slice_name = slice_name(&name, &service_ports, 0);
        slices.insert(
            slice_name.clone(),
            EndpointSlice {
                metadata: owner_meta(service, slice_name, labels),
                address_type: address_type.into(),
                endpoints: Vec::new(),
                ports: None,
            },
        );
        return slices;
    }
    for (ports, endpoints) in groups {
        for (chunk, endpoints) in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE).enumerate() {
            let slice_name = slice_name(&name, &ports, chunk);
            let slice = EndpointSlice {
                metadata: owner_meta(service, slice_name.clone(), labels.clone()),
                address_type: address_type.into(),
                endpoints: endpoints
                    .iter()
                    .map(|e| Endpoint {
                        addresses: vec![e.ip.clone()],
                        conditions: Some(EndpointConditions {
                            ready: Some(e.ready),
                            serving: Some(e.serving),
                            terminating: Some(e.terminating),
                        }),
                        node_name: e.node.clone(),
                        target_ref: Some(pod_ref(service, e)),
                        ..Endpoint::default()
                    })
                    .collect(),
                ports: Some(
                    ports
                        .iter()
                        .map(|p| SlicePort {
                            name: Some(p.name.clone()),
                            port: Some(p.port),
                            protocol: Some(p.protocol.clone()),
                            app_protocol: p.app_protocol.clone(),
                        })
                        .collect(),
                ),
            };
            slices.insert(slice_name, slice);
        }
    }
    slices
}

/// Whether `existing` already says what `desired` says (labels we set, owner,
/// and content); fields the server adds are ignored.
pub fn slice_up_to_date(existing: &EndpointSlice, desired: &EndpointSlice) -> bool {
    let labels_ok = desired
        .metadata
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| existing.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v));
    labels_ok
        && existing.metadata.owner_references == desired.metadata.owner_references
        && existing.address_type == desired.address_type
        && existing.endpoints == desired.endpoints
        && existing.ports == desired.ports
}

/// Whether `existing` already says what `desired` says.
pub fn endpoints_up_to_date(existing: &Endpoints, desired: &Endpoints) -> bool {
    let labels_ok = desired
        .metadata
        .labels
        .iter()
        .flatten()
        .all(|(k, v)| existing.metadata.labels.as_ref().and_then(|l| l.get(k)) == Some(v));
    labels_ok
        && existing.metadata.owner_references == desired.metadata.owner_references
        && existing.subsets == desired.subsets
}

#[cfg(test)]
#[path = "desired_tests.rs"]
mod tests;
