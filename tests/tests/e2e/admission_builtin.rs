//! The built-in admission modules with the real kubectl: NamespaceLifecycle,
//! LimitRanger defaults and bounds, ResourceQuota refusals and usage.

use kerno_tests::Kerno;

fn pod(name: &str, resources: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    resources: {resources}\n"
    )
}

fn apply(k: &Kerno, ns: &str, yaml: &str) -> std::process::Output {
    k.kubectl_stdin(&["apply", "-n", ns, "-f", "-"], Some(yaml))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

#[test]
fn namespace_lifecycle_refuses_missing_namespaces_and_deleting_initial_ones() {
    let k = Kerno::up().expect("kerno up");
    let missing = k.kubectl_err(&["create", "configmap", "c", "-n", "nope"]);
    assert_eq!(
        missing.trim(),
        "error: failed to create configmap: namespaces \"nope\" not found"
    );
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let refused = k.kubectl_err(&["delete", "namespace", ns]);
        assert_eq!(
            refused.trim(),
            format!(
                "Error from server (Forbidden): namespaces \"{ns}\" is forbidden: this namespace may not be deleted"
            )
        );
    }
}

#[test]
fn limit_ranges_default_and_bound_container_resources() {
    let k = Kerno::up().expect("kerno up");
    k.kubectl_ok(&["create", "namespace", "lr"]);
    let range = "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: limits\nspec:\n  limits:\n  - type: Container\n    default: {cpu: 500m, memory: 128Mi}\n    defaultRequest: {cpu: 100m}\n    max: {cpu: \"1\"}\n";
    let out = apply(&k, "lr", range);
    assert!(out.status.success(), "{out:?}");

    k.kubectl_ok(&["run", "plain", "--image=busybox", "-n", "lr"]);
    let resources = k.kubectl_ok(&[
        "get",
        "pod",
        "plain",
        "-n",
        "lr",
        "-o",
        "jsonpath={.spec.containers[0].resources}",
    ]);
    let resources: serde_json::Value = serde_json::from_str(&resources).expect("json");
    assert_eq!(
        resources,
        serde_json::json!({
            "limits": {"cpu": "500m", "memory": "128Mi"},
            "requests": {"cpu": "100m", "memory": "128Mi"},
        })
    );
    let note = k.kubectl_ok(&[
        "get",
        "pod",
        "plain",
        "-n",
        "lr",
        "-o",
        "jsonpath={.metadata.annotations.kubernetes\\.io/limit-ranger}",
    ]);
    assert_eq!(
        note,
        "LimitRanger plugin set: cpu, memory request for container plain; cpu, memory limit for container plain"
    );

    let big = apply(&k, "lr", &pod("big", "{limits: {cpu: \"2\"}}"));
    assert_eq!(
        stderr(&big),
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );
}

#[test]
fn resource_quotas_refuse_creates_past_their_hard_limits_and_track_usage() {
    let k = Kerno::up().expect("kerno up");
    k.kubectl_ok(&["create", "namespace", "q"]);
    k.kubectl_ok(&[
        "create",
        "quota",
        "compute",
        "-n",
        "q",
        "--hard=pods=2,requests.cpu=1",
    ]);
    let no_request = apply(&k, "q", &pod("bare", "{}"));
    assert_eq!(
        stderr(&no_request),
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"bare\" is forbidden: failed quota: compute: must specify requests.cpu for: c"
    );
    let first = apply(&k, "q", &pod("first", "{requests: {cpu: 600m}}"));
    assert!(first.status.success(), "{first:?}");
    let used = k.kubectl_ok(&[
        "get",
        "quota",
        "compute",
        "-n",
        "q",
        "-o",
        "jsonpath={.status.used}",
    ]);
    let used: serde_json::Value = serde_json::from_str(&used).expect("json");
    assert_eq!(
        used,
        serde_json::json!({"pods": "1", "requests.cpu": "600m"})
    );
    let second = apply(&k, "q", &pod("second", "{requests: {cpu: 600m}}"));
    assert_eq!(
        stderr(&second),
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"second\" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1"
    );
    let small = apply(&k, "q", &pod("small", "{requests: {cpu: 100m}}"));
    assert!(small.status.success(), "{small:?}");
    let third = apply(&k, "q", &pod("third", "{requests: {cpu: 100m}}"));
    assert_eq!(
        stderr(&third),
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"third\" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"
    );

    k.kubectl_ok(&[
        "create",
        "quota",
        "objects",
        "-n",
        "q",
        "--hard=configmaps=1",
    ]);
    k.kubectl_ok(&["create", "configmap", "one", "-n", "q"]);
    let two = k.kubectl_err(&["create", "configmap", "two", "-n", "q"]);
    assert_eq!(
        two.trim(),
        "error: failed to create configmap: configmaps \"two\" is forbidden: exceeded quota: objects, requested: configmaps=1, used: configmaps=1, limited: configmaps=1"
    );
}
