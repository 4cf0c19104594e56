//! `kerno-proxy-ipvs` with its nftables datapath, for real, inside network
//! namespaces this test creates:
//!
//! ```text
//!  netns "node" (the proxy's table, the client)    netns "pods" (backends)
//!   kp-n 10.200.0.1/24  <──────── veth ────────>  kp-p 10.200.0.2-4/24
//!   route 10.96.0.0/16 dev kp-n                   busybox httpd on each :8080
//! ```
//!
//! The proxy process runs in the root namespace (where the kernel's
//! loopback address is) and programs the node namespace's nftables with
//! `nsenter` (config `netns`); nothing is programmed in the root namespace.
//! Services and their EndpointSlices are created with the real kubectl
//! (selector-less services with hand-written slices, so no pods are needed).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kerno_tests::netns::{BackgroundProcess, TestNetns};
use kerno_tests::{Kerno, PluginProcess, eventually};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);
const BACKENDS: [&str; 3] = ["10.200.0.2", "10.200.0.3", "10.200.0.4"];

/// The two namespaces, the veth between them and the backends.
struct Net {
    node: TestNetns,
    pods: TestNetns,
    client: TestNetns,
    _servers: Vec<BackgroundProcess>,
    _docroots: tempfile::TempDir,
}

fn busybox() -> &'static str {
    assert!(
        Path::new("/bin/busybox").exists(),
        "the proxy e2e needs /bin/busybox (apt-get install busybox-static)"
    );
    "/bin/busybox"
}

fn nft_available() {
    let ok = Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "the proxy e2e needs nft (apt-get install nftables)");
}

impl Net {
    fn new() -> Net {
        nft_available();
        let node = TestNetns::create().expect("node netns");
        let pods = TestNetns::create().expect("pods netns");
        // The veth is created inside the node namespace: no link ever exists in the root one.
        node.exec_ok(&[
            "ip",
            "link",
            "add",
            "kp-n",
            "type",
            "veth",
            "peer",
            "name",
            "kp-p",
            "netns",
            pods.name(),
        ])
        .expect("veth");
        node.exec_ok(&["ip", "addr", "add", "10.200.0.1/24", "dev", "kp-n"])
            .expect("addr");
        node.exec_ok(&["ip", "link", "set", "kp-n", "up"])
            .expect("up");
        // The service range is routed at the node's link (as a default route would on a real node).
        node.exec_ok(&["ip", "route", "add", "10.96.0.0/16", "dev", "kp-n"])
            .expect("route");
        node.exec_ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])
            .expect("forwarding");
        for ip in BACKENDS {
            pods.exec_ok(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "kp-p"])
                .expect("addr");
        }
        pods.exec_ok(&["ip", "link", "set", "kp-p", "up"])
            .expect("up");
        // An outside client on a second link of the node, routed by the node.
        let client = TestNetns::create().expect("client netns");
        node.exec_ok(&[
            "ip",
            "link",
            "add",
            "kp-nc",
            "type",
            "veth",
            "peer",
            "name",
            "kp-c",
            "netns",
            client.name(),
        ])
        .expect("client veth");
        node.exec_ok(&["ip", "addr", "add", "10.201.0.1/24", "dev", "kp-nc"])
            .expect("addr");
        node.exec_ok(&["ip", "link", "set", "kp-nc", "up"])
            .expect("up");
        client
            .exec_ok(&["ip", "addr", "add", "10.201.0.2/24", "dev", "kp-c"])
            .expect("addr");
        client
            .exec_ok(&["ip", "link", "set", "kp-c", "up"])
            .expect("up");
        pods.exec_ok(&["ip", "route", "add", "10.201.0.0/24", "via", "10.200.0.1"])
            .expect("route");
        let docroots = tempfile::tempdir().expect("tempdir");
        let mut servers = Vec::new();
        for ip in BACKENDS {
            let dir = docroots.path().join(ip);
            std::fs::create_dir_all(&dir).expect("docroot");
            std::fs::write(dir.join("index.html"), format!("backend {ip}\n")).expect("index");
            let dir = dir.to_string_lossy().into_owned();
            servers.push(
                pods.spawn(&[
                    busybox(),
                    "httpd",
                    "-f",
                    "-p",
                    &format!("{ip}:8080"),
                    "-h",
                    &dir,
                ])
                .expect("httpd"),
            );
        }
        let net = Net {
            node,
            pods,
            client,
            _servers: servers,
            _docroots: docroots,
        };
        for ip in BACKENDS {
            let up = eventually(PATIENCE, || {
                net.get_from_node(&format!("http://{ip}:8080/")).ok()
            });
            assert!(up.is_some(), "backend {ip} did not come up");
        }
        net
    }

    fn wget(ns: &TestNetns, url: &str) -> Result<String, String> {
        let out = ns
            .exec(&[busybox(), "wget", "-q", "-O-", url])
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// An HTTP GET from the node namespace (node-originated traffic).
    fn get_from_node(&self, url: &str) -> Result<String, String> {
        Self::wget(&self.node, url)
    }

    /// The proxy's table as nft lists it without handles or counters, or `None`.
    fn table(&self) -> Option<String> {
        let out = self
            .node
            .exec(&["nft", "-s", "list", "table", "ip", "kerno-proxy"])
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The table's handle (changes whenever the proxy replaces the table).
    fn table_handle(&self) -> Option<String> {
        let out = self
            .node
            .exec(&["nft", "-a", "list", "table", "ip", "kerno-proxy"])
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let first = text.lines().next()?.to_owned();
        (out.status.success()).then_some(first)
    }

    fn delete_table(&self) {
        let _ = self
            .node
            .exec(&["nft", "delete", "table", "ip", "kerno-proxy"]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // The namespaces' deletion removes their links and tables too; this
        // makes the table's removal explicit even if a process lingers.
        self.delete_table();
    }
}

fn apply(k: &Kerno, manifest: &Value) {
    let out = k.kubectl_stdin(&["apply", "-f", "-"], Some(&manifest.to_string()));
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A selector-less Service with a hand-written slice listing `backends`.
fn service_with_slice(k: &Kerno, name: &str, spec: Value, backends: &[&str]) {
    let mut spec = spec;
    spec["ports"] = json!([{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]);
    if let Some(node_port) = spec.get("nodePort").cloned() {
        spec["ports"][0]["nodePort"] = node_port;
        if let Some(o) = spec.as_object_mut() {
            o.remove("nodePort");
        }
    }
    apply(
        k,
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": spec,
        }),
    );
    let endpoints: Vec<Value> = backends
        .iter()
        // 10.200.0.3 runs on the proxy's node ("node-1"), the others elsewhere.
        .map(|ip| {
            let node = if *ip == "10.200.0.3" {
                "node-1"
            } else {
                "node-2"
            };
            json!({"addresses": [ip], "conditions": {"ready": true}, "nodeName": node})
        })
        .collect();
    apply(
        k,
        &json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{name}-manual"), "namespace": "default",
                "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }),
    );
}

fn spawn_proxy(k: &Kerno, net: &Net) -> PluginProcess {
    k.spawn_plugin(
        "kerno-proxy-ipvs",
        "proxy-ipvs",
        json!({"netns": net.node.path(), "coalesceMs": 50, "nodeName": "node-1"}),
    )
    .expect("kerno-proxy-ipvs must be built (cargo build -p kerno-proxy-ipvs)")
}

/// Which backends answered `n` requests to `url` from the node namespace.
fn backends_seen(net: &Net, url: &str, n: usize) -> BTreeSet<String> {
    (0..n).filter_map(|_| net.get_from_node(url).ok()).collect()
}

#[test]
fn nftables_proxy_serves_cluster_ips_node_ports_affinity_and_rejects() {
    let net = Net::new();
    let k = Kerno::up().expect("kerno up");
    service_with_slice(
        &k,
        "web",
        json!({"type": "NodePort", "clusterIP": "10.96.0.10", "nodePort": 30080}),
        &BACKENDS,
    );
    service_with_slice(
        &k,
        "sticky",
        json!({"clusterIP": "10.96.0.11", "sessionAffinity": "ClientIP"}),
        &BACKENDS,
    );
    service_with_slice(&k, "empty", json!({"clusterIP": "10.96.0.12"}), &[]);
    let mut proxy = spawn_proxy(&k, &net);

    // The ClusterIP spreads over every endpoint.
    let all: BTreeSet<String> = BACKENDS.iter().map(|ip| format!("backend {ip}")).collect();
    let spread = eventually(PATIENCE, || {
        let seen = backends_seen(&net, "http://10.96.0.10/", 30);
        (seen == all).then_some(seen)
    });
    assert_eq!(
        spread,
        Some(all.clone()),
        "requests to the ClusterIP reach all endpoints; table:\n{:?}",
        net.table()
    );

    // The Plugin object says which datapath serves and why.
    let capabilities = k.kubectl_ok(&[
        "get",
        "plugin",
        "proxy-ipvs",
        "-o",
        "jsonpath={.spec.capabilities}",
    ]);
    assert!(capabilities.contains("datapath=nftables"), "{capabilities}");
    assert!(capabilities.contains("/proc/net/ip_vs"), "{capabilities}");

    // The NodePort on the node's address, from the pods' side (masqueraded, so replies return).
    let via_node_port = eventually(PATIENCE, || {
        Net::wget(&net.pods, "http://10.200.0.1:30080/").ok()
    });
    assert!(
        via_node_port.as_ref().is_some_and(|b| all.contains(b)),
        "NodePort answered {via_node_port:?}"
    );

    // ClientIP affinity pins the client to one endpoint.
    let pinned = backends_seen(&net, "http://10.96.0.11/", 15);
    assert_eq!(pinned.len(), 1, "one client, one endpoint: {pinned:?}");

    // No endpoints: refused at once rather than timing out.
    let started = Instant::now();
    let refused = net.get_from_node("http://10.96.0.12/");
    let took = started.elapsed();
    assert!(
        refused.is_err(),
        "a service without endpoints answered: {refused:?}"
    );
    assert!(took < Duration::from_secs(3), "rejection took {took:?}");

    // An established connection survives the restart below: conntrack keeps its NAT.
    let mut held = net
        .node
        .command(&["timeout", "20", busybox(), "nc", "10.96.0.10", "80"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("nc");
    // Let the handshake finish before the table is replaced.
    std::thread::sleep(Duration::from_millis(500));

    // A restarted proxy rebuilds the identical ruleset (it replaces the table:
    // a new handle, the same rules).
    let before = net.table().expect("the proxy's table");
    let before_handle = net.table_handle();
    proxy.restart().expect("restart the proxy");
    let replaced = eventually(PATIENCE, || {
        let handle = net.table_handle();
        (handle.is_some() && handle != before_handle).then_some(())
    });
    assert!(replaced.is_some(), "the restarted proxy did not sync");
    let strip_elements = |t: &str| {
        // Affinity sets hold the pins clients made (with expiry times): not rules.
        t.lines()
            .filter(|l| !l.trim_start().starts_with("elements = {") || l.contains(" : "))
            .filter(|l| !l.contains(" expires "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let after = net.table().expect("the table after the restart");
    assert_eq!(
        strip_elements(&after),
        strip_elements(&before),
        "identical ruleset after a restart"
    );
    assert!(
        net.get_from_node("http://10.96.0.10/").is_ok(),
        "still serving after the restart"
    );
    // stdin stays open until the answer is read (nc may stop at its EOF).
    let mut stdin = held.stdin.take().expect("nc stdin");
    stdin
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .expect("write on the held connection");
    let mut answer = Vec::new();
    if let Some(mut stdout) = held.stdout.take() {
        let _ = std::io::Read::read_to_end(&mut stdout, &mut answer);
    }
    drop(stdin);
    let _ = held.wait();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.contains("200 OK") && answer.contains("backend 10.200.0."),
        "the connection opened before the restart got: {answer:?}"
    );

    // An endpoint leaving the slice leaves the rotation.
    service_with_slice(
        &k,
        "web",
        json!({"type": "NodePort", "clusterIP": "10.96.0.10", "nodePort": 30080}),
        &BACKENDS[..2],
    );
    let two: BTreeSet<String> = BACKENDS[..2]
        .iter()
        .map(|ip| format!("backend {ip}"))
        .collect();
    let rotated = eventually(PATIENCE, || {
        let seen = backends_seen(&net, "http://10.96.0.10/", 20);
        (seen == two).then_some(seen)
    });
    assert_eq!(
        rotated,
        Some(two),
        "the removed endpoint still gets traffic"
    );

    // Deleted services leave no trace.
    k.kubectl_ok(&["delete", "service", "sticky", "empty"]);
    let gone = eventually(PATIENCE, || {
        net.table()
            .filter(|t| !t.contains("10.96.0.11") && !t.contains("10.96.0.12"))
    });
    assert!(
        gone.is_some(),
        "deleted services' rules remain: {:?}",
        net.table()
    );
    k.kubectl_ok(&["delete", "service", "web"]);
    let no_table = eventually(PATIENCE, || net.table().is_none().then_some(()));
    assert!(
        no_table.is_some(),
        "deleting every service must remove the table: {:?}",
        net.table()
    );
    drop(proxy);
}

#[test]
fn node_ports_with_local_traffic_policy_reach_only_this_nodes_endpoints() {
    let net = Net::new();
    let k = Kerno::up().expect("kerno up");
    service_with_slice(
        &k,
        "local",
        json!({"type": "NodePort", "clusterIP": "10.96.0.20", "nodePort": 30081,
            "externalTrafficPolicy": "Local"}),
        &BACKENDS,
    );
    service_with_slice(
        &k,
        "cluster",
        json!({"type": "NodePort", "clusterIP": "10.96.0.21", "nodePort": 30082}),
        &BACKENDS,
    );
    let _proxy = spawn_proxy(&k, &net);
    let all: BTreeSet<String> = BACKENDS.iter().map(|ip| format!("backend {ip}")).collect();
    // Cluster policy from an outside client: every endpoint, wherever it runs.
    let spread = eventually(PATIENCE, || {
        let seen: BTreeSet<String> = (0..30)
            .filter_map(|_| Net::wget(&net.client, "http://10.201.0.1:30082/").ok())
            .collect();
        (seen == all).then_some(seen)
    });
    assert_eq!(spread, Some(all), "table:\n{:?}", net.table());
    // Local policy: only the endpoint on this node, and the client's address
    // kept (no masquerade: the reply is routed back through the node).
    let seen: BTreeSet<String> = (0..15)
        .filter_map(|_| Net::wget(&net.client, "http://10.201.0.1:30081/").ok())
        .collect();
    let local: BTreeSet<String> = ["backend 10.200.0.3".to_owned()].into();
    assert_eq!(seen, local, "table:\n{:?}", net.table());
    let table = net.table().unwrap_or_default();
    let local_chain: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.contains("chain ext-default/local/tcp/80 {"))
        .take_while(|l| l.trim() != "}")
        .collect();
    assert!(
        !local_chain.is_empty(),
        "no NodePort chain for the Local service: {table}"
    );
    assert!(
        !local_chain
            .iter()
            .any(|l| l.contains("mark-for-masquerade")),
        "Local NodePort traffic must keep the client's address: {local_chain:?}"
    );
}
