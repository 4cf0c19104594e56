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

/// Creates a ConfigMap (or Secret) over REST and returns its resourceVersion.
async fn create(http: &reqwest::Client, url: &str, name: &str) -> i64 {
    let response = http
        .post(url)
        .json(&json!({ "metadata": { "name": name }, "data": {} }))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status().as_u16(), 201, "create {name}");
    let created: Value = response.json().await.expect("json");
    created["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|r| r.parse().ok())
        .expect("rv")
}

/// Reads a REST watch response's events as (type, name, rv).
struct EventReader {
    chunks: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
}

impl EventReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            chunks: response.bytes_stream().boxed(),
            buffer: Vec::new(),
        }
    }

    async fn take(&mut self, n: usize) -> Vec<(String, String, i64)> {
        let mut events = Vec::new();
        loop {
            while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                if events.len() == n {
                    return events;
                }
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let event: Value = serde_json::from_slice(&line).expect("event json");
                let meta = &event["object"]["metadata"];
                events.push((
                    event["type"].as_str().unwrap_or_default().to_owned(),
                    meta["name"].as_str().unwrap_or_default().to_owned(),
                    meta["resourceVersion"]
                        .as_str()
                        .and_then(|r| r.parse().ok())
                        .unwrap_or_default(),
                ));
            }
            if events.len() == n {
                return events;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.chunks.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("only {} of {n} events in time: {events:?}", events.len())
                })
                .unwrap_or_else(|| panic!("watch ended after {events:?}"))
                .expect("chunk");
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn watches_resume_across_a_kernel_restart() {
    let mut k = Kerno::up().expect("kerno");
    let http = k.http().expect("client");
    let cms = k.url("/api/v1/namespaces/default/configmaps");
    let secrets = k.url("/api/v1/namespaces/default/secrets");
    create(&http, &cms, "before-0").await;
    let seen = create(&http, &cms, "before-1").await;
    // A write of another type moves the store past what the client saw, so
    // the restarted kernel's caches start after `seen`.
    create(&http, &secrets, "moves-the-revision").await;

    k.kill9_and_restart().expect("restart");
    let http = k.http().expect("client");
    let a1 = create(&http, &cms, "after-1").await;
    let a2 = create(&http, &cms, "after-2").await;
    let deleted = http
        .delete(format!("{cms}/before-0"))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status().as_u16(), 200);

    let resumed = http
        .get(format!(
            "{cms}?watch=1&resourceVersion={seen}&timeoutSeconds=20"
        ))
        .send()
        .await
        .expect("watch");
    let status = resumed.status().as_u16();
    if status != 200 {
        panic!(
            "a watch from before the restart must resume, got {status}: {:?}",
            resumed.text().await
        );
    }
    let mut reader = EventReader::new(resumed);
    let events = reader.take(3).await;
    assert_eq!(events[0], ("ADDED".into(), "after-1".into(), a1));
    assert_eq!(events[1], ("ADDED".into(), "after-2".into(), a2));
    assert_eq!(
        (events[2].0.as_str(), events[2].1.as_str()),
        ("DELETED", "before-0")
    );
    assert!(events[2].2 > a2, "{events:?}");
    // Live events follow the replayed ones.
    let a3 = create(&http, &cms, "after-3").await;
    assert_eq!(
        reader.take(1).await,
        [("ADDED".to_owned(), "after-3".to_owned(), a3)]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sdk_informer_resumes_across_a_kernel_restart_without_relisting() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kerno_sdk::client::ClientConfig;
    use kerno_sdk::informer::Informer;
    use kerno_sdk::{Api, KernelClient, ListParams, ObjectKey};

    let mut k = Kerno::up().expect("kerno");
    let http = k.http().expect("client");
    let cms = k.url("/api/v1/namespaces/default/configmaps");
    let secrets = k.url("/api/v1/namespaces/default/secrets");
    create(&http, &cms, "before").await;

    let pki = k.data_dir().join("pki");
    let read = |f: &str| std::fs::read(pki.join(f)).expect("pki file");
    let config = ClientConfig::new(k.addr.clone())
        .with_ca_pem(read("ca.crt"))
        .with_identity(read("admin.crt"), read("admin.key"));
    let client = KernelClient::connect_lazy(&config).expect("client");
    let informer = Informer::builder(
        Api::<ConfigMap>::namespaced(client, "default"),
        ListParams::default(),
    )
    .spawn();
    let store = informer.store();
    tokio::time::timeout(Duration::from_secs(10), store.wait_until_ready())
        .await
        .expect("informer synced");
    assert!(
        store
            .get(&ObjectKey::new(Some("default"), "before"))
            .is_some()
    );
    assert_eq!(informer.lists(), 1);
    // Another type's write: the restarted kernel's caches start after the
    // informer's revision, so only store history can resume its watch.
    create(&http, &secrets, "moves-the-revision").await;

    k.kill9_and_restart().expect("restart");
    let http = k.http().expect("client");
    for i in 0..3 {
        create(&http, &cms, &format!("after-{i}")).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store
        .get(&ObjectKey::new(Some("default"), "after-2"))
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the informer did not see the writes after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(store.len(), 4);
    assert_eq!(
        informer.lists(),
        1,
        "the informer re-listed instead of resuming its watch"
    );
}
