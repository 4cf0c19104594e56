//! The kubelet against a real kernel, without node drivers (the real
//! containerd/bridge tests come with the drivers): it registers its Node (NotReady: no runtime),
//! renews its Lease and serves its log endpoint. (Pods wait for the runtime:
//! the kubelet adopts existing sandboxes before it runs anything.)

use std::time::Duration;

use kerno_tests::{Kerno, eventually};

#[tokio::test(flavor = "multi_thread")]
async fn kubelet_registers_node_renews_lease_and_serves_logs() {
    let k = Kerno::up().expect("kerno up");
    let root = tempfile::tempdir().expect("tempdir");
    let node = "kubelet-e2e";
    let _kubelet = k
        .spawn_plugin(
            "kerno-kubelet",
            "kubelet",
            serde_json::json!({
                "nodeName": node,
                // No driver listens here: the kubelet must still register and report.
                "runtimeEndpoint": format!("unix://{}/absent-runtime.sock", root.path().display()),
                "networkEndpoint": format!("unix://{}/absent-network.sock", root.path().display()),
                "rootDir": root.path().join("state"),
                "nodeIP": "127.0.0.1",
                "kubeletPort": 0,
                "podCIDR": "10.244.7.0/24"
            }),
        )
        .expect("kerno-kubelet must be built (cargo build -p kerno-kubelet)");

    let json = eventually(Duration::from_secs(30), || {
        let out = k.kubectl(&["get", "node", node, "-o", "json"]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .expect("the kubelet registers its Node");
    let n: serde_json::Value = serde_json::from_str(&json).expect("node json");
    assert_eq!(n["spec"]["podCIDR"], "10.244.7.0/24", "{json}");
    let conditions = n["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ready = conditions
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap_or_default();
    // Without a runtime the node is NotReady, as in Kubernetes.
    assert_eq!(ready["status"], "False", "{json}");
    assert_eq!(ready["message"], "container runtime is down", "{json}");
    for t in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert!(
            conditions
                .iter()
                .any(|c| c["type"] == t && c["status"] == "False"),
            "{t}: {json}"
        );
    }
    let addresses = n["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        addresses
            .iter()
            .any(|a| a["type"] == "InternalIP" && a["address"] == "127.0.0.1"),
        "{json}"
    );
    assert!(addresses.iter().any(|a| a["type"] == "Hostname"), "{json}");
    assert_eq!(n["status"]["capacity"]["pods"], "110", "{json}");
    assert!(
        n["status"]["capacity"]["cpu"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{json}"
    );
    assert!(
        n["status"]["nodeInfo"]["kubeletVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1.33.")),
        "{json}"
    );
    let port = n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .unwrap_or(0);
    assert!(port > 0, "kubelet port reported: {json}");
    let table = k.kubectl_ok(&["get", "nodes"]);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(node) && l.contains(" NotReady ")),
        "{table}"
    );

    let holder = eventually(Duration::from_secs(30), || {
        let out = k.kubectl(&[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            node,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
    .expect("the kubelet creates its Lease");
    assert_eq!(holder, node);

    // The log endpoint answers (404 for a container it does not run).
    let url = format!("http://127.0.0.1:{port}/containerLogs/default/nope/c");
    let resp = reqwest::get(&url)
        .await
        .expect("kubelet log server reachable");
    assert_eq!(resp.status().as_u16(), 404);
}
