use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use super::*;
use crate::model::{Backend, Protocol, ServicePortName, ServicePortState};

fn port_name(name: &str, protocol: Protocol) -> ServicePortName {
    ServicePortName {
        namespace: "default".into(),
        name: name.into(),
        port: "http".into(),
        protocol,
    }
}

fn backend(last: u8, local: bool) -> Backend {
    Backend {
        ip: Ipv4Addr::new(10, 244, 0, last),
        port: 8080,
        local,
    }
}

fn web(backends: &[Backend]) -> ServicePortState {
    ServicePortState {
        cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
        port: 80,
        node_port: None,
        affinity_seconds: None,
        external_local: false,
        backends: backends.iter().cloned().collect::<BTreeSet<_>>(),
    }
}

fn lines(script: &str) -> Vec<&str> {
    script.lines().map(str::trim).collect()
}

#[test]
fn an_empty_state_removes_the_table() {
    let script = render(&ProxyState::new(), &RenderOptions::default());
    assert_eq!(
        script,
        "add table ip kerno-proxy\ndelete table ip kerno-proxy\n"
    );
}

#[test]
fn a_cluster_ip_spreads_over_its_endpoints_with_numgen() {
    let mut state = ProxyState::new();
    state.insert(
        port_name("web", Protocol::Tcp),
        web(&[backend(2, false), backend(3, false)]),
    );
    let script = render(&state, &RenderOptions::default());
    let l = lines(&script);
    // Replace atomically: create-if-missing, delete, recreate, in one transaction.
    assert_eq!(
        &l[..3],
        [
            "add table ip kerno-proxy",
            "delete table ip kerno-proxy",
            "table ip kerno-proxy {"
        ]
    );
    assert!(
        l.contains(&"elements = { 10.96.0.10 . tcp . 80 : goto svc-default/web/tcp/80 }"),
        "{script}"
    );
    assert!(
        l.contains(&"numgen random mod 2 vmap { 0 : goto ep-default/web/tcp/80/10.244.0.2/8080, 1 : goto ep-default/web/tcp/80/10.244.0.3/8080 }"),
        "{script}"
    );
    assert!(l.contains(&"meta l4proto tcp dnat to 10.244.0.2:8080"));
    // Hairpin: a pod reaching itself is masqueraded.
    assert!(l.contains(&"ip saddr 10.244.0.2 jump mark-for-masquerade"));
    assert!(!script.contains("affinity-"), "no affinity unless asked");
    assert!(!script.contains("ext-"), "no NodePort unless asked");
}

#[test]
fn services_without_endpoints_are_rejected_not_dnatted() {
    let mut state = ProxyState::new();
    let mut empty = web(&[]);
    empty.node_port = Some(30080);
    state.insert(port_name("empty", Protocol::Tcp), empty);
    let script = render(&state, &RenderOptions::default());
    let l = lines(&script);
    assert!(
        l.contains(&"elements = { 10.96.0.10 . tcp . 80 : goto reject-chain }"),
        "{script}"
    );
    assert!(
        l.contains(&"elements = { tcp . 30080 : goto reject-chain }"),
        "{script}"
    );
    assert!(!script.contains("svc-default/empty"), "{script}");
    assert!(l.contains(&"meta l4proto tcp reject with tcp reset"));
}

#[test]
fn node_ports_masquerade_unless_local_and_local_uses_local_endpoints_only() {
    let mut state = ProxyState::new();
    let mut cluster = web(&[backend(2, false), backend(3, true)]);
    cluster.node_port = Some(30080);
    state.insert(port_name("cluster", Protocol::Tcp), cluster);
    let mut local = web(&[backend(4, false), backend(5, true)]);
    local.cluster_ip = Ipv4Addr::new(10, 96, 0, 11);
    local.node_port = Some(30081);
    local.external_local = true;
    state.insert(port_name("local", Protocol::Udp), local);
    let script = render(&state, &RenderOptions::default());
    assert!(
        script.contains("chain ext-default/cluster/tcp/80 {\n\t\tjump mark-for-masquerade\n\t\tgoto svc-default/cluster/tcp/80\n\t}"),
        "{script}"
    );
    assert!(
        script.contains("chain ext-default/local/udp/80 {\n\t\tgoto ep-default/local/udp/80/10.244.0.5/8080\n\t}"),
        "{script}"
    );
    assert!(script.contains("tcp . 30080 : goto ext-default/cluster/tcp/80"));
    assert!(script.contains("udp . 30081 : goto ext-default/local/udp/80"));
    assert!(script.contains("meta l4proto udp dnat to 10.244.0.4:8080"));
}

#[test]
fn client_ip_affinity_pins_through_per_endpoint_timeout_sets() {
    let mut state = ProxyState::new();
    let mut svc = web(&[backend(2, false), backend(3, false)]);
    svc.affinity_seconds = Some(600);
    state.insert(port_name("sticky", Protocol::Tcp), svc);
    let script = render(&state, &RenderOptions::default());
    let set = "affinity-default/sticky/tcp/80/10.244.0.2/8080";
    assert!(script.contains(&format!(
        "set {set} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 600s\n\t}}"
    )));
    let l = lines(&script);
    assert!(l.contains(&format!("update @{set} {{ ip saddr }}").as_str()));
    assert!(l.contains(
        &format!("ip saddr @{set} goto ep-default/sticky/tcp/80/10.244.0.2/8080").as_str()
    ));
    // Pins are checked before the random pick.
    let pin = script
        .find(&format!("ip saddr @{set} goto"))
        .unwrap_or(usize::MAX);
    let pick = script.find("numgen random").unwrap_or(0);
    assert!(pin < pick);
}

#[test]
fn cluster_cidr_masquerades_traffic_from_outside_the_pod_network() {
    let mut state = ProxyState::new();
    state.insert(port_name("web", Protocol::Tcp), web(&[backend(2, false)]));
    let options = RenderOptions {
        cluster_cidr: Some((Ipv4Addr::new(10, 244, 0, 0), 16)),
    };
    let script = render(&state, &options);
    assert!(
        lines(&script)
            .contains(&"ip daddr 10.96.0.10 ip saddr != 10.244.0.0/16 jump mark-for-masquerade")
    );
}

#[test]
fn rendering_is_deterministic() {
    let mut state = ProxyState::new();
    for name in ["b", "a", "c"] {
        state.insert(
            port_name(name, Protocol::Tcp),
            web(&[backend(3, false), backend(2, false)]),
        );
    }
    assert_eq!(
        render(&state, &RenderOptions::default()),
        render(&state.clone(), &RenderOptions::default())
    );
}
