//! The core controllers (garbage collector, namespace, node lifecycle,
//! ServiceAccount) as real plugin processes against a real kernel, driven and
//! checked with the real `kubectl`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kerno_tests::{Kerno, eventually};

const PATIENCE: Duration = Duration::from_secs(30);

/// `kubectl get ... -o jsonpath=...`, `None` when it fails (e.g. NotFound).
fn jsonpath(k: &Kerno, args: &[&str], path: &str) -> Option<String> {
    let mut all: Vec<&str> = vec!["get"];
    all.extend_from_slice(args);
    let output = format!("jsonpath={path}");
    all.extend_from_slice(&["-o", &output]);
    let out = k.kubectl(&all);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn exists(k: &Kerno, args: &[&str]) -> bool {
    jsonpath(k, args, "{.metadata.uid}").is_some()
}

fn apply(k: &Kerno, manifest: &str) {
    let out = k.kubectl_stdin(&["apply", "-f", "-"], Some(manifest));
    assert!(
        out.status.success(),
        "kubectl apply failed: {}{}\n{manifest}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn uid(k: &Kerno, args: &[&str]) -> String {
    let uid = jsonpath(k, args, "{.metadata.uid}").unwrap_or_default();
    assert!(!uid.is_empty(), "no uid for {args:?}");
    uid
}

/// A Deployment object `name` owning a ReplicaSet `name-rs` owning two pods
/// `name-rs-0/1`, all in `default`, made by hand with ownerReferences.
fn owner_chain(k: &Kerno, name: &str) {
    apply(
        k,
        &format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: busybox}}]}}
"#
        ),
    );
    let deploy_uid = uid(k, &["deployment", name, "-n", "default"]);
    apply(
        k,
        &format!(
            r#"
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: {name}-rs
  namespace: default
  ownerReferences:
  - {{apiVersion: apps/v1, kind: Deployment, name: {name}, uid: {deploy_uid}, controller: true, blockOwnerDeletion: true}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: busybox}}]}}
"#
        ),
    );
    let rs_uid = uid(k, &["replicaset", &format!("{name}-rs"), "-n", "default"]);
    for i in 0..2 {
        apply(
            k,
            &format!(
                r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}-rs-{i}
  namespace: default
  labels: {{app: {name}}}
  ownerReferences:
  - {{apiVersion: apps/v1, kind: ReplicaSet, name: {name}-rs, uid: {rs_uid}, controller: true, blockOwnerDeletion: true}}
spec: {{containers: [{{name: c, image: busybox}}]}}
"#
            ),
        );
    }
}

fn pod_names(k: &Kerno, selector: &str) -> String {
    jsonpath(
        k,
        &["pods", "-n", "default", "-l", selector],
        "{.items[*].metadata.name}",
    )
    .unwrap_or_default()
}

#[test]
fn gc_background_foreground_and_orphan_deletion() {
    let k = Kerno::up().expect("kerno up");
    let _gc = k
        .spawn_plugin(
            "kerno-controller-gc",
            "controller-gc",
            serde_json::json!({"recheckMillis": 200}),
        )
        .expect("the gc plugin (build kerno-controller-gc)");

    // Background (kubectl's default): the owner goes at once, then its chain.
    owner_chain(&k, "bg");
    k.kubectl_ok(&["delete", "deployment", "bg", "-n", "default"]);
    let gone = eventually(PATIENCE, || {
        (!exists(&k, &["replicaset", "bg-rs", "-n", "default"])
            && pod_names(&k, "app=bg").trim().is_empty())
        .then_some(())
    });
    assert!(
        gone.is_some(),
        "background deletion left dependents: rs={:?} pods={:?}",
        exists(&k, &["replicaset", "bg-rs", "-n", "default"]),
        pod_names(&k, "app=bg")
    );

    // Foreground: the owner stays (with the foregroundDeletion finalizer)
    // until its dependents are gone. Sample the owner first, then the
    // dependents: the owner must never be gone while a dependent is there.
    owner_chain(&k, "fg");
    k.kubectl_ok(&[
        "delete",
        "deployment",
        "fg",
        "-n",
        "default",
        "--cascade=foreground",
        "--wait=false",
    ]);
    let finalizers = jsonpath(
        &k,
        &["deployment", "fg", "-n", "default"],
        "{.metadata.finalizers}",
    );
    let deadline = Instant::now() + PATIENCE;
    let mut samples = 0;
    loop {
        let owner_there = exists(&k, &["deployment", "fg", "-n", "default"]);
        let rs_there = exists(&k, &["replicaset", "fg-rs", "-n", "default"]);
        let pods = pod_names(&k, "app=fg");
        samples += 1;
        if !owner_there {
            assert!(
                !rs_there && pods.trim().is_empty(),
                "foreground: the owner disappeared before its dependents (rs={rs_there}, pods={pods:?})"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "foreground deletion did not finish: rs={rs_there} pods={pods:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Unless the gc beat kubectl to it, the owner was seen waiting.
    if let Some(f) = finalizers {
        assert!(
            f.contains("foregroundDeletion") || f.is_empty(),
            "unexpected finalizers {f}"
        );
    }
    assert!(samples >= 1);

    // Orphan: the owner goes, the ReplicaSet stays without its reference,
    // and the pods keep theirs to the ReplicaSet.
    owner_chain(&k, "or");
    k.kubectl_ok(&[
        "delete",
        "deployment",
        "or",
        "-n",
        "default",
        "--cascade=orphan",
    ]);
    let orphaned = eventually(PATIENCE, || {
        (!exists(&k, &["deployment", "or", "-n", "default"])).then_some(())
    });
    assert!(orphaned.is_some(), "orphan deletion left the owner");
    let refs = jsonpath(
        &k,
        &["replicaset", "or-rs", "-n", "default"],
        "{.metadata.ownerReferences}",
    );
    assert_eq!(
        refs.as_deref(),
        Some(""),
        "the orphaned ReplicaSet must exist without ownerReferences"
    );
    // Still there a moment later: nothing collects an orphan.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pod_names(&k, "app=or"), "or-rs-0 or-rs-1");
    let pod_owner = jsonpath(
        &k,
        &["pod", "or-rs-0", "-n", "default"],
        "{.metadata.ownerReferences[0].name}",
    );
    assert_eq!(pod_owner.as_deref(), Some("or-rs"));

    // A dangling owner uid (same name, other uid) counts as gone.
    let rs_uid = uid(&k, &["replicaset", "or-rs", "-n", "default"]);
    apply(
        &k,
        &format!(
            r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: stale-owner
  namespace: default
  ownerReferences:
  - {{apiVersion: apps/v1, kind: ReplicaSet, name: or-rs, uid: not-{rs_uid}}}
"#
        ),
    );
    let collected = eventually(PATIENCE, || {
        (!exists(&k, &["configmap", "stale-owner", "-n", "default"])).then_some(())
    });
    assert!(
        collected.is_some(),
        "an object whose owner uid does not match was kept"
    );
}

#[test]
fn deleting_a_namespace_empties_then_removes_it() {
    let k = Kerno::up().expect("kerno up");
    let _ns = k
        .spawn_plugin(
            "kerno-controller-namespace",
            "controller-namespace",
            serde_json::json!({"recheckMillis": 200}),
        )
        .expect("the namespace plugin (build kerno-controller-namespace)");
    let _sa = k
        .spawn_plugin(
            "kerno-controller-serviceaccount",
            "controller-serviceaccount",
            serde_json::json!({}),
        )
        .expect("the serviceaccount plugin (build kerno-controller-serviceaccount)");
    apply(
        &k,
        r#"
apiVersion: v1
kind: Namespace
metadata: {name: ns1}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: ns1}
data: {a: "1"}
---
apiVersion: v1
kind: Secret
metadata: {name: token, namespace: ns1}
stringData: {t: x}
---
apiVersion: v1
kind: Pod
metadata: {name: worker, namespace: ns1}
spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ns1}
spec:
  replicas: 0
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
"#,
    );
    // The namespace got its default ServiceAccount (content too).
    assert!(
        eventually(PATIENCE, || exists(
            &k,
            &["serviceaccount", "default", "-n", "ns1"]
        )
        .then_some(()))
        .is_some(),
        "ns1 never got its default serviceaccount"
    );
    let out = k.kubectl_ok(&["delete", "namespace", "ns1", "--wait=false"]);
    assert!(out.contains("deleted"), "{out}");
    let gone = eventually(PATIENCE, || {
        (!exists(&k, &["namespace", "ns1"])).then_some(())
    });
    assert!(
        gone.is_some(),
        "ns1 was not removed: {:?}",
        jsonpath(&k, &["namespace", "ns1"], "{.status}")
    );
    for kind in [
        "configmaps",
        "secrets",
        "pods",
        "deployments",
        "serviceaccounts",
    ] {
        let left = jsonpath(&k, &[kind, "-n", "ns1"], "{.items[*].metadata.name}");
        assert_eq!(
            left.as_deref().map(str::trim),
            Some(""),
            "{kind} left in deleted ns1"
        );
    }
}

#[test]
fn every_namespace_gets_a_default_serviceaccount() {
    let k = Kerno::up().expect("kerno up");
    let _sa = k
        .spawn_plugin(
            "kerno-controller-serviceaccount",
            "controller-serviceaccount",
            serde_json::json!({}),
        )
        .expect("the serviceaccount plugin (build kerno-controller-serviceaccount)");
    k.kubectl_ok(&["create", "namespace", "team-a"]);
    let first = eventually(PATIENCE, || {
        jsonpath(
            &k,
            &["serviceaccount", "default", "-n", "team-a"],
            "{.metadata.uid}",
        )
    })
    .expect("team-a never got a default serviceaccount");
    assert!(exists(&k, &["serviceaccount", "default", "-n", "default"]));
    // Deleted: it comes back as a new object.
    k.kubectl_ok(&["delete", "serviceaccount", "default", "-n", "team-a"]);
    let second = eventually(PATIENCE, || {
        jsonpath(
            &k,
            &["serviceaccount", "default", "-n", "team-a"],
            "{.metadata.uid}",
        )
        .filter(|u| !u.is_empty() && *u != first)
    });
    assert!(
        second.is_some(),
        "the deleted default serviceaccount was not re-created"
    );
}

/// RFC 3339 with microseconds, as Lease `renewTime` wants.
fn micro_now() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default();
    k8s_openapi::jiff::Timestamp::from_microsecond(micros)
        .map(|t| format!("{t:.6}"))
        .unwrap_or_default()
}

fn taints(k: &Kerno) -> String {
    jsonpath(
        k,
        &["node", "n1"],
        r#"{range .spec.taints[*]}{.key}:{.effect} {end}"#,
    )
    .unwrap_or_default()
}

fn ready(k: &Kerno) -> String {
    jsonpath(
        k,
        &["node", "n1"],
        r#"{.status.conditions[?(@.type=="Ready")].status}|{.status.conditions[?(@.type=="Ready")].message}"#,
    )
    .unwrap_or_default()
}

#[test]
fn node_without_lease_renewal_is_tainted_and_evicted() {
    let k = Kerno::up().expect("kerno up");
    apply(
        &k,
        r#"
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: n1, namespace: kube-node-lease}
spec: {holderIdentity: n1, leaseDurationSeconds: 40}
---
apiVersion: v1
kind: Pod
metadata: {name: plain, namespace: default}
spec: {nodeName: n1, containers: [{name: c, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: patient, namespace: default}
spec:
  nodeName: n1
  containers: [{name: c, image: busybox}]
  tolerations: [{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 8}]
---
apiVersion: v1
kind: Pod
metadata: {name: stays, namespace: default}
spec:
  nodeName: n1
  containers: [{name: c, image: busybox}]
  tolerations: [{operator: Exists}]
"#,
    );
    let ready_patch = r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"test kubelet"}]}}"#;
    k.kubectl_ok(&[
        "patch",
        "node",
        "n1",
        "--subresource=status",
        "--type=merge",
        "-p",
        ready_patch,
    ]);
    let renewing = AtomicBool::new(true);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // The test's kubelet: renews the lease while `renewing`.
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if renewing.load(Ordering::Relaxed) {
                    let patch = format!(r#"{{"spec":{{"renewTime":"{}"}}}}"#, micro_now());
                    let _ = k.kubectl(&[
                        "patch",
                        "lease",
                        "n1",
                        "-n",
                        "kube-node-lease",
                        "--type=merge",
                        "-p",
                        &patch,
                    ]);
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node_lifecycle_steps(&k, &renewing)
        }));
        stop.store(true, Ordering::Relaxed);
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    });
}

fn node_lifecycle_steps(k: &Kerno, renewing: &AtomicBool) {
    let _node = k
        .spawn_plugin(
            "kerno-controller-node",
            "controller-node",
            serde_json::json!({
                "nodeMonitorGracePeriodSeconds": 3,
                "nodeMonitorPeriodMillis": 200,
                "defaultTolerationSeconds": 2,
            }),
        )
        .expect("the node plugin (build kerno-controller-node)");
    // While the lease is renewed the node stays Ready and untainted.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(ready(k), "True|test kubelet");
    assert_eq!(taints(k).trim(), "");
    assert!(exists(k, &["pod", "plain", "-n", "default"]));

    // The heartbeat stops: Unknown, tainted unreachable.
    renewing.store(false, Ordering::Relaxed);
    let unknown = eventually(PATIENCE, || {
        (ready(k) == "Unknown|Kubelet stopped posting node status.").then_some(())
    });
    assert!(
        unknown.is_some(),
        "Ready did not become Unknown: {}",
        ready(k)
    );
    let tainted = eventually(PATIENCE, || {
        let t = taints(k);
        (t.contains("node.kubernetes.io/unreachable:NoSchedule")
            && t.contains("node.kubernetes.io/unreachable:NoExecute"))
        .then_some(())
    });
    assert!(
        tainted.is_some(),
        "unreachable taints missing: {}",
        taints(k)
    );
    let status = k.kubectl_ok(&["get", "node", "n1"]);
    assert!(status.contains("NotReady"), "{status}");
    // Pods on it are no longer Ready.
    let pod_ready = eventually(PATIENCE, || {
        jsonpath(
            k,
            &["pod", "stays", "-n", "default"],
            r#"{.status.conditions[?(@.type=="Ready")].status}"#,
        )
        .filter(|s| s == "False")
    });
    assert!(
        pod_ready.is_some(),
        "the pod's Ready condition was not set False"
    );

    // Evictions follow tolerationSeconds: the untolerating pod after the
    // default (2 s), the patient one after its 8 s, the tolerating one never.
    let plain_gone = eventually(PATIENCE, || {
        (!exists(k, &["pod", "plain", "-n", "default"])).then_some(())
    });
    assert!(plain_gone.is_some(), "the untolerating pod was not evicted");
    assert!(
        exists(k, &["pod", "patient", "-n", "default"]),
        "the pod tolerating 8 s was evicted with the 2 s one"
    );
    let patient_gone = eventually(PATIENCE, || {
        (!exists(k, &["pod", "patient", "-n", "default"])).then_some(())
    });
    assert!(patient_gone.is_some(), "the patient pod was never evicted");
    assert!(
        exists(k, &["pod", "stays", "-n", "default"]),
        "a pod tolerating every taint for ever was evicted"
    );

    // The heartbeat resumes: taints go, Ready again.
    renewing.store(true, Ordering::Relaxed);
    let recovered = eventually(PATIENCE, || {
        (taints(k).trim().is_empty() && ready(k).starts_with("True|")).then_some(())
    });
    assert!(
        recovered.is_some(),
        "the node did not recover: taints={} ready={}",
        taints(k),
        ready(k)
    );
}
