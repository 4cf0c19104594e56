//! The nftables datapath: the whole proxy state rendered as one `nft -f -`
//! script that replaces the proxy's table in one atomic transaction.
//!
//! Layout of `table ip kerno-proxy` (modelled on kube-proxy's nftables mode):
//! - `service-ips` (ClusterIP . protocol . port) and `service-nodeports`
//!   (protocol . port, for any local address) are verdict maps from the nat
//!   hooks to one chain per Service port, which picks an endpoint with
//!   `numgen random` (after ClientIP affinity sets, when configured) and
//!   jumps to the endpoint's chain, which DNATs.
//! - Service ports without ready endpoints are in `no-endpoint-services` /
//!   `no-endpoint-nodeports` instead, looked up by filter chains that
//!   `reject` new connections, so clients fail fast instead of timing out.
//! - Packets that must be masqueraded get mark `0x4000` and are masqueraded
//!   in postrouting: NodePort traffic (unless `externalTrafficPolicy:
//!   Local`), hairpin (a pod reaching itself through its Service) and, when
//!   `clusterCidr` is configured, ClusterIP traffic from outside it.
//!
//! Replacing the table does not touch conntrack, so established connections
//! keep their NAT mapping across syncs and proxy restarts. Affinity sets are
//! rebuilt with the table: a change of the ruleset forgets the pins.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::model::{Backend, ProxyState, ServicePortName, ServicePortState};

/// The proxy's table name (family `ip`).
pub const TABLE: &str = "kerno-proxy";
/// The mark bit asking postrouting to masquerade.
const MASQUERADE_MARK: &str = "0x4000";

/// Rendering options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Pod network; ClusterIP traffic from outside it is masqueraded.
    pub cluster_cidr: Option<(Ipv4Addr, u8)>,
}

fn service_chain(name: &ServicePortName, state: &ServicePortState) -> String {
    format!(
        "svc-{}/{}/{}/{}",
        name.namespace,
        name.name,
        name.protocol.nft_name(),
        state.port
    )
}

fn external_chain(name: &ServicePortName, state: &ServicePortState) -> String {
    format!(
        "ext-{}/{}/{}/{}",
        name.namespace,
        name.name,
        name.protocol.nft_name(),
        state.port
    )
}

fn endpoint_suffix(name: &ServicePortName, state: &ServicePortState, b: &Backend) -> String {
    format!(
        "{}/{}/{}/{}/{}/{}",
        name.namespace,
        name.name,
        name.protocol.nft_name(),
        state.port,
        b.ip,
        b.port
    )
}

/// `numgen random` over `chains` (a plain goto for one).
fn pick(chains: &[String]) -> String {
    match chains {
        [] => "drop".to_owned(),
        [one] => format!("goto {one}"),
        many => {
            let arms: Vec<String> = many
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{i} : goto {c}"))
                .collect();
            format!(
                "numgen random mod {} vmap {{ {} }}",
                many.len(),
                arms.join(", ")
            )
        }
    }
}

/// The script that makes the kernel's table exactly `state`: create the
/// table if missing, delete it, and (unless `state` is empty) create it
/// again with everything, all in one transaction.
pub fn render(state: &ProxyState, options: &RenderOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "add table ip {TABLE}");
    let _ = writeln!(out, "delete table ip {TABLE}");
    if state.is_empty() {
        // No services, no rules: the table goes away entirely.
        return out;
    }
    let mut sets = String::new();
    let mut chains = String::new();
    let mut service_ips = Vec::new();
    let mut service_node_ports = Vec::new();
    let mut no_endpoint_ips = Vec::new();
    let mut no_endpoint_node_ports = Vec::new();
    for (name, svc) in state {
        let proto = name.protocol.nft_name();
        let svc_chain = service_chain(name, svc);
        if svc.backends.is_empty() {
            no_endpoint_ips.push(format!(
                "{} . {proto} . {} : goto reject-chain",
                svc.cluster_ip, svc.port
            ));
            if let Some(np) = svc.node_port {
                no_endpoint_node_ports.push(format!("{proto} . {np} : goto reject-chain"));
            }
            continue;
        }
        let mut endpoint_chains = Vec::new();
        let mut local_chains = Vec::new();
        let mut affinity_rules = Vec::new();
        for b in &svc.backends {
            let suffix = endpoint_suffix(name, svc, b);
            let ep_chain = format!("ep-{suffix}");
            let mut body = format!("\t\tip saddr {} jump mark-for-masquerade\n", b.ip);
            if let Some(timeout) = svc.affinity_seconds {
                let set = format!("affinity-{suffix}");
                let _ = writeln!(
                    sets,
                    "\tset {set} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout {timeout}s\n\t}}"
                );
                let _ = writeln!(body, "\t\tupdate @{set} {{ ip saddr }}");
                affinity_rules.push(format!("\t\tip saddr @{set} goto {ep_chain}\n"));
            }
            let _ = writeln!(body, "\t\tmeta l4proto {proto} dnat to {}:{}", b.ip, b.port);
            let _ = writeln!(chains, "\tchain {ep_chain} {{\n{body}\t}}");
            if b.local {
                local_chains.push(ep_chain.clone());
            }
            endpoint_chains.push(ep_chain);
        }
        let mut body = String::new();
        if let Some((net, len)) = options.cluster_cidr {
            let _ = writeln!(
                body,
                "\t\tip daddr {} ip saddr != {net}/{len} jump mark-for-masquerade",
                svc.cluster_ip
            );
        }
        for rule in &affinity_rules {
            body.push_str(rule);
        }
        let _ = writeln!(body, "\t\t{}", pick(&endpoint_chains));
        let _ = writeln!(chains, "\tchain {svc_chain} {{\n{body}\t}}");
        service_ips.push(format!(
            "{} . {proto} . {} : goto {svc_chain}",
            svc.cluster_ip, svc.port
        ));
        if let Some(np) = svc.node_port {
            let ext_chain = external_chain(name, svc);
            let body = if svc.external_local {
                // Client address kept; only this node's endpoints (none: drop, as kube-proxy).
                format!("\t\t{}\n", pick(&local_chains))
            } else {
                format!("\t\tjump mark-for-masquerade\n\t\tgoto {svc_chain}\n")
            };
            let _ = writeln!(chains, "\tchain {ext_chain} {{\n{body}\t}}");
            service_node_ports.push(format!("{proto} . {np} : goto {ext_chain}"));
        }
    }
    let map = |out: &mut String, name: &str, key: &str, elements: &[String]| {
        let _ = writeln!(out, "\tmap {name} {{\n\t\ttype {key} : verdict");
        if !elements.is_empty() {
            let _ = writeln!(
                out,
                "\t\telements = {{ {} }}",
                elements.join(",\n\t\t\t     ")
            );
        }
        let _ = writeln!(out, "\t}}");
    };
    let _ = writeln!(out, "table ip {TABLE} {{");
    out.push_str(&sets);
    let _ = writeln!(
        out,
        "\tchain mark-for-masquerade {{\n\t\tmeta mark set meta mark | {MASQUERADE_MARK}\n\t}}"
    );
    let _ = writeln!(
        out,
        "\tchain reject-chain {{\n\t\tmeta l4proto tcp reject with tcp reset\n\t\treject\n\t}}"
    );
    out.push_str(&chains);
    let ip_key = "ipv4_addr . inet_proto . inet_service";
    let port_key = "inet_proto . inet_service";
    map(&mut out, "service-ips", ip_key, &service_ips);
    map(&mut out, "service-nodeports", port_key, &service_node_ports);
    map(&mut out, "no-endpoint-services", ip_key, &no_endpoint_ips);
    map(
        &mut out,
        "no-endpoint-nodeports",
        port_key,
        &no_endpoint_node_ports,
    );
    out.push_str(concat!(
        "\tchain services {\n",
        "\t\tip daddr . meta l4proto . th dport vmap @service-ips\n",
        "\t\tfib daddr type local meta l4proto . th dport vmap @service-nodeports\n",
        "\t}\n",
        "\tchain nat-prerouting {\n",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;\n",
        "\t\tjump services\n",
        "\t}\n",
        "\tchain nat-output {\n",
        "\t\ttype nat hook output priority -100; policy accept;\n",
        "\t\tjump services\n",
        "\t}\n",
        "\tchain nat-postrouting {\n",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n",
        "\t\tmeta mark & 0x4000 == 0x4000 meta mark set meta mark ^ 0x4000 masquerade\n",
        "\t}\n",
        "\tchain filter-input {\n",
        "\t\ttype filter hook input priority -110; policy accept;\n",
        "\t\tct state new fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports\n",
        "\t\tct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n",
        "\t}\n",
        "\tchain filter-forward {\n",
        "\t\ttype filter hook forward priority -110; policy accept;\n",
        "\t\tct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n",
        "\t}\n",
        "\tchain filter-output {\n",
        "\t\ttype filter hook output priority -110; policy accept;\n",
        "\t\tct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n",
        "\t}\n",
    ));
    let _ = writeln!(out, "}}");
    out
}

#[cfg(test)]
#[path = "nft_tests.rs"]
mod tests;
