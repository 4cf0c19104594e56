//! Bad input never panics or hangs the kernel: each malformed request gets a
//! Kubernetes `Status` with the right code, and the kernel keeps serving.

use std::time::Duration;

use kerno_tests::Kerno;
use serde_json::Value;

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        client
            .request(method, url)
            .header("Content-Type", content_type)
            .body(body)
            .send(),
    )
    .await
    .expect("the kernel answers in time")
    .expect("the kernel answers");
    let code = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    (code, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn assert_status(code: u16, body: &Value, expected: u16, what: &str) {
    assert_eq!(code, expected, "{what}: {body}");
    assert_eq!(body["kind"], "Status", "{what}: {body}");
    assert_eq!(body["code"], expected, "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_statuses() {
    let k = Kerno::up().expect("kerno up");
    let http = k.http().expect("client");
    let cms = k.url("/api/v1/namespaces/default/configmaps");
    use reqwest::Method;

    // One of each kind, with the exact code.
    // (method, url, content type, body, expected code, what it is)
    type Case<'a> = (Method, String, &'a str, Vec<u8>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            cms.clone(),
            "application/json",
            b"{\"metadata\":".to_vec(),
            400,
            "truncated JSON",
        ),
        (
            Method::POST,
            cms.clone(),
            "application/yaml",
            b"a: [b".to_vec(),
            400,
            "bad YAML",
        ),
        (
            Method::POST,
            cms.clone(),
            "application/json",
            br#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec(),
            400,
            "wrong apiVersion",
        ),
        (
            Method::POST,
            cms.clone(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}"#.to_vec(),
            400,
            "wrong kind",
        ),
        (
            Method::POST,
            cms.clone(),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#.to_vec(),
            422,
            "invalid name",
        ),
        (
            Method::POST,
            format!("{cms}?fieldValidation=Strict"),
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"bogus":1}"#.to_vec(),
            400,
            "unknown field, strict",
        ),
        (
            Method::POST,
            cms.clone(),
            "application/json",
            vec![b' '; 4 * 1024 * 1024],
            413,
            "body over 3 MiB",
        ),
        (
            Method::GET,
            format!("{cms}?labelSelector=a%20in%20(b"),
            "application/json",
            Vec::new(),
            400,
            "bad label selector",
        ),
        (
            Method::GET,
            format!("{cms}?fieldSelector=spec.nope%3Dx"),
            "application/json",
            Vec::new(),
            400,
            "unsupported field selector",
        ),
        (
            Method::GET,
            format!("{cms}?resourceVersion=abc"),
            "application/json",
            Vec::new(),
            400,
            "bad resourceVersion",
        ),
        (
            Method::GET,
            format!("{cms}?limit=1&continue=garbage"),
            "application/json",
            Vec::new(),
            400,
            "bad continue token",
        ),
        (
            Method::PATCH,
            format!("{cms}/missing"),
            "application/merge-patch+json",
            b"{}".to_vec(),
            404,
            "patch of a missing object",
        ),
        (
            Method::GET,
            k.url("/api/v1/namespaces/default/nonsense"),
            "application/json",
            Vec::new(),
            404,
            "unknown resource",
        ),
        (
            Method::POST,
            k.url("/api/v1/namespaces/nowhere/configmaps"),
            "application/json",
            br#"{"metadata":{"name":"x"}}"#.to_vec(),
            404,
            "missing namespace",
        ),
    ];
    for (method, url, content_type, body, expected, what) in cases {
        let (code, status) = send(&http, method, url, content_type, body).await;
        assert_status(code, &status, expected, what);
    }

    // A patch that does not apply.
    let (code, _) = send(
        &http,
        Method::POST,
        cms.clone(),
        "application/json",
        br#"{"metadata":{"name":"target"},"data":{"a":"1"}}"#.to_vec(),
    )
    .await;
    assert_eq!(code, 201);
    for (content_type, patch) in [
        (
            "application/json-patch+json",
            br#"[{"op":"replace","path":"/data/missing/deep","value":1}]"#.to_vec(),
        ),
        ("application/json-patch+json", br#"{"op":"add"}"#.to_vec()),
        ("application/merge-patch+json", b"[1,2".to_vec()),
        (
            "application/strategic-merge-patch+json",
            br#"{"data":{"$patch":"bogus"}}"#.to_vec(),
        ),
        ("text/plain", b"hello".to_vec()),
    ] {
        let (code, status) = send(
            &http,
            Method::PATCH,
            format!("{cms}/target"),
            content_type,
            patch,
        )
        .await;
        assert!(
            matches!(code, 400 | 415 | 422),
            "{content_type}: {code} {status}"
        );
        assert_eq!(status["kind"], "Status");
    }

    // A few thousand generated malformed bodies and paths.
    let seeds: [&[u8]; 6] = [
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ok"},"data":{"a":"b"}}"#,
        br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":1}}"#,
        br#"[{"op":"add","path":"/data/x","value":"y"}]"#,
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\n",
        br#"{"metadata":{"name":"x","labels":{"a":"b"}},"data":{"k":1}}"#,
        br#"{"kind":"Status"}"#,
    ];
    let paths = [
        "/api/v1/namespaces/default/configmaps",
        "/api/v1/namespaces/default/configmaps/target",
        "/apis/apps/v1/namespaces/default/deployments",
        "/api/v1/namespaces/default/pods",
        "/api/v1/namespaces/%ff/configmaps",
        "/apis/apps/v1/namespaces/default/deployments/d/scale",
    ];
    let methods = [
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::GET,
        Method::DELETE,
    ];
    let content_types = [
        "application/json",
        "application/yaml",
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ];
    let mut rng_state: u64 = 0x2545F4914F6CDD1D;
    let mut next = move || {
        // xorshift: deterministic, so a failure reproduces.
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let mut requests = Vec::new();
    for _ in 0..3000 {
        let seed = seeds[(next() % seeds.len() as u64) as usize];
        let mut body = seed.to_vec();
        for _ in 0..(next() % 4) {
            if body.is_empty() {
                break;
            }
            let at = (next() % body.len() as u64) as usize;
            match next() % 3 {
                0 => body[at] = (next() % 256) as u8,
                1 => body.truncate(at),
                _ => {
                    let junk = b"{}[]\",:\\\x00";
                    body.insert(at, junk[(next() % junk.len() as u64) as usize]);
                }
            }
        }
        let path = paths[(next() % paths.len() as u64) as usize];
        let method = methods[(next() % methods.len() as u64) as usize].clone();
        let content_type = content_types[(next() % content_types.len() as u64) as usize];
        requests.push((method, k.url(path), content_type, body));
    }
    let results = futures::stream::iter(requests)
        .map(|(method, url, content_type, body)| {
            let http = http.clone();
            async move { send(&http, method, url, content_type, body).await }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    for (code, body) in &results {
        assert!(
            (200..300).contains(code) || (400..500).contains(code),
            "unexpected {code}: {body}"
        );
        if *code >= 400 {
            assert_eq!(body["kind"], "Status", "{code}: {body}");
        }
    }
    // Still serving, and kubectl still works.
    let (code, list) = send(
        &http,
        Method::GET,
        k.url("/api/v1/namespaces/default/configmaps"),
        "application/json",
        Vec::new(),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "ConfigMapList");
    assert!(k.kubectl_ok(&["get", "namespaces"]).contains("default"));
}

use futures::StreamExt;
