//! The bridge network driver (`kerno-cni-bridge`) against the real kernel's
//! netlink: every "node" and "pod" is a network namespace this test creates
//! (no route off the machine), the driver runs inside its node's namespace in
//! standalone mode (a namespace cannot reach the kernel's loopback address;
//! only the kubelet talks to a network driver), and everything is removed on
//! drop, which each test checks at its end.

use std::time::Duration;

use kerno_proto::network::v1 as pb;
use kerno_proto::network::v1::network_client::NetworkClient;
use kerno_tests::eventually;
use kerno_tests::netns::{NetnsPlugin, TestNetns, netns_names, unix_channel};
use tonic::transport::Channel;

/// A node: its namespace with the driver inside, and a client of the driver.
struct Node {
    client: NetworkClient<Channel>,
    driver: NetnsPlugin,
    ns: TestNetns,
    state_dir: tempfile::TempDir,
    _sockets: tempfile::TempDir,
}

impl Node {
    async fn start(name: &str, pod_cidr: &str) -> Node {
        let ns = TestNetns::create().expect("node netns");
        let state_dir = tempfile::tempdir().expect("state dir");
        let sockets = tempfile::tempdir().expect("socket dir");
        let config = serde_json::json!({
            "bridge": "kerno0",
            "podCIDR": pod_cidr,
            "nodeName": name,
            "stateDir": state_dir.path(),
            "hairpin": true,
            "standalone": true,
        });
        let driver = ns
            .spawn_plugin(
                "kerno-cni-bridge",
                "cni-bridge",
                config,
                sockets.path(),
                None,
            )
            .expect("start kerno-cni-bridge in the node's namespace");
        let client = NetworkClient::new(unix_channel(driver.socket()).await.expect("channel"));
        Node {
            client,
            driver,
            ns,
            state_dir,
            _sockets: sockets,
        }
    }

    async fn reconnect(&mut self) {
        self.client =
            NetworkClient::new(unix_channel(self.driver.socket()).await.expect("channel"));
    }

    async fn set_up(&mut self, sandbox: &str, pod: &TestNetns) -> pb::SetUpResponse {
        self.client
            .set_up(pb::SetUpRequest {
                sandbox_id: sandbox.into(),
                netns_path: pod.path().display().to_string(),
                pod: Some(pb::PodRef {
                    namespace: "default".into(),
                    name: sandbox.into(),
                    uid: format!("uid-{sandbox}"),
                }),
                interface_name: String::new(),
            })
            .await
            .unwrap_or_else(|e| panic!("SetUp {sandbox}: {e}"))
            .into_inner()
    }

    async fn tear_down(&mut self, sandbox: &str, pod: &TestNetns) {
        self.client
            .tear_down(pb::TearDownRequest {
                sandbox_id: sandbox.into(),
                netns_path: pod.path().display().to_string(),
                pod: None,
            })
            .await
            .unwrap_or_else(|e| panic!("TearDown {sandbox}: {e}"));
    }

    async fn status(&mut self, sandbox: &str) -> Result<pb::SetUpResponse, tonic::Status> {
        self.client
            .status(pb::StatusRequest {
                sandbox_id: sandbox.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }
}

fn ip_of(resp: &pb::SetUpResponse) -> String {
    assert_eq!(resp.ips.len(), 1, "{resp:?}");
    resp.ips[0].clone()
}

/// The interface's IPv4 addresses with prefix, from `ip -o -4 addr`.
fn addresses(ns: &TestNetns, dev: &str) -> Vec<String> {
    ns.exec_ok(&["ip", "-o", "-4", "addr", "show", "dev", dev])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next().map(str::to_owned)
        })
        .collect()
}

fn link_exists(ns: &TestNetns, dev: &str) -> bool {
    ns.exec(&["ip", "link", "show", "dev", dev])
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The host end's name the driver derives from a sandbox id (FNV-1a).
fn host_veth(sandbox: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for b in sandbox.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("kv{hash:08x}")
}

/// Serves `text` over HTTP on port 8080 inside `pod`.
fn serve_http(
    pod: &TestNetns,
    text: &str,
) -> (kerno_tests::netns::BackgroundProcess, tempfile::TempDir) {
    let root = tempfile::tempdir().expect("www dir");
    std::fs::write(root.path().join("index.html"), text).expect("index.html");
    let root_path = root.path().display().to_string();
    let server = pod
        .spawn(&["busybox", "httpd", "-f", "-p", "8080", "-h", &root_path])
        .expect("busybox httpd (apt-get install busybox-static)");
    (server, root)
}

/// Fetches `http://ip:8080/` from inside `from`, retrying while the server starts.
fn fetch(from: &TestNetns, ip: &str) -> Option<String> {
    let url = format!("http://{ip}:8080/index.html");
    eventually(Duration::from_secs(10), || {
        from.exec(&["busybox", "wget", "-q", "-O-", &url])
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    })
}

fn assert_gone(names: &[String]) {
    let left = netns_names();
    for n in names {
        assert!(!left.contains(n), "namespace {n} left behind: {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_on_one_node_get_addresses_and_reach_each_other() {
    let mut node = Node::start("node-a", "10.244.0.0/24").await;
    let pod1 = TestNetns::create().expect("pod netns");
    let pod2 = TestNetns::create().expect("pod netns");
    let names = vec![
        node.ns.name().to_owned(),
        pod1.name().to_owned(),
        pod2.name().to_owned(),
    ];

    let version = node
        .client
        .version(pb::VersionRequest {})
        .await
        .expect("version")
        .into_inner();
    assert_eq!(version.driver_name, "cni-bridge");

    // The bridge holds the gateway, the first host of the pod CIDR.
    assert_eq!(addresses(&node.ns, "kerno0"), ["10.244.0.1/24"]);
    assert_eq!(
        node.ns
            .exec_ok(&["cat", "/proc/sys/net/ipv4/ip_forward"])
            .unwrap()
            .trim(),
        "1",
        "forwarding is on inside the node's namespace"
    );

    let r1 = node.set_up("sandbox-one", &pod1).await;
    let r2 = node.set_up("sandbox-two", &pod2).await;
    let (ip1, ip2) = (ip_of(&r1), ip_of(&r2));
    assert_ne!(ip1, ip2);
    for (r, ip) in [(&r1, &ip1), (&r2, &ip2)] {
        assert!(ip.starts_with("10.244.0.") && ip != "10.244.0.1", "{r:?}");
        assert_eq!(r.gateway, "10.244.0.1");
        assert_eq!(r.interface_name, "eth0");
    }
    assert_eq!(addresses(&pod1, "eth0"), [format!("{ip1}/24")]);
    let routes = pod1.exec_ok(&["ip", "-4", "route"]).unwrap();
    assert!(
        routes.contains("default via 10.244.0.1 dev eth0"),
        "{routes}"
    );
    let lo = pod1.exec_ok(&["ip", "link", "show", "lo"]).unwrap();
    assert!(lo.contains("UP"), "{lo}");

    // The host end is on the bridge, in hairpin mode.
    let port = node
        .ns
        .exec_ok(&["ip", "-d", "link", "show", &host_veth("sandbox-one")])
        .unwrap();
    assert!(port.contains("master kerno0"), "{port}");
    assert!(port.contains("hairpin on"), "{port}");

    // SetUp is idempotent; Status reports the same address.
    let again = node.set_up("sandbox-one", &pod1).await;
    assert_eq!(ip_of(&again), ip1);
    assert_eq!(addresses(&pod1, "eth0"), [format!("{ip1}/24")]);
    assert_eq!(
        ip_of(&node.status("sandbox-one").await.expect("status")),
        ip1
    );

    // Pod to pod: ping and HTTP.
    pod1.exec_ok(&["busybox", "ping", "-c", "1", "-W", "3", &ip2])
        .expect("pod1 pings pod2");
    let (_server, _root) = serve_http(&pod2, "hello from pod two");
    assert_eq!(fetch(&pod1, &ip2).as_deref(), Some("hello from pod two"));
    // Pod to itself through its own address (hairpin is for the bridge path
    // a service proxy takes; the pod's own address must answer too).
    assert_eq!(fetch(&pod2, &ip2).as_deref(), Some("hello from pod two"));

    // TearDown removes the veth (both ends) and frees the address.
    node.tear_down("sandbox-one", &pod1).await;
    assert!(
        !link_exists(&node.ns, &host_veth("sandbox-one")),
        "host end left"
    );
    assert!(!link_exists(&pod1, "eth0"), "pod end left");
    let status = node
        .status("sandbox-one")
        .await
        .expect_err("no address after TearDown");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status}");
    node.tear_down("sandbox-one", &pod1).await; // again: still fine
    // The freed address goes to the next pod.
    let pod3 = TestNetns::create().expect("pod netns");
    assert_eq!(ip_of(&node.set_up("sandbox-three", &pod3).await), ip1);

    // Bad requests are refused, not crashed on.
    let bad = node
        .client
        .set_up(pb::SetUpRequest {
            sandbox_id: "sandbox-four".into(),
            netns_path: "/run/netns/does-not-exist-kt".into(),
            ..Default::default()
        })
        .await
        .expect_err("SetUp into a missing namespace fails");
    assert!(bad.message().contains("does-not-exist-kt"), "{bad}");
    assert!(
        node.status("sandbox-four").await.is_err(),
        "a failed SetUp keeps no address"
    );

    let mut names = names;
    names.push(pod3.name().to_owned());
    drop((node, pod1, pod2, pod3));
    assert_gone(&names);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_driver_keeps_its_allocations() {
    let mut node = Node::start("node-a", "10.244.0.0/24").await;
    let pod1 = TestNetns::create().expect("pod netns");
    let pod2 = TestNetns::create().expect("pod netns");
    let pod3 = TestNetns::create().expect("pod netns");
    let ip1 = ip_of(&node.set_up("sb-1", &pod1).await);
    let ip2 = ip_of(&node.set_up("sb-2", &pod2).await);

    node.driver.restart().expect("restart the driver");
    node.reconnect().await;
    assert_eq!(
        ip_of(&node.status("sb-1").await.expect("status after restart")),
        ip1
    );
    assert_eq!(
        ip_of(&node.set_up("sb-2", &pod2).await),
        ip2,
        "same address after restart"
    );
    assert_eq!(
        addresses(&pod2, "eth0"),
        [format!("{ip2}/24")],
        "no second address"
    );
    let ip3 = ip_of(&node.set_up("sb-3", &pod3).await);
    assert!(ip3 != ip1 && ip3 != ip2, "{ip3} is held by another sandbox");

    node.tear_down("sb-1", &pod1).await;
    node.driver.kill9().expect("kill");
    node.driver.restart().expect("restart the driver");
    node.reconnect().await;
    assert_eq!(
        node.status("sb-1")
            .await
            .expect_err("released before the restart")
            .code(),
        tonic::Code::NotFound
    );
    let files: Vec<String> = std::fs::read_dir(node.state_dir.path().join("allocations"))
        .expect("allocations dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let mut files = files;
    files.sort();
    assert_eq!(files, ["sb-2.json", "sb-3.json"], "no leaked allocation");

    let names = [node.ns.name(), pod1.name(), pod2.name(), pod3.name()].map(str::to_owned);
    drop((node, pod1, pod2, pod3));
    assert_gone(&names);
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_on_two_nodes_reach_each_other_through_synced_routes() {
    let root_forwarding =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default();
    let mut a = Node::start("node-a", "10.244.0.0/24").await;
    let mut b = Node::start("node-b", "10.244.1.0/24").await;
    // The "wire" between the nodes: a veth pair from A's namespace into B's.
    a.ns.exec_ok(&[
        "ip",
        "link",
        "add",
        "wire-a",
        "type",
        "veth",
        "peer",
        "name",
        "wire-b",
        "netns",
        b.ns.name(),
    ])
    .expect("wire between the nodes");
    a.ns.exec_ok(&["ip", "addr", "add", "192.168.77.1/30", "dev", "wire-a"])
        .unwrap();
    a.ns.exec_ok(&["ip", "link", "set", "wire-a", "up"])
        .unwrap();
    b.ns.exec_ok(&["ip", "addr", "add", "192.168.77.2/30", "dev", "wire-b"])
        .unwrap();
    b.ns.exec_ok(&["ip", "link", "set", "wire-b", "up"])
        .unwrap();

    let nodes = vec![
        pb::NodeRoute {
            node_name: "node-a".into(),
            pod_cidr: "10.244.0.0/24".into(),
            node_ip: "192.168.77.1".into(),
        },
        pb::NodeRoute {
            node_name: "node-b".into(),
            pod_cidr: "10.244.1.0/24".into(),
            node_ip: "192.168.77.2".into(),
        },
        // Not IPv4: skipped, not an error.
        pb::NodeRoute {
            node_name: "node-v6".into(),
            pod_cidr: "fd00:1::/64".into(),
            node_ip: "fd00::3".into(),
        },
    ];
    for node in [&mut a, &mut b] {
        node.client
            .sync_routes(pb::SyncRoutesRequest {
                nodes: nodes.clone(),
            })
            .await
            .expect("SyncRoutes");
    }
    let routes_a = a.ns.exec_ok(&["ip", "-4", "route"]).unwrap();
    assert!(
        routes_a.contains("10.244.1.0/24 via 192.168.77.2"),
        "{routes_a}"
    );
    assert!(
        !routes_a.contains("10.244.0.0/24 via"),
        "no route to itself: {routes_a}"
    );

    let pod_a = TestNetns::create().expect("pod netns");
    let pod_b = TestNetns::create().expect("pod netns");
    let ip_a = ip_of(&a.set_up("sb-on-a", &pod_a).await);
    let ip_b = ip_of(&b.set_up("sb-on-b", &pod_b).await);
    assert!(
        ip_a.starts_with("10.244.0.") && ip_b.starts_with("10.244.1."),
        "{ip_a} {ip_b}"
    );

    let (_server, _root) = serve_http(&pod_b, "hello across nodes");
    assert_eq!(fetch(&pod_a, &ip_b).as_deref(), Some("hello across nodes"));

    // A node that went away: its route is removed, others stay untouched.
    a.client
        .sync_routes(pb::SyncRoutesRequest {
            nodes: nodes[..1].to_vec(),
        })
        .await
        .expect("SyncRoutes");
    let routes_a = a.ns.exec_ok(&["ip", "-4", "route"]).unwrap();
    assert!(
        !routes_a.contains("10.244.1.0/24"),
        "stale route removed: {routes_a}"
    );
    assert!(
        routes_a.contains("192.168.77.0/30 dev wire-a"),
        "{routes_a}"
    );
    let failed = pod_a
        .exec(&["busybox", "ping", "-c", "1", "-W", "1", &ip_b])
        .expect("ping");
    assert!(!failed.status.success(), "no route, no reply");

    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_default(),
        root_forwarding,
        "the root namespace's forwarding setting is untouched"
    );
    let names = [a.ns.name(), b.ns.name(), pod_a.name(), pod_b.name()].map(str::to_owned);
    drop((a, b, pod_a, pod_b));
    assert_gone(&names);
}
