//! Services end to end. Endpoints: a real kernel, simulated nodes (which give
//! pods IPs and readiness), the scheduler and `kerno-controller-endpoints`,
//! driven and checked with the real kubectl (`kubectl get
//! endpoints,endpointslices`). The proxy's nftables datapath: see
//! [`proxy`].

pub mod proxy;

use std::time::Duration;

use kerno_tests::{Kerno, PluginProcess, eventually};
use serde_json::{Value, json};

const PATIENCE: Duration = Duration::from_secs(30);

/// A kernel with one simulated node, the scheduler and the endpoints controller.
fn cluster() -> (Kerno, Vec<PluginProcess>) {
    let k = Kerno::up().expect("kerno up");
    let mut plugins = vec![
        k.spawn_plugin("kerno-node-sim", "node-sim", json!({"nodes": 1}))
            .expect("kerno-node-sim must be built (cargo build -p kerno-node-sim)"),
    ];
    let node = eventually(PATIENCE, || {
        let out = k.kubectl(&["get", "nodes", "-o", "name"]);
        (!out.stdout.is_empty()).then_some(())
    });
    assert!(node.is_some(), "the simulated node did not register");
    plugins.push(
        k.spawn_plugin("kerno-scheduler-default", "scheduler", json!({}))
            .expect("cargo build -p kerno-scheduler-default"),
    );
    plugins.push(
        k.spawn_plugin(
            "kerno-controller-endpoints",
            "controller-endpoints",
            json!({}),
        )
        .expect("cargo build -p kerno-controller-endpoints"),
    );
    (k, plugins)
}

fn apply(k: &Kerno, manifest: &Value) {
    let out = k.kubectl_stdin(&["apply", "-f", "-"], Some(&manifest.to_string()));
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn web_pod(name: &str, port: i32) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "ports": [{"name": "http", "containerPort": port}]}]},
    })
}

fn get_json(k: &Kerno, args: &[&str]) -> Option<Value> {
    let out = k.kubectl(args);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

/// `(ready ips, not-ready ips, ports)` of the Endpoints object, sorted.
fn endpoints_of(k: &Kerno, name: &str) -> Option<(Vec<String>, Vec<String>, Vec<i64>)> {
    let ep = get_json(k, &["get", "endpoints", name, "-o", "json"])?;
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    let mut ports = Vec::new();
    for subset in ep["subsets"].as_array().into_iter().flatten() {
        for a in subset["addresses"].as_array().into_iter().flatten() {
            ready.push(a["ip"].as_str().unwrap_or_default().to_owned());
        }
        for a in subset["notReadyAddresses"].as_array().into_iter().flatten() {
            not_ready.push(a["ip"].as_str().unwrap_or_default().to_owned());
        }
        for p in subset["ports"].as_array().into_iter().flatten() {
            ports.push(p["port"].as_i64().unwrap_or_default());
        }
    }
    ready.sort();
    not_ready.sort();
    ports.sort();
    Some((ready, not_ready, ports))
}

/// `(address, ready)` of every endpoint in the Service's slices, sorted.
fn slice_endpoints(k: &Kerno, service: &str) -> Option<Vec<(String, bool)>> {
    let selector = format!("kubernetes.io/service-name={service}");
    let list = get_json(k, &["get", "endpointslices", "-l", &selector, "-o", "json"])?;
    let mut out: Vec<(String, bool)> = list["items"]
        .as_array()?
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["addresses"][0].as_str().unwrap_or_default().to_owned(),
                e["conditions"]["ready"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    out.sort();
    Some(out)
}

fn pod_ip(k: &Kerno, pod: &str) -> String {
    eventually(PATIENCE, || {
        let out = k.kubectl(&["get", "pod", pod, "-o", "jsonpath={.status.podIP}"]);
        let ip = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!ip.is_empty()).then_some(ip)
    })
    .unwrap_or_else(|| panic!("pod {pod} got no IP"))
}

#[test]
fn endpoints_follow_selected_pods_readiness_and_named_ports() {
    let (k, _plugins) = cluster();
    apply(&k, &web_pod("web-1", 8080));
    apply(&k, &web_pod("web-2", 8080));
    apply(
        &k,
        &json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "db", "namespace": "default", "labels": {"app": "db"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }),
    );
    apply(
        &k,
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }),
    );
    let ip1 = pod_ip(&k, "web-1");
    let ip2 = pod_ip(&k, "web-2");
    let mut both = vec![ip1.clone(), ip2.clone()];
    both.sort();
    let want = (both.clone(), Vec::new(), vec![8080]);
    let got = eventually(PATIENCE, || endpoints_of(&k, "web").filter(|e| *e == want));
    assert_eq!(
        got,
        Some(want.clone()),
        "Endpoints of both ready pods, named port resolved"
    );
    let want_slice: Vec<(String, bool)> = both.iter().map(|ip| (ip.clone(), true)).collect();
    let got = eventually(PATIENCE, || {
        slice_endpoints(&k, "web").filter(|s| *s == want_slice)
    });
    assert_eq!(got, Some(want_slice), "the EndpointSlice lists both, ready");

    // kubectl's own view of both kinds.
    let table = k.kubectl_ok(&["get", "endpoints,endpointslices"]);
    assert!(table.contains(&ip1) && table.contains("8080"), "{table}");
    let slice = get_json(
        &k,
        &[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "json",
        ],
    )
    .expect("slices");
    let item = &slice["items"][0];
    assert_eq!(
        item["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(item["metadata"]["ownerReferences"][0]["kind"], "Service");
    assert_eq!(item["addressType"], "IPv4");

    // Readiness lost: the pod moves to notReadyAddresses / ready: false.
    k.kubectl_ok(&[
        "patch",
        "pod",
        "web-2",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#,
    ]);
    let want = (vec![ip1.clone()], vec![ip2.clone()], vec![8080]);
    let got = eventually(PATIENCE, || endpoints_of(&k, "web").filter(|e| *e == want));
    assert_eq!(got, Some(want), "a not-ready pod is kept apart");
    let mut want_slice = vec![(ip1.clone(), true), (ip2.clone(), false)];
    want_slice.sort();
    let got = eventually(PATIENCE, || {
        slice_endpoints(&k, "web").filter(|s| *s == want_slice)
    });
    assert_eq!(got, Some(want_slice));

    // A pod going away leaves the endpoints.
    k.kubectl_ok(&["delete", "pod", "web-1", "--wait=false"]);
    let want = (Vec::new(), vec![ip2.clone()], vec![8080]);
    let got = eventually(PATIENCE, || endpoints_of(&k, "web").filter(|e| *e == want));
    assert_eq!(got, Some(want), "deleted pod removed");

    // A slice deleted by hand is written again.
    k.kubectl_ok(&[
        "delete",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
    ]);
    let back = eventually(PATIENCE, || {
        slice_endpoints(&k, "web").filter(|s| *s == vec![(ip2.clone(), false)])
    });
    assert!(back.is_some(), "the controller rewrote the deleted slice");

    // Deleting the Service deletes what the controller wrote for it (owned: the GC removes it).
    let _gc = k
        .spawn_plugin("kerno-controller-gc", "controller-gc", json!({}))
        .expect("cargo build -p kerno-controller-gc");
    k.kubectl_ok(&["delete", "service", "web"]);
    let gone = eventually(PATIENCE, || {
        let slices = k.kubectl_ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "name",
        ]);
        (endpoints_of(&k, "web").is_none() && slices.trim().is_empty()).then_some(())
    });
    assert!(
        gone.is_some(),
        "Endpoints and slices outlived their Service"
    );
}

#[test]
fn selectorless_services_keep_user_endpoints_and_external_names_get_none() {
    let (k, _plugins) = cluster();
    apply(&k, &web_pod("web-1", 8080));
    apply(
        &k,
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "manual", "namespace": "default"},
            "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 80}]},
        }),
    );
    apply(
        &k,
        &json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "manual", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "192.0.2.7"}], "ports": [{"port": 9999}]}],
        }),
    );
    apply(
        &k,
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.org", "selector": {"app": "web"}},
        }),
    );
    // A managed service in the same namespace proves the controller is working.
    apply(
        &k,
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "clusterIP": "10.96.0.10", "ports": [{"port": 80, "targetPort": 8080}]},
        }),
    );
    let ip = pod_ip(&k, "web-1");
    let want = (vec![ip], Vec::new(), vec![8080]);
    assert_eq!(
        eventually(PATIENCE, || endpoints_of(&k, "web").filter(|e| *e == want)),
        Some(want)
    );
    // A resync of everything has happened by now; the user's object is intact.
    assert_eq!(
        endpoints_of(&k, "manual"),
        Some((vec!["192.0.2.7".to_owned()], Vec::new(), vec![9999])),
        "user-managed endpoints untouched"
    );
    assert_eq!(
        endpoints_of(&k, "ext"),
        None,
        "ExternalName services get no Endpoints"
    );
    assert_eq!(slice_endpoints(&k, "ext"), Some(Vec::new()), "nor slices");
    let ext_slices = k.kubectl_ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=ext",
        "-o",
        "name",
    ]);
    assert!(ext_slices.trim().is_empty(), "{ext_slices}");
}
