//! The default scheduler and simulated nodes end to end: a real kernel,
//! `kerno-node-sim` and `kerno-scheduler-default` processes, pods created
//! with the real kubectl.

use std::time::Duration;

use kerno_tests::{Kerno, PluginProcess, eventually};
use serde_json::json;

const PATIENCE: Duration = Duration::from_secs(30);

/// A kernel with the given node-sim groups (plugin name, config) and a scheduler.
fn cluster(sims: &[(&str, serde_json::Value)]) -> (Kerno, Vec<PluginProcess>) {
    let k = Kerno::up().expect("kerno up");
    let mut plugins = Vec::new();
    let mut expected = 0;
    for (name, config) in sims {
        expected += config["nodes"].as_u64().unwrap_or(1);
        plugins.push(
            k.spawn_plugin("kerno-node-sim", name, config.clone())
                .expect("kerno-node-sim must be built (cargo build -p kerno-node-sim)"),
        );
    }
    // The scheduler starts once the nodes are there, so the first decisions see them all.
    let nodes = eventually(PATIENCE, || {
        let out = k.kubectl(&["get", "nodes", "-o", "name"]);
        let n = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
        (n == expected).then_some(n)
    });
    assert_eq!(nodes, Some(expected), "simulated nodes did not register");
    plugins.push(
        k.spawn_plugin("kerno-scheduler-default", "scheduler", json!({}))
            .expect(
                "kerno-scheduler-default must be built (cargo build -p kerno-scheduler-default)",
            ),
    );
    (k, plugins)
}

fn apply(k: &Kerno, manifest: &serde_json::Value) {
    let text = manifest.to_string();
    let out = k.kubectl_stdin(&["apply", "-f", "-"], Some(&text));
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pod(name: &str, labels: serde_json::Value, extra_spec: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({ "containers": [{ "name": "c", "image": "busybox" }] });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in extra {
            spec.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "default", "labels": labels },
        "spec": spec,
    })
}

fn jsonpath(k: &Kerno, pod: &str, path: &str) -> String {
    let out = k.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits for the pod to be bound; returns its node.
fn bound_node(k: &Kerno, pod: &str) -> String {
    eventually(PATIENCE, || {
        Some(jsonpath(k, pod, "{.spec.nodeName}")).filter(|n| !n.is_empty())
    })
    .unwrap_or_else(|| {
        panic!(
            "pod {pod} was not bound: {}",
            k.kubectl_ok(&["describe", "pod", pod])
        )
    })
}

/// Asserts the pod stays unbound for a while and describe shows `reason`.
fn stays_pending_because(k: &Kerno, pod: &str, reason: &str) -> String {
    let describe = eventually(PATIENCE, || {
        let d = k.kubectl_ok(&["describe", "pod", pod]);
        (d.contains("FailedScheduling") && d.contains(reason)).then_some(d)
    })
    .unwrap_or_else(|| {
        panic!(
            "no FailedScheduling with {reason:?}: {}",
            k.kubectl_ok(&["describe", "pod", pod])
        )
    });
    assert_eq!(jsonpath(k, pod, "{.spec.nodeName}"), "", "{pod} got bound");
    // The kernel leaves status.phase unset on create (Kubernetes says Pending).
    let phase = jsonpath(k, pod, "{.status.phase}");
    assert!(phase.is_empty() || phase == "Pending", "{pod} is {phase}");
    describe
}

#[test]
fn pods_get_bound_and_run_on_simulated_nodes() {
    let (k, _plugins) = cluster(&[("sim", json!({ "nodes": 3 }))]);
    let nodes = k.kubectl_ok(&["get", "nodes"]);
    assert!(
        nodes.contains("sim-node-0") && nodes.contains("Ready"),
        "{nodes}"
    );
    k.kubectl_ok(&["run", "web", "--image=busybox"]);
    let node = bound_node(&k, "web");
    assert!(node.starts_with("sim-node-"), "{node}");
    let running = eventually(PATIENCE, || {
        (jsonpath(&k, "web", "{.status.phase}") == "Running").then_some(())
    });
    assert!(
        running.is_some(),
        "{}",
        k.kubectl_ok(&["describe", "pod", "web"])
    );
    let ip = jsonpath(&k, "web", "{.status.podIP}");
    assert!(
        ip.starts_with("10.6"),
        "pod IP {ip} not from a sim node CIDR"
    );
    let ready = jsonpath(
        &k,
        "web",
        "{.status.conditions[?(@.type==\"Ready\")].status}",
    );
    assert_eq!(ready, "True");
    let events = k.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=web",
    ]);
    assert!(events.contains("Scheduled"), "{events}");
    // Leases are renewed for every node.
    let leases = eventually(PATIENCE, || {
        let l = k.kubectl_ok(&["get", "leases", "-n", "kube-node-lease", "-o", "name"]);
        (l.lines().count() == 3).then_some(l)
    });
    assert!(leases.is_some(), "node leases missing");
    // Deleting the pod: the simulated kubelet finishes the deletion.
    k.kubectl_ok(&["delete", "pod", "web", "--wait=false"]);
    let gone = eventually(PATIENCE, || {
        let out = k.kubectl(&["get", "pod", "web"]);
        (!out.status.success()).then_some(())
    });
    assert!(gone.is_some(), "pod web was not deleted");
}

#[test]
fn node_selector_and_required_node_affinity_are_respected() {
    let (k, _plugins) = cluster(&[
        (
            "ssd",
            json!({ "nodes": 2, "namePrefix": "ssd-", "labels": { "disk": "ssd" } }),
        ),
        (
            "hdd",
            json!({ "nodes": 2, "namePrefix": "hdd-", "labels": { "disk": "hdd" } }),
        ),
    ]);
    apply(
        &k,
        &pod(
            "fast",
            json!({}),
            json!({ "nodeSelector": { "disk": "ssd" } }),
        ),
    );
    let affinity = json!({ "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{ "matchExpressions": [{ "key": "disk", "operator": "NotIn", "values": ["ssd"] }] }]
    } } } });
    apply(&k, &pod("slow", json!({}), affinity));
    assert!(bound_node(&k, "fast").starts_with("ssd-"));
    assert!(bound_node(&k, "slow").starts_with("hdd-"));
    apply(
        &k,
        &pod(
            "nowhere",
            json!({}),
            json!({ "nodeSelector": { "disk": "nvme" } }),
        ),
    );
    stays_pending_because(
        &k,
        "nowhere",
        "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector.",
    );
}

#[test]
fn pod_anti_affinity_spreads_pods_with_the_same_label() {
    let (k, _plugins) = cluster(&[("sim", json!({ "nodes": 2 }))]);
    let anti = json!({ "affinity": { "podAntiAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": { "matchLabels": { "app": "db" } },
        "topologyKey": "kubernetes.io/hostname"
    }] } } });
    apply(&k, &pod("db-0", json!({ "app": "db" }), anti.clone()));
    apply(&k, &pod("db-1", json!({ "app": "db" }), anti.clone()));
    let (a, b) = (bound_node(&k, "db-0"), bound_node(&k, "db-1"));
    assert_ne!(a, b, "both db pods on {a}");
    apply(&k, &pod("db-2", json!({ "app": "db" }), anti));
    // Both its own rule and the placed pods' rules (symmetry) reject it.
    stays_pending_because(&k, "db-2", "anti-affinity rules");
}

#[test]
fn taints_are_avoided_unless_tolerated() {
    let (k, _plugins) = cluster(&[(
        "gpu",
        json!({ "nodes": 2, "namePrefix": "gpu-",
                "taints": [{ "key": "dedicated", "value": "gpu", "effect": "NoSchedule" }] }),
    )]);
    apply(&k, &pod("plain", json!({}), json!({})));
    stays_pending_because(
        &k,
        "plain",
        "2 node(s) had untolerated taint {dedicated: gpu}",
    );
    let toleration = json!({ "tolerations": [{ "key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule" }] });
    apply(&k, &pod("tolerant", json!({}), toleration));
    assert!(bound_node(&k, "tolerant").starts_with("gpu-"));
}

#[test]
fn topology_spread_keeps_zones_within_max_skew() {
    let (k, _plugins) = cluster(&[("sim", json!({ "nodes": 4, "zones": 2 }))]);
    let spread = json!({ "topologySpreadConstraints": [{
        "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": { "matchLabels": { "app": "spread" } }
    }] });
    let mut zones = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..6 {
        let name = format!("spread-{i}");
        apply(&k, &pod(&name, json!({ "app": "spread" }), spread.clone()));
        let node = bound_node(&k, &name);
        let zone = k.kubectl_ok(&[
            "get",
            "node",
            &node,
            "-o",
            "jsonpath={.metadata.labels.topology\\.kubernetes\\.io/zone}",
        ]);
        *zones.entry(zone.trim().to_owned()).or_insert(0) += 1;
        let max = zones.values().max().copied().unwrap_or(0);
        let min = if zones.len() < 2 {
            0
        } else {
            zones.values().min().copied().unwrap_or(0)
        };
        assert!(max - min <= 1, "skew over 1 after {name}: {zones:?}");
    }
    assert_eq!(zones.values().copied().collect::<Vec<_>>(), vec![3, 3]);
}

#[test]
fn a_pod_too_big_stays_pending_and_describe_says_why() {
    let (k, _plugins) = cluster(&[("sim", json!({ "nodes": 3, "cpu": "2", "memory": "4Gi" }))]);
    let big = json!({ "containers": [{ "name": "c", "image": "busybox",
        "resources": { "requests": { "cpu": "4" } } }] });
    apply(&k, &pod("big", json!({}), big));
    let describe = stays_pending_because(&k, "big", "0/3 nodes are available: 3 Insufficient cpu.");
    assert!(describe.contains("PodScheduled"), "{describe}");
    let reason = jsonpath(
        &k,
        "big",
        "{.status.conditions[?(@.type==\"PodScheduled\")].reason}",
    );
    assert_eq!(reason, "Unschedulable");
}

#[test]
fn a_high_priority_pod_preempts_a_low_priority_one() {
    let (k, _plugins) = cluster(&[("sim", json!({ "nodes": 1, "cpu": "2", "memory": "4Gi" }))]);
    for (name, value) in [("low", 10), ("high", 1000)] {
        apply(
            &k,
            &json!({ "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": { "name": name }, "value": value }),
        );
    }
    let classes = k.kubectl_ok(&["get", "priorityclass"]);
    assert!(
        classes.contains("low") && classes.contains("high"),
        "{classes}"
    );
    let requests = |class: &str| {
        json!({ "priorityClassName": class, "containers": [{ "name": "c", "image": "busybox",
        "resources": { "requests": { "cpu": "2" } } }] })
    };
    apply(&k, &pod("victim", json!({}), requests("low")));
    assert_eq!(jsonpath(&k, "victim", "{.spec.priority}"), "10");
    let node = bound_node(&k, "victim");
    apply(&k, &pod("vip", json!({}), requests("high")));
    assert_eq!(jsonpath(&k, "vip", "{.spec.priority}"), "1000");
    assert_eq!(bound_node(&k, "vip"), node);
    let gone = eventually(PATIENCE, || {
        (!k.kubectl(&["get", "pod", "victim"]).status.success()).then_some(())
    });
    assert!(gone.is_some(), "the low-priority pod was not preempted");
}
