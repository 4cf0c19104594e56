use std::collections::HashMap;

use serde_json::json;

use super::*;

#[derive(Default)]
struct Fake {
    services: Vec<Arc<Service>>,
    slices: HashMap<(String, String), Vec<Arc<EndpointSlice>>>,
}

impl Fake {
    fn service(mut self, value: serde_json::Value) -> Self {
        self.services
            .push(Arc::new(serde_json::from_value(value).expect("service")));
        self
    }

    fn slice(mut self, namespace: &str, service: &str, value: serde_json::Value) -> Self {
        self.slices
            .entry((namespace.into(), service.into()))
            .or_default()
            .push(Arc::new(serde_json::from_value(value).expect("slice")));
        self
    }
}

impl ClusterView for Fake {
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.services
            .iter()
            .find(|s| {
                s.metadata.namespace.as_deref() == Some(namespace)
                    && s.metadata.name.as_deref() == Some(name)
            })
            .cloned()
    }
    fn services(&self) -> Vec<Arc<Service>> {
        self.services.clone()
    }
    fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices
            .get(&(namespace.into(), service.into()))
            .cloned()
            .unwrap_or_default()
    }
}

fn zone() -> Zone {
    Zone {
        domain: "cluster.local".into(),
        ttl: 5,
    }
}

fn cluster() -> Fake {
    Fake::default()
        .service(json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
        }))
        .service(json!({
            "metadata": {"name": "db", "namespace": "data"},
            "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}
        }))
        .slice("data", "db", json!({
            "metadata": {"name": "db-1", "namespace": "data"},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.244.1.7"], "conditions": {}},
                {"addresses": ["10.244.1.9"], "conditions": {"ready": false}}
            ]
        }))
        .service(json!({
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "Example.Invalid."}
        }))
}

fn addresses(answer: &Answer) -> Vec<String> {
    answer
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::A(ip) => ip.to_string(),
            RData::Aaaa(ip) => ip.to_string(),
            RData::Cname(n) | RData::Ptr(n) => n.clone(),
            RData::Srv { port, target, .. } => format!("{target}:{port}"),
            RData::Soa { .. } => "soa".into(),
        })
        .collect()
}

#[test]
fn services_resolve_to_their_cluster_ip() {
    let a = zone().answer(&cluster(), "web.default.svc.cluster.local", rtype::A);
    assert_eq!(
        (a.rcode, addresses(&a)),
        (rcode::NOERROR, vec!["10.96.0.20".to_owned()])
    );
    assert!(a.authoritative);
    // The name exists, so AAAA is an empty NOERROR, not NXDOMAIN.
    let aaaa = zone().answer(&cluster(), "web.default.svc.cluster.local", rtype::AAAA);
    assert_eq!((aaaa.rcode, aaaa.answers.len()), (rcode::NOERROR, 0));
}

#[test]
fn headless_services_resolve_to_ready_endpoints() {
    let a = zone().answer(&cluster(), "db.data.svc.cluster.local", rtype::A);
    assert_eq!(addresses(&a), vec!["10.244.0.5", "10.244.1.7"]);
    let host = zone().answer(&cluster(), "db-0.db.data.svc.cluster.local", rtype::A);
    assert_eq!(addresses(&host), vec!["10.244.0.5"]);
    let dashed = zone().answer(&cluster(), "10-244-1-7.db.data.svc.cluster.local", rtype::A);
    assert_eq!(addresses(&dashed), vec!["10.244.1.7"]);
    let not_ready = zone().answer(&cluster(), "10-244-1-9.db.data.svc.cluster.local", rtype::A);
    assert_eq!(not_ready.rcode, rcode::NXDOMAIN);
}

#[test]
fn srv_records_name_ports_and_endpoints() {
    let srv = zone().answer(
        &cluster(),
        "_http._tcp.web.default.svc.cluster.local",
        rtype::SRV,
    );
    assert_eq!(addresses(&srv), vec!["web.default.svc.cluster.local:80"]);
    assert_eq!(srv.additional.len(), 1, "the target's address comes along");
    let headless = zone().answer(&cluster(), "_pg._tcp.db.data.svc.cluster.local", rtype::SRV);
    assert_eq!(
        addresses(&headless),
        vec![
            "db-0.db.data.svc.cluster.local:5432",
            "10-244-1-7.db.data.svc.cluster.local:5432"
        ]
    );
    let wrong_proto = zone().answer(
        &cluster(),
        "_http._udp.web.default.svc.cluster.local",
        rtype::SRV,
    );
    assert_eq!(wrong_proto.rcode, rcode::NXDOMAIN);
}

#[test]
fn external_names_are_cnames_and_reverse_lookups_find_services() {
    let cname = zone().answer(&cluster(), "ext.default.svc.cluster.local", rtype::A);
    assert_eq!(addresses(&cname), vec!["example.invalid"]);
    let ptr = zone().answer(&cluster(), "20.0.96.10.in-addr.arpa", rtype::PTR);
    assert_eq!(addresses(&ptr), vec!["web.default.svc.cluster.local"]);
    let pod_ptr = zone().answer(&cluster(), "5.0.244.10.in-addr.arpa", rtype::PTR);
    assert_eq!(addresses(&pod_ptr), vec!["db-0.db.data.svc.cluster.local"]);
    let unknown = zone().answer(&cluster(), "9.9.9.10.in-addr.arpa", rtype::PTR);
    assert_eq!(unknown.rcode, rcode::NXDOMAIN);
}

#[test]
fn unknown_names_are_nxdomain_and_outside_names_refused() {
    let missing = zone().answer(&cluster(), "nope.default.svc.cluster.local", rtype::A);
    assert_eq!(missing.rcode, rcode::NXDOMAIN);
    assert_eq!(missing.authority.len(), 1, "an SOA for negative caching");
    let namespace = zone().answer(&cluster(), "default.svc.cluster.local", rtype::A);
    assert_eq!(
        (namespace.rcode, namespace.answers.len()),
        (rcode::NOERROR, 0)
    );
    let empty_ns = zone().answer(&cluster(), "empty.svc.cluster.local", rtype::A);
    assert_eq!(empty_ns.rcode, rcode::NXDOMAIN);
    let outside = zone().answer(&cluster(), "example.com", rtype::A);
    assert_eq!(outside.rcode, rcode::REFUSED);
    let pod = zone().answer(&cluster(), "10-244-0-5.default.pod.cluster.local", rtype::A);
    assert_eq!(addresses(&pod), vec!["10.244.0.5"]);
}
