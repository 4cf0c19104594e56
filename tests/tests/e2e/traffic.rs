//! Services on a real node, as the Kubernetes tutorials use them: a
//! Deployment exposed with `kubectl expose`, reached from another pod by its
//! DNS name and by its ClusterIP, with requests spread over both replicas.
//!
//! The node (kubelet, cri-containerd on a private containerd, cni-bridge)
//! lives in a network namespace of the test's; `proxy-ipvs` programs its
//! nftables table there (config `netns`) and `dns` listens there on the
//! bridge's gateway address, which the kubelet writes into pods' resolv.conf
//! (`clusterDNS`). Nothing is programmed in the root namespace.

use std::collections::BTreeSet;
use std::time::Duration;

use kerno_tests::containerd::Containerd;
use kerno_tests::netns::TestNetns;
use kerno_tests::node::{node_ready_within, start_node_with};
use kerno_tests::{Kerno, eventually};
use serde_json::json;

const NODE: &str = "svc-node";
const POD_CIDR: &str = "10.244.6.0/24";
const GATEWAY: &str = "10.244.6.1";
const CLUSTER_IP: &str = "10.96.0.50";

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_reaches_an_exposed_deployment_by_name_and_cluster_ip_on_every_replica() {
    let k = Kerno::up().expect("kerno up");
    let containerd = Containerd::start().expect("a private containerd");
    let dir = tempfile::Builder::new()
        .prefix("kerno-traffic-")
        .tempdir()
        .expect("temp dir");
    let ns = TestNetns::create().expect("the node's network namespace");
    let netns = ns.path();
    let node = start_node_with(
        &k,
        &containerd,
        dir.path(),
        NODE,
        POD_CIDR,
        "127.0.0.1",
        ns,
        json!({"clusterDNS": GATEWAY}),
    );
    let mut plugins = Vec::new();
    for (binary, name, config) in [
        ("kerno-scheduler-default", "scheduler-default", json!({})),
        (
            "kerno-controller-replicaset",
            "controller-replicaset",
            json!({}),
        ),
        (
            "kerno-controller-deployment",
            "controller-deployment",
            json!({}),
        ),
        (
            "kerno-controller-endpoints",
            "controller-endpoints",
            json!({}),
        ),
        (
            "kerno-proxy-ipvs",
            "proxy-ipvs",
            json!({"netns": netns, "nodeName": NODE, "coalesceMs": 50, "clusterCidr": POD_CIDR}),
        ),
        (
            "kerno-dns",
            "dns",
            json!({"listen": "0.0.0.0:53", "netns": netns}),
        ),
    ] {
        plugins.push(
            k.spawn_plugin(binary, name, config)
                .unwrap_or_else(|e| panic!("{binary}: {e}")),
        );
    }
    assert!(
        node_ready_within(&k, NODE, Duration::from_secs(60)),
        "the node never became Ready"
    );

    k.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=2",
        "--",
        "sh",
        "-c",
        "mkdir -p /www; hostname > /www/index.html; exec httpd -f -p 8080 -h /www",
    ]);
    k.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    let exposed = k.kubectl_ok(&[
        "expose",
        "deployment",
        "web",
        "--port",
        "80",
        "--target-port",
        "8080",
        "--cluster-ip",
        CLUSTER_IP,
    ]);
    assert!(exposed.contains("service/web exposed"), "{exposed}");
    let replicas: BTreeSet<String> = k
        .kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(replicas.len(), 2, "{replicas:?}");

    k.kubectl_ok(&[
        "run",
        "client",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sleep",
        "3600",
    ]);
    let running = eventually(Duration::from_secs(60), || {
        let out = k.kubectl(&["get", "pod", "client", "-o", "jsonpath={.status.phase}"]);
        (out.stdout == b"Running").then_some(())
    });
    assert!(
        running.is_some(),
        "{}",
        k.kubectl_ok(&["describe", "pod", "client"])
    );

    let fetch = |url: &str| {
        let out = k.kubectl(&[
            "exec", "client", "--", "busybox", "timeout", "5", "wget", "-q", "-O-", url,
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    // By name: the pod's resolv.conf points at the cluster DNS, whose
    // search path completes `web` too.
    let resolv = k.kubectl_ok(&["exec", "client", "--", "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.contains(&format!("nameserver {GATEWAY}")),
        "{resolv}"
    );
    let looked_up = eventually(Duration::from_secs(30), || {
        let out = k.kubectl(&[
            "exec",
            "client",
            "--",
            "nslookup",
            "web.default.svc.cluster.local",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains(CLUSTER_IP).then_some(text)
    });
    assert!(looked_up.is_some(), "nslookup never answered {CLUSTER_IP}");
    let first = eventually(Duration::from_secs(30), || {
        fetch("http://web.default.svc.cluster.local/")
    })
    .expect("the Service never answered by name");
    assert!(replicas.contains(&first), "{first} is not a replica");
    // Spread: both replicas answer, by name and by ClusterIP.
    let mut seen = BTreeSet::new();
    for i in 0..40 {
        let url = if i % 2 == 0 {
            "http://web.default.svc.cluster.local/".to_owned()
        } else {
            format!("http://{CLUSTER_IP}/")
        };
        if let Some(name) = fetch(&url) {
            seen.insert(name);
        }
        if seen == replicas {
            break;
        }
    }
    assert_eq!(seen, replicas, "requests did not reach every replica");
    drop(plugins);
    drop(node);
}
