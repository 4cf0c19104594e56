//! Plugins register with the kernel over `kerno.plugin.v1` and show up in
//! `kubectl get plugins`.

use kerno_proto::plugin::v1 as pb;
use kerno_tests::{Kerno, grpc_channel};

#[tokio::test(flavor = "multi_thread")]
async fn plugins_register_and_heartbeat() {
    let k = Kerno::up().expect("kerno up");
    let mut registry = pb::plugin_registry_client::PluginRegistryClient::new(
        grpc_channel(&k).await.expect("channel"),
    );

    let accepted = registry
        .register(pb::RegisterRequest {
            name: "demo-controller".into(),
            kind: "controller".into(),
            version: "0.3.1".into(),
            protocol_versions: vec![1, 7],
            capabilities: vec!["reconcile".into()],
            endpoint: "unix:///run/kerno/demo.sock".into(),
            ..Default::default()
        })
        .await
        .expect("register")
        .into_inner();
    assert_eq!(accepted.protocol_version, 1);
    assert!(accepted.heartbeat_interval_seconds > 0);

    let table = k.kubectl_ok(&["get", "plugins"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "KIND", "VERSION", "PHASE", "RESTARTS", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("demo-controller"))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..4],
        ["demo-controller", "controller", "0.3.1", "Running"],
        "{table}"
    );

    registry
        .heartbeat(pb::HeartbeatRequest {
            name: "demo-controller".into(),
            message: String::new(),
        })
        .await
        .expect("heartbeat");
    let after = k.kubectl_ok(&[
        "get",
        "plugin",
        "demo-controller",
        "-o",
        "jsonpath={.status.lastHeartbeatTime}",
    ]);
    assert!(!after.is_empty());
    let endpoint = k.kubectl_ok(&[
        "get",
        "plugin",
        "demo-controller",
        "-o",
        "jsonpath={.spec.endpoint}",
    ]);
    assert_eq!(endpoint, "unix:///run/kerno/demo.sock");

    // A plugin speaking only an unsupported protocol is refused, clearly.
    let refused = registry
        .register(pb::RegisterRequest {
            name: "future".into(),
            kind: "controller".into(),
            version: "9.0.0".into(),
            protocol_versions: vec![2, 3],
            ..Default::default()
        })
        .await
        .expect_err("no shared protocol version");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("supports [1]"),
        "{}",
        refused.message()
    );

    // Heartbeats from an unknown plugin ask it to register again.
    let unknown = registry
        .heartbeat(pb::HeartbeatRequest {
            name: "ghost".into(),
            message: String::new(),
        })
        .await
        .expect_err("unknown plugin");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}
