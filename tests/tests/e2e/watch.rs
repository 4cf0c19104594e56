//! Watches resume inside the window and get 410 Gone before it, over REST
//! and gRPC; the store's history is compacted on schedule.

use std::time::Duration;

use futures::StreamExt;
use kerno_proto::kernel::v1 as pb;
use kerno_tests::{Backend, Kerno, grpc_client};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn old_resource_versions_are_gone() {
    let k = Kerno::start_with(
        Backend::Embedded,
        &["--watch-cache-window", "20", "--compaction-interval", "1"],
    )
    .expect("kerno");
    let http = k.http().expect("client");
    let cms = k.url("/api/v1/namespaces/default/configmaps");
    let mut first_rv = 0i64;
    for i in 0..40 {
        let response = http
            .post(&cms)
            .json(&json!({ "metadata": { "name": format!("cm-{i}") }, "data": { "i": i.to_string() } }))
            .send()
            .await
            .expect("create");
        assert_eq!(response.status().as_u16(), 201);
        let created: Value = response.json().await.expect("json");
        if i == 0 {
            first_rv = created["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .expect("rv");
        }
    }
    let list: Value = http
        .get(&cms)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let list_rv: i64 = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("rv");

    // Before the window: 410 with Kubernetes' message.
    let gone = http
        .get(format!("{cms}?watch=1&resourceVersion={first_rv}"))
        .send()
        .await
        .expect("watch");
    assert_eq!(gone.status().as_u16(), 410);
    let status: Value = gone.json().await.expect("status");
    assert_eq!(status["reason"], "Expired");
    assert!(
        status["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("too old resource version"),
        "{status}"
    );

    // Inside the window: the missed events, then live ones.
    let resume_from = list_rv - 5;
    let resumed = http
        .get(format!(
            "{cms}?watch=1&resourceVersion={resume_from}&timeoutSeconds=5"
        ))
        .send()
        .await
        .expect("watch");
    assert_eq!(resumed.status().as_u16(), 200);
    let mut lines = resumed.bytes_stream();
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    while events.len() < 5 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), lines.next())
            .await
            .expect("events in time")
            .expect("stream open")
            .expect("chunk");
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line).expect("event json");
            events.push(event);
        }
    }
    assert!(events.iter().all(|e| e["type"] == "ADDED"));
    let rvs: Vec<i64> = events
        .iter()
        .filter_map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(rvs, ((resume_from + 1)..=list_rv).collect::<Vec<_>>());

    // The store itself is compacted on schedule: a gRPC watch from the start
    // is out of range.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut grpc = grpc_client(&k).await.expect("grpc");
    let result = grpc
        .watch(pb::WatchRequest {
            resource: Some(pb::ResourceRef {
                version: "v1".into(),
                resource: "configmaps".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            resource_version: first_rv.to_string(),
            ..Default::default()
        })
        .await;
    let code = match result {
        Err(status) => status.code(),
        Ok(stream) => match stream.into_inner().next().await {
            Some(Err(status)) => status.code(),
            other => panic!("expected an error, got {other:?}"),
        },
    };
    assert_eq!(code, tonic::Code::OutOfRange);
}
