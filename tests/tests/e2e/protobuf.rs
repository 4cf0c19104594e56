//! kubectl's typed clients send built-in objects as Kubernetes protobuf
//! (`application/vnd.kubernetes.protobuf`); every `kubectl create ...` here
//! goes through the kernel's protobuf decoder, and `get -o json` shows the
//! fields arrived.

use std::time::Duration;

use kerno_tests::Kerno;
use serde_json::Value;

fn get_json(k: &Kerno, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    let out = k.kubectl_ok(&all);
    match serde_json::from_str(&out) {
        Ok(v) => v,
        Err(e) => panic!("kubectl get {args:?} printed no JSON ({e}): {out}"),
    }
}

#[test]
fn kubectl_create_sends_protobuf_and_it_is_decoded() {
    let k = Kerno::up().expect("kerno up");

    // Prove the body really is protobuf: kubectl logs its request headers at -v=8.
    let out = k.kubectl(&["create", "namespace", "pb", "-v=8"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "create namespace failed: {stderr}");
    assert!(
        stderr.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl did not send protobuf: {stderr}"
    );
    assert_eq!(get_json(&k, &["namespace", "pb"])["metadata"]["name"], "pb");

    let ns = ["-n", "pb"];
    let run = |args: &[&str]| {
        let mut all = ns.to_vec();
        all.extend_from_slice(args);
        k.kubectl_ok(&all)
    };

    run(&[
        "create",
        "configmap",
        "cfg",
        "--from-literal=greeting=hello",
        "--from-literal=empty=",
    ]);
    let cm = get_json(&k, &["-n", "pb", "configmap", "cfg"]);
    assert_eq!(cm["data"]["greeting"], "hello");
    assert_eq!(cm["data"]["empty"], "");

    run(&[
        "create",
        "secret",
        "generic",
        "pw",
        "--from-literal=password=hunter2",
    ]);
    let secret = get_json(&k, &["-n", "pb", "secret", "pw"]);
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");
    assert_eq!(secret["type"], "Opaque");

    run(&[
        "create",
        "deployment",
        "web",
        "--image=busybox:1.36",
        "--replicas=3",
    ]);
    let deploy = get_json(&k, &["-n", "pb", "deployment", "web"]);
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(
        deploy["spec"]["template"]["metadata"]["labels"]["app"],
        "web"
    );
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox:1.36"
    );

    // replicas is a pointer: an explicit 0 must not become the default 1.
    run(&[
        "create",
        "deployment",
        "idle",
        "--image=busybox:1.36",
        "--replicas=0",
    ]);
    assert_eq!(
        get_json(&k, &["-n", "pb", "deployment", "idle"])["spec"]["replicas"],
        0
    );

    run(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    let svc = get_json(&k, &["-n", "pb", "service", "web"]);
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(svc["spec"]["selector"]["app"], "web");
    assert_eq!(svc["spec"]["type"], "ClusterIP");

    run(&["create", "serviceaccount", "robot"]);
    assert_eq!(
        get_json(&k, &["-n", "pb", "serviceaccount", "robot"])["metadata"]["name"],
        "robot"
    );

    run(&[
        "create",
        "job",
        "once",
        "--image=busybox:1.36",
        "--",
        "echo",
        "hi",
    ]);
    let job = get_json(&k, &["-n", "pb", "job", "once"]);
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["command"], serde_json::json!(["echo", "hi"]));
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");

    run(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox:1.36",
        "--schedule=*/5 * * * *",
        "--",
        "date",
    ]);
    let cj = get_json(&k, &["-n", "pb", "cronjob", "tick"]);
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *");
    let cj_container = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(cj_container["command"], serde_json::json!(["date"]));

    run(&[
        "create",
        "role",
        "reader",
        "--verb=get,list",
        "--resource=pods,configmaps",
    ]);
    let role = get_json(&k, &["-n", "pb", "role", "reader"]);
    let verbs = &role["rules"][0]["verbs"];
    assert_eq!(verbs, &serde_json::json!(["get", "list"]), "{role}");

    run(&[
        "create",
        "rolebinding",
        "reader",
        "--role=reader",
        "--serviceaccount=pb:robot",
    ]);
    let rb = get_json(&k, &["-n", "pb", "rolebinding", "reader"]);
    assert_eq!(rb["roleRef"]["name"], "reader");
    assert_eq!(rb["roleRef"]["kind"], "Role");
    assert_eq!(rb["subjects"][0]["kind"], "ServiceAccount");
    assert_eq!(rb["subjects"][0]["namespace"], "pb");

    run(&[
        "run",
        "solo",
        "--image=busybox:1.36",
        "--env=MODE=test",
        "--port=8080",
        "--labels=tier=x",
        "--",
        "sleep",
        "60",
    ]);
    let pod = get_json(&k, &["-n", "pb", "pod", "solo"]);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(pod["metadata"]["labels"]["tier"], "x");
    assert_eq!(c["image"], "busybox:1.36");
    assert_eq!(c["args"], serde_json::json!(["sleep", "60"]));
    assert_eq!(
        c["env"][0],
        serde_json::json!({"name": "MODE", "value": "test"})
    );
    assert_eq!(c["ports"][0]["containerPort"], 8080);

    k.kubectl_ok(&[
        "create",
        "clusterrole",
        "node-reader",
        "--verb=get",
        "--resource=nodes",
    ]);
    k.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "node-reader",
        "--clusterrole=node-reader",
        "--user=bob",
    ]);
    let crb = get_json(&k, &["clusterrolebinding", "node-reader"]);
    assert_eq!(
        crb["subjects"][0],
        serde_json::json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "bob"})
    );

    run(&["create", "quota", "q", "--hard=pods=10,cpu=2"]);
    let quota = get_json(&k, &["-n", "pb", "resourcequota", "q"]);
    assert_eq!(
        quota["spec"]["hard"],
        serde_json::json!({"cpu": "2", "pods": "10"})
    );

    run(&["create", "ingress", "site", "--rule=example.com/app=web:80"]);
    let ing = get_json(&k, &["-n", "pb", "ingress", "site"]);
    let path = &ing["spec"]["rules"][0]["http"]["paths"][0];
    assert_eq!(ing["spec"]["rules"][0]["host"], "example.com");
    assert_eq!(path["path"], "/app");
    assert_eq!(path["backend"]["service"]["port"]["number"], 80);
}

/// A length-delimited protobuf field.
fn len_field(number: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![(number << 3) | 2];
    let mut len = bytes.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(bytes);
    out
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut type_meta = len_field(1, api_version.as_bytes());
    type_meta.extend(len_field(2, kind.as_bytes()));
    let mut body = b"k8s\0".to_vec();
    body.extend(len_field(1, &type_meta));
    body.extend(len_field(2, raw));
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn protobuf_bodies_of_unknown_kinds_or_bad_bytes_get_statuses() {
    let k = Kerno::up().expect("kerno up");
    let http = k.http().expect("client");
    let url = k.url("/api/v1/namespaces/default/configmaps");
    let send = |body: Vec<u8>| {
        let request = http
            .post(url.clone())
            .header("Content-Type", "application/vnd.kubernetes.protobuf")
            .header(
                "Accept",
                "application/vnd.kubernetes.protobuf, application/json",
            )
            .body(body)
            .send();
        async move {
            let response = tokio::time::timeout(Duration::from_secs(10), request)
                .await
                .expect("the kernel answers in time")
                .expect("the kernel answers");
            let code = response.status().as_u16();
            let body: Value = serde_json::from_slice(&response.bytes().await.expect("body"))
                .unwrap_or(Value::Null);
            (code, body)
        }
    };

    // A hand-made ConfigMap: metadata{name: "made"}, data{"k": "v"}.
    let meta = len_field(1, b"made");
    let mut entry = len_field(1, b"k");
    entry.extend(len_field(2, b"v"));
    let mut raw = len_field(1, &meta);
    raw.extend(len_field(2, &entry));
    let (code, body) = send(envelope("v1", "ConfigMap", &raw)).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["data"]["k"], "v");
    assert_eq!(body["metadata"]["name"], "made");

    let (code, body) = send(envelope("example.com/v1", "Widget", &raw)).await;
    assert_eq!(code, 415, "{body}");
    assert_eq!(body["reason"], "UnsupportedMediaType");

    for bad in [
        b"not protobuf".to_vec(),
        b"k8s\0\x0a\xff".to_vec(),
        envelope("v1", "ConfigMap", &[0x0a, 0x7f, 0x01]),
    ] {
        let (code, body) = send(bad).await;
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["kind"], "Status");
    }

    // Still serving.
    let (code, _) = send(envelope("v1", "ConfigMap", &raw)).await;
    assert_eq!(code, 409);
}
