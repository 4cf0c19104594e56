//! The objects kubectl writes are readable and watchable over gRPC.

use futures::StreamExt;
use kerno_proto::kernel::v1 as pb;
use kerno_tests::{Kerno, grpc_client};
use serde_json::Value;

fn resource(
    group: &str,
    version: &str,
    plural: &str,
    ns: &str,
    name: &str,
) -> Option<pb::ResourceRef> {
    Some(pb::ResourceRef {
        group: group.into(),
        version: version.into(),
        resource: plural.into(),
        namespace: ns.into(),
        name: name.into(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_reads_and_watches_what_kubectl_wrote() {
    let k = Kerno::up().expect("kerno up");
    k.kubectl_ok(&["create", "namespace", "g"]);
    k.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        "g",
        "--image=busybox:1.36",
        "--replicas=2",
    ]);
    k.kubectl_ok(&[
        "create",
        "configmap",
        "c1",
        "-n",
        "g",
        "--from-literal=k=v1",
    ]);
    let mut client = grpc_client(&k).await.expect("grpc client");

    let got = client
        .get(pb::GetRequest {
            resource: resource("apps", "v1", "deployments", "g", "web"),
        })
        .await
        .expect("get")
        .into_inner();
    let deployment: Value = serde_json::from_slice(&got.json).expect("json");
    assert_eq!(deployment["kind"], "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);

    let list = client
        .list(pb::ListRequest {
            resource: resource("", "v1", "configmaps", "g", ""),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(list.items.len(), 1);
    let rv = list.resource_version.clone();
    assert!(rv.parse::<i64>().is_ok());

    let mut events = client
        .watch(pb::WatchRequest {
            resource: resource("", "v1", "configmaps", "g", ""),
            resource_version: rv,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    k.kubectl_ok(&[
        "patch",
        "configmap",
        "c1",
        "-n",
        "g",
        "--type=merge",
        "-p",
        r#"{"data":{"k":"v2"}}"#,
    ]);
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
        .await
        .expect("an event in time")
        .expect("stream open")
        .expect("event");
    assert_eq!(event.r#type, "MODIFIED");
    let cm: Value = serde_json::from_slice(&event.object).expect("json");
    assert_eq!(cm["data"]["k"], "v2");

    // Errors carry the same meaning as over REST.
    let missing = client
        .get(pb::GetRequest {
            resource: resource("", "v1", "configmaps", "g", "nope"),
        })
        .await
        .expect_err("not found");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert_eq!(missing.message(), "configmaps \"nope\" not found");
    let mut stale: Value = serde_json::from_slice(&got.json).expect("json");
    stale["spec"]["replicas"] = 3.into();
    client
        .update(pb::UpdateRequest {
            resource: resource("apps", "v1", "deployments", "g", "web"),
            json: serde_json::to_vec(&stale).expect("json"),
            ..Default::default()
        })
        .await
        .expect("first update with the read resourceVersion");
    let conflict = client
        .update(pb::UpdateRequest {
            resource: resource("apps", "v1", "deployments", "g", "web"),
            json: serde_json::to_vec(&stale).expect("json"),
            ..Default::default()
        })
        .await
        .expect_err("stale update");
    assert_eq!(conflict.code(), tonic::Code::Aborted);
    assert!(
        conflict.message().contains("the object has been modified"),
        "{}",
        conflict.message()
    );
    let bad = client
        .create(pb::CreateRequest {
            resource: resource("", "v1", "configmaps", "g", ""),
            json: b"{not json".to_vec(),
            ..Default::default()
        })
        .await
        .expect_err("malformed");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
}
