//! What the cluster's names resolve to, from Services and EndpointSlices:
//!
//! - `<svc>.<ns>.svc.<domain>`: the ClusterIPs (A/AAAA); for a headless
//!   Service its ready endpoints' addresses; for an ExternalName Service a
//!   CNAME to the external name.
//! - `<host>.<svc>.<ns>.svc.<domain>`: one endpoint of a headless Service,
//!   by its `hostname` or its dashed address (`10-244-0-5`).
//! - `_<port>._<proto>.<svc>.<ns>.svc.<domain>`: SRV for a named port.
//! - `<a-b-c-d>.<ns>.pod.<domain>`: a pod address (A), as Kubernetes' DNS
//!   specification allows.
//! - `<reversed ip>.in-addr.arpa` / `.ip6.arpa`: PTR to the Service of a
//!   ClusterIP or to the endpoint name of a headless Service's address.
//!
//! A name inside the cluster domain that exists but has no record of the
//! asked type gets an empty NOERROR (so resolvers asking A and AAAA both
//! succeed); one that does not exist gets NXDOMAIN; names outside the domain
//! are refused (there is no upstream to forward to).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::message::{Answer, RData, Record, rcode, rtype};

/// The cluster objects answers come from.
pub trait ClusterView {
    /// A Service by namespace and name.
    fn service(&self, namespace: &str, name: &str) -> Option<Arc<Service>>;
    /// Every Service.
    fn services(&self) -> Vec<Arc<Service>>;
    /// The EndpointSlices of a Service (label `kubernetes.io/service-name`).
    fn slices(&self, namespace: &str, service: &str) -> Vec<Arc<EndpointSlice>>;
}

/// How answers are made.
#[derive(Clone, Debug)]
pub struct Zone {
    /// The cluster domain, e.g. `cluster.local`.
    pub domain: String,
    /// TTL of answers.
    pub ttl: u32,
}

/// One address behind a headless Service, with the name it answers to.
struct EndpointName {
    host: String,
    ip: IpAddr,
}

impl Zone {
    /// The answer for `name` (lower-case, no trailing dot) and `qtype`.
    pub fn answer(&self, view: &dyn ClusterView, name: &str, qtype: u16) -> Answer {
        if name.ends_with(".in-addr.arpa") || name.ends_with(".ip6.arpa") {
            return self.reverse(view, name);
        }
        let Some(inside) = self.strip_domain(name) else {
            return Answer {
                rcode: rcode::REFUSED,
                ..Answer::default()
            };
        };
        let labels: Vec<&str> = inside.split('.').filter(|l| !l.is_empty()).collect();
        let found = match labels.as_slice() {
            [.., "svc"] => self.service_name(view, name, &labels[..labels.len() - 1], qtype),
            [ip, _namespace, "pod"] => Some(
                dashed_ip(ip)
                    .map(|ip| self.address(name, ip, qtype))
                    .unwrap_or_default(),
            ),
            // The domain itself and `svc.<domain>`, `<ns>.svc...` exist as
            // zones even without records.
            [] => Some(Vec::new()),
            _ => None,
        };
        match found {
            Some(answers) => Answer {
                rcode: rcode::NOERROR,
                authoritative: true,
                additional: self.additional_for(view, &answers),
                authority: if answers.is_empty() {
                    vec![self.soa()]
                } else {
                    Vec::new()
                },
                answers,
            },
            None => Answer {
                rcode: rcode::NXDOMAIN,
                authoritative: true,
                authority: vec![self.soa()],
                ..Answer::default()
            },
        }
    }

    fn strip_domain<'a>(&self, name: &'a str) -> Option<&'a str> {
        if name == self.domain {
            return Some("");
        }
        name.strip_suffix(self.domain.as_str())?.strip_suffix('.')
    }

    fn soa(&self) -> Record {
        Record {
            name: self.domain.clone(),
            ttl: self.ttl,
            data: RData::Soa {
                mname: format!("ns.dns.{}", self.domain),
                rname: format!("hostmaster.{}", self.domain),
                minimum: self.ttl,
            },
        }
    }

    /// Names under `svc.<domain>`; `labels` are those before `svc`.
    fn service_name(
        &self,
        view: &dyn ClusterView,
        name: &str,
        labels: &[&str],
        qtype: u16,
    ) -> Option<Vec<Record>> {
        match labels {
            [] => Some(Vec::new()),
            [namespace] => view
                .services()
                .iter()
                .any(|s| s.metadata.namespace.as_deref() == Some(*namespace))
                .then(Vec::new),
            [service, namespace] => {
                let svc = view.service(namespace, service)?;
                Some(self.service_records(view, name, &svc, qtype))
            }
            [port, proto, service, namespace]
                if port.starts_with('_') && proto.starts_with('_') =>
            {
                let svc = view.service(namespace, service)?;
                self.srv_records(view, name, &svc, &port[1..], &proto[1..], qtype)
            }
            [host, service, namespace] => {
                let svc = view.service(namespace, service)?;
                let endpoint = self
                    .endpoint_names(view, &svc)
                    .into_iter()
                    .filter(|e| e.host == *host)
                    .collect::<Vec<_>>();
                if endpoint.is_empty() {
                    return None;
                }
                Some(
                    endpoint
                        .into_iter()
                        .flat_map(|e| self.address(name, e.ip, qtype))
                        .collect(),
                )
            }
            _ => None,
        }
    }

    fn service_records(
        &self,
        view: &dyn ClusterView,
        name: &str,
        svc: &Service,
        qtype: u16,
    ) -> Vec<Record> {
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            let target = spec.external_name.unwrap_or_default();
            if target.is_empty()
                || !matches!(qtype, rtype::A | rtype::AAAA | rtype::CNAME | rtype::ANY)
            {
                return Vec::new();
            }
            return vec![Record {
                name: name.to_owned(),
                ttl: self.ttl,
                data: RData::Cname(target.trim_end_matches('.').to_ascii_lowercase()),
            }];
        }
        if is_headless(svc) {
            return self
                .endpoint_names(view, svc)
                .into_iter()
                .flat_map(|e| self.address(name, e.ip, qtype))
                .collect();
        }
        cluster_ips(svc)
            .into_iter()
            .flat_map(|ip| self.address(name, ip, qtype))
            .collect()
    }

    fn srv_records(
        &self,
        view: &dyn ClusterView,
        name: &str,
        svc: &Service,
        port_name: &str,
        proto: &str,
        qtype: u16,
    ) -> Option<Vec<Record>> {
        let namespace = svc.metadata.namespace.as_deref().unwrap_or_default();
        let service = svc.metadata.name.as_deref().unwrap_or_default();
        let service_fqdn = format!("{service}.{namespace}.svc.{}", self.domain);
        let protocol_matches = |p: Option<&str>| p.unwrap_or("TCP").eq_ignore_ascii_case(proto);
        let spec = svc.spec.clone().unwrap_or_default();
        let port = spec.ports.unwrap_or_default().into_iter().find(|p| {
            p.name.as_deref() == Some(port_name) && protocol_matches(p.protocol.as_deref())
        })?;
        if !matches!(qtype, rtype::SRV | rtype::ANY) {
            return Some(Vec::new());
        }
        let srv = |target: String, port: i32| Record {
            name: name.to_owned(),
            ttl: self.ttl,
            data: RData::Srv {
                priority: 0,
                weight: 100,
                port: u16::try_from(port).unwrap_or(0),
                target,
            },
        };
        if !is_headless(svc) {
            return Some(vec![srv(service_fqdn, port.port)]);
        }
        // Headless: one record per endpoint, with the endpoint port of that name.
        let mut records = Vec::new();
        for slice in view.slices(namespace, service) {
            let Some(endpoint_port) = slice.ports.iter().flatten().find(|p| {
                p.name.as_deref() == Some(port_name) && protocol_matches(p.protocol.as_deref())
            }) else {
                continue;
            };
            for endpoint in ready_endpoints(&slice, svc) {
                for address in &endpoint.addresses {
                    let host = endpoint.hostname.clone().unwrap_or_else(|| dashed(address));
                    records.push(srv(
                        format!("{host}.{service_fqdn}"),
                        endpoint_port.port.unwrap_or(port.port),
                    ));
                }
            }
        }
        Some(records)
    }

    /// The A/AAAA records (for the SRV targets) of the answer's targets.
    fn additional_for(&self, view: &dyn ClusterView, answers: &[Record]) -> Vec<Record> {
        let mut additional = Vec::new();
        for record in answers {
            if let RData::Srv { target, .. } = &record.data {
                let answer = self.answer(view, target, rtype::A);
                additional.extend(answer.answers.into_iter().filter(|r| r.name == *target));
            }
        }
        additional
    }

    fn address(&self, name: &str, ip: IpAddr, qtype: u16) -> Vec<Record> {
        let data = match (ip, qtype) {
            (IpAddr::V4(v4), rtype::A | rtype::ANY) => RData::A(v4),
            (IpAddr::V6(v6), rtype::AAAA | rtype::ANY) => RData::Aaaa(v6),
            _ => return Vec::new(),
        };
        vec![Record {
            name: name.to_owned(),
            ttl: self.ttl,
            data,
        }]
    }

    /// Ready addresses of a headless Service with the names they answer to.
    fn endpoint_names(&self, view: &dyn ClusterView, svc: &Service) -> Vec<EndpointName> {
        let namespace = svc.metadata.namespace.as_deref().unwrap_or_default();
        let service = svc.metadata.name.as_deref().unwrap_or_default();
        let mut names = Vec::new();
        for slice in view.slices(namespace, service) {
            for endpoint in ready_endpoints(&slice, svc) {
                for address in &endpoint.addresses {
                    let Ok(ip) = address.parse::<IpAddr>() else {
                        continue;
                    };
                    let host = endpoint.hostname.clone().unwrap_or_else(|| dashed(address));
                    if !names
                        .iter()
                        .any(|n: &EndpointName| n.ip == ip && n.host == host)
                    {
                        names.push(EndpointName { host, ip });
                    }
                }
            }
        }
        names
    }

    fn reverse(&self, view: &dyn ClusterView, name: &str) -> Answer {
        let Some(ip) = reverse_ip(name) else {
            return Answer {
                rcode: rcode::NXDOMAIN,
                ..Answer::default()
            };
        };
        let ptr = |target: String| Record {
            name: name.to_owned(),
            ttl: self.ttl,
            data: RData::Ptr(target),
        };
        let mut answers = Vec::new();
        for svc in view.services() {
            let namespace = svc.metadata.namespace.as_deref().unwrap_or_default();
            let service = svc.metadata.name.as_deref().unwrap_or_default();
            let fqdn = format!("{service}.{namespace}.svc.{}", self.domain);
            if cluster_ips(&svc).contains(&ip) {
                answers.push(ptr(fqdn));
            } else if is_headless(&svc) {
                for endpoint in self.endpoint_names(view, &svc) {
                    if endpoint.ip == ip {
                        answers.push(ptr(format!("{}.{fqdn}", endpoint.host)));
                    }
                }
            }
        }
        Answer {
            rcode: if answers.is_empty() {
                rcode::NXDOMAIN
            } else {
                rcode::NOERROR
            },
            authoritative: !answers.is_empty(),
            answers,
            ..Answer::default()
        }
    }
}

fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

fn cluster_ips(svc: &Service) -> Vec<IpAddr> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    let mut ips: Vec<IpAddr> = spec
        .cluster_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    if ips.is_empty()
        && let Some(ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok())
    {
        ips.push(ip);
    }
    ips
}

/// Endpoints DNS publishes: ready ones (a missing condition means ready),
/// or all of them when the Service publishes not-ready addresses.
fn ready_endpoints<'a>(
    slice: &'a EndpointSlice,
    svc: &Service,
) -> impl Iterator<Item = &'a k8s_openapi::api::discovery::v1::Endpoint> {
    let publish_all = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    slice
        .endpoints
        .iter()
        .filter(move |e| publish_all || e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
}

/// `10.244.0.5` → `10-244-0-5`; `fd00::1` → `fd00--1`.
fn dashed(address: &str) -> String {
    address.replace(['.', ':'], "-")
}

fn dashed_ip(label: &str) -> Option<IpAddr> {
    let v4 = label.replace('-', ".");
    if let Ok(ip) = v4.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(ip));
    }
    label
        .replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// `5.0.96.10.in-addr.arpa` → 10.96.0.5; nibble form for `ip6.arpa`.
fn reverse_ip(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets: Vec<u8> = rest
            .split('.')
            .map(|o| o.parse().ok())
            .collect::<Option<_>>()?;
        if octets.len() != 4 {
            return None;
        }
        octets.reverse();
        return Some(IpAddr::V4(Ipv4Addr::new(
            octets[0], octets[1], octets[2], octets[3],
        )));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = rest
        .split('.')
        .rev()
        .map(|n| u8::from_str_radix(n, 16).ok().filter(|_| n.len() == 1))
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut octets = [0u8; 16];
    for (i, pair) in nibbles.chunks(2).enumerate() {
        octets[i] = (pair[0] << 4) | pair[1];
    }
    Some(IpAddr::V6(Ipv6Addr::from(octets)))
}

#[cfg(test)]
mod tests;
