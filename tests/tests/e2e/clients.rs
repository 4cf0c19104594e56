//! Other clients users already have: kube-rs over REST, and a gRPC client
//! sending malformed frames.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kerno_tests::Kerno;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

async fn kube_client(k: &Kerno) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(k.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_lists_creates_patches_and_watches() {
    let k = Kerno::up().expect("kerno up");
    let client = kube_client(&k).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .collect();
    assert!(names.contains(&"kube-system".to_owned()), "{names:?}");

    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let list = cms.list(&ListParams::default()).await.expect("list");
    let rv = list
        .metadata
        .resource_version
        .expect("list resourceVersion");
    let mut events = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .expect("watch")
        .boxed();

    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("from-kube-rs".into());
    cm.data = Some([("a".to_owned(), "1".to_owned())].into());
    let created = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some());
    let patch = serde_json::json!({ "data": { "a": "2" } });
    let patched = cms
        .patch(
            "from-kube-rs",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .expect("patch");
    assert_eq!(
        patched
            .data
            .unwrap_or_default()
            .get("a")
            .map(String::as_str),
        Some("2")
    );
    let applied = cms
        .patch(
            "from-kube-rs",
            &PatchParams::apply("kube-rs-test"),
            &Patch::Apply(serde_json::json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": { "name": "from-kube-rs" },
                "data": { "b": "3" },
            })),
        )
        .await
        .expect("server-side apply");
    assert_eq!(
        applied
            .data
            .unwrap_or_default()
            .get("b")
            .map(String::as_str),
        Some("3")
    );

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), events.try_next())
            .await
            .expect("event in time")
            .expect("watch ok")
            .expect("stream open");
        match event {
            WatchEvent::Added(cm) => seen.push(("ADDED", cm.metadata.name)),
            WatchEvent::Modified(cm) => seen.push(("MODIFIED", cm.metadata.name)),
            WatchEvent::Deleted(cm) => seen.push(("DELETED", cm.metadata.name)),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    let kinds: Vec<&str> = seen.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "MODIFIED"]);
}

/// Sends message bytes as they are, to put malformed protobuf on the wire.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(bytes.to_vec()))
    }
}

/// Truncated and garbled protobuf messages get a gRPC error status, and the
/// kernel keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn truncated_grpc_messages_get_statuses() {
    let k = Kerno::up().expect("kerno up");
    let channel = kerno_tests::grpc_channel(&k).await.expect("channel");
    let mut grpc = tonic::client::Grpc::new(channel);
    let messages: [&[u8]; 3] = [
        // GetRequest.resource (field 1) claims 16 bytes; 2 follow.
        &[0x0a, 0x10, 0x12, 0x05],
        // A varint that never ends.
        &[0x08, 0xff, 0xff, 0xff],
        // Field number 0 is invalid.
        &[0x00, 0x01],
    ];
    for message in messages {
        grpc.ready().await.expect("ready");
        let path = http::uri::PathAndQuery::from_static("/kerno.kernel.v1.Kernel/Get");
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            grpc.unary(tonic::Request::new(message.to_vec()), path, RawCodec),
        )
        .await
        .expect("answered in time");
        let status = result.expect_err("a malformed message must fail");
        assert!(
            matches!(
                status.code(),
                tonic::Code::Internal | tonic::Code::InvalidArgument
            ),
            "{status:?}"
        );
    }
    // Still serving.
    let mut client = kerno_tests::grpc_client(&k).await.expect("client");
    let list = client
        .list(kerno_proto::kernel::v1::ListRequest {
            resource: Some(kerno_proto::kernel::v1::ResourceRef {
                version: "v1".into(),
                resource: "namespaces".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("list");
    assert!(list.into_inner().items.len() >= 4);
}
