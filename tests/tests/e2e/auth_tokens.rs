//! Bearer tokens with the real kubectl: ServiceAccount tokens from
//! `kubectl create token` (RBAC as the ServiceAccount, expiry, binding to a
//! Pod's lifetime, the ServiceAccount's own lifetime, a key that survives a
//! restart), and the static token file.

use std::process::{Command, Output};

use base64::Engine as _;
use kerno_kernel::auth::serviceaccount::{
    Claims, ISSUER, KubernetesClaims, ObjectRef, TokenSigner,
};
use kerno_tests::{Backend, Kerno, eventually, kerno_bin};

fn with_token(k: &Kerno, token: &str, args: &[&str]) -> Output {
    let mut all = vec!["--token", token];
    all.extend_from_slice(args);
    k.kubectl(&all)
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

const PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// The JSON claims of a JWT (its middle part).
fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or_default()
}

const UNAUTHORIZED: &str = "error: You must be logged in to the server (Unauthorized";

#[test]
fn service_account_tokens_authenticate_as_the_account_while_it_and_its_pod_live() {
    let mut k = Kerno::up().expect("kerno up");
    k.kubectl_ok(&["create", "namespace", "team"]);
    k.kubectl_ok(&["create", "serviceaccount", "builder", "-n", "team"]);

    let token = k
        .kubectl_ok(&["create", "token", "builder", "-n", "team"])
        .trim()
        .to_owned();
    let claims = claims_of(&token);
    assert_eq!(
        claims["sub"], "system:serviceaccount:team:builder",
        "{claims}"
    );
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(
        claims["exp"].as_i64().unwrap_or_default() - claims["iat"].as_i64().unwrap_or_default(),
        3600
    );

    let whoami = with_token(&k, &token, &["auth", "whoami"]);
    let shown = text(&whoami.stdout);
    assert!(whoami.status.success(), "{whoami:?}");
    assert!(
        shown.contains("system:serviceaccount:team:builder")
            && shown.contains(
                "[system:serviceaccounts system:serviceaccounts:team system:authenticated]"
            ),
        "{shown}"
    );

    // Deny by default, then what the binding grants and nothing more.
    let refused = with_token(&k, &token, &["get", "configmaps", "-n", "team"]);
    assert_eq!(
        text(&refused.stderr).trim(),
        "Error from server (Forbidden): configmaps is forbidden: User \"system:serviceaccount:team:builder\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"team\""
    );
    k.kubectl_ok(&[
        "create",
        "rolebinding",
        "builder-view",
        "--clusterrole=view",
        "--serviceaccount=team:builder",
        "-n",
        "team",
    ]);
    k.kubectl_ok(&["create", "configmap", "c", "-n", "team"]);
    let listed = eventually(PATIENCE, || {
        let out = with_token(
            &k,
            &token,
            &["get", "configmaps", "-n", "team", "-o", "name"],
        );
        out.status.success().then(|| text(&out.stdout))
    });
    assert_eq!(listed.as_deref().map(str::trim), Some("configmap/c"));
    let elsewhere = with_token(&k, &token, &["get", "configmaps", "-n", "default"]);
    assert!(
        text(&elsewhere.stderr).contains("(Forbidden)"),
        "{elsewhere:?}"
    );
    let delete = with_token(&k, &token, &["delete", "configmap", "c", "-n", "team"]);
    assert!(text(&delete.stderr).contains("(Forbidden)"), "{delete:?}");

    // --duration sets the lifetime; too short is refused as by Kubernetes.
    let long = k
        .kubectl_ok(&[
            "create",
            "token",
            "builder",
            "-n",
            "team",
            "--duration",
            "2h",
        ])
        .trim()
        .to_owned();
    let c = claims_of(&long);
    assert_eq!(
        c["exp"].as_i64().unwrap_or_default() - c["iat"].as_i64().unwrap_or_default(),
        7200
    );
    let short = k.kubectl_err(&[
        "create",
        "token",
        "builder",
        "-n",
        "team",
        "--duration",
        "5m",
    ]);
    assert!(
        short.contains("may not specify a duration less than 10 minutes"),
        "{short}"
    );

    // A token bound to a pod dies with the pod.
    k.kubectl_ok(&["run", "p", "--image=busybox", "-n", "team"]);
    let bound = k
        .kubectl_ok(&[
            "create",
            "token",
            "builder",
            "-n",
            "team",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "p",
        ])
        .trim()
        .to_owned();
    assert_eq!(claims_of(&bound)["kubernetes.io"]["pod"]["name"], "p");
    let ok = with_token(&k, &bound, &["auth", "whoami"]);
    assert!(ok.status.success(), "{ok:?}");
    let missing_pod = k.kubectl_err(&[
        "create",
        "token",
        "builder",
        "-n",
        "team",
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        "nope",
    ]);
    assert!(
        missing_pod.contains("pods \"nope\" not found"),
        "{missing_pod}"
    );
    k.kubectl_ok(&["delete", "pod", "p", "-n", "team"]);
    let after = with_token(&k, &bound, &["auth", "whoami"]);
    assert!(text(&after.stderr).starts_with(UNAUTHORIZED), "{:?}", after);

    // An expired token, signed with the kernel's own key, is refused.
    let uid = k
        .kubectl_ok(&[
            "get",
            "sa",
            "builder",
            "-n",
            "team",
            "-o",
            "jsonpath={.metadata.uid}",
        ])
        .trim()
        .to_owned();
    let signer = TokenSigner::load_or_create(&k.data_dir().join("pki")).expect("the kernel's key");
    let past = claims_of(&token)["iat"].as_i64().unwrap_or_default() - 7200;
    let make = |exp: i64| {
        signer
            .sign(&Claims {
                aud: vec![ISSUER.into()],
                exp,
                iat: past,
                iss: ISSUER.into(),
                jti: "test".into(),
                nbf: past,
                sub: "system:serviceaccount:team:builder".into(),
                kubernetes: KubernetesClaims {
                    namespace: "team".into(),
                    serviceaccount: ObjectRef {
                        name: "builder".into(),
                        uid: uid.clone(),
                    },
                    pod: None,
                    secret: None,
                },
            })
            .expect("sign")
    };
    let fresh = with_token(&k, &make(past + 100_000), &["auth", "whoami"]);
    assert!(fresh.status.success(), "{fresh:?}");
    let expired = with_token(&k, &make(past + 60), &["auth", "whoami"]);
    assert!(
        text(&expired.stderr).starts_with(UNAUTHORIZED),
        "{:?}",
        expired
    );

    // The key survives a restart: old tokens stay valid.
    k.kill9_and_restart().expect("restart");
    let again = eventually(PATIENCE, || {
        let out = with_token(&k, &token, &["auth", "whoami"]);
        out.status.success().then(|| text(&out.stdout))
    });
    assert!(
        again.is_some_and(|s| s.contains("system:serviceaccount:team:builder")),
        "the token is refused after a restart"
    );

    // A ServiceAccount that is deleted takes its tokens along, even once
    // recreated under the same name (a new uid).
    k.kubectl_ok(&["delete", "serviceaccount", "builder", "-n", "team"]);
    let gone = with_token(&k, &token, &["auth", "whoami"]);
    assert!(text(&gone.stderr).starts_with(UNAUTHORIZED), "{:?}", gone);
    k.kubectl_ok(&["create", "serviceaccount", "builder", "-n", "team"]);
    let recreated = with_token(&k, &token, &["auth", "whoami"]);
    assert!(
        text(&recreated.stderr).starts_with(UNAUTHORIZED),
        "{:?}",
        recreated
    );
    let missing = k.kubectl_err(&["create", "token", "ghost", "-n", "team"]);
    assert!(
        missing.contains("serviceaccounts \"ghost\" not found"),
        "{missing}"
    );
}

#[test]
fn static_tokens_from_the_config_file_authenticate_their_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("tokens.csv"),
        "carol-token-31415,carol,1001,\"dev,ops\"\ndave-token-27182,dave,1002\n",
    )
    .expect("write tokens");
    let config = dir.path().join("kerno.yaml");
    // Relative to the config file.
    std::fs::write(&config, "kernel:\n  tokenAuthFile: tokens.csv\n").expect("write config");
    let config_arg = config.display().to_string();
    let k = Kerno::start_with(Backend::Embedded, &["--config", &config_arg]).expect("kerno");

    let whoami = with_token(&k, "carol-token-31415", &["auth", "whoami"]);
    let shown = text(&whoami.stdout);
    assert!(whoami.status.success(), "{whoami:?}");
    assert!(
        shown.contains("carol") && shown.contains("[dev ops system:authenticated]"),
        "{shown}"
    );
    let dave = with_token(&k, "dave-token-27182", &["get", "pods"]);
    assert_eq!(
        text(&dave.stderr).trim(),
        "Error from server (Forbidden): pods is forbidden: User \"dave\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    k.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "dave-view",
        "--clusterrole=view",
        "--user=dave",
    ]);
    let allowed = eventually(PATIENCE, || {
        let out = with_token(&k, "dave-token-27182", &["get", "pods"]);
        out.status.success().then_some(())
    });
    assert!(
        allowed.is_some(),
        "dave cannot list pods once bound to view"
    );
    let wrong = with_token(&k, "carol-token-31416", &["auth", "whoami"]);
    assert!(text(&wrong.stderr).starts_with(UNAUTHORIZED), "{:?}", wrong);
}

#[test]
fn a_bad_token_file_stops_the_start_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, "t1,alice,1\nt2,bob\n").expect("write");
    let out = Command::new(kerno_bin().expect("kerno"))
        .args(["up", "--no-default-plugins", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--token-auth-file")
        .arg(&file)
        .output()
        .expect("run kerno");
    assert!(!out.status.success(), "{out:?}");
    let stderr = text(&out.stderr);
    let expected = format!(
        "token auth file {}: line 2: must have at least 3 columns (token, user name, user uid), found 2",
        file.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

/// Lists ConfigMaps of `ns` over gRPC as the holder of `token` (no client
/// certificate).
async fn grpc_list_as(k: &Kerno, token: &str, ns: &str) -> Result<usize, tonic::Status> {
    use kerno_proto::kernel::v1 as pb;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let ca = std::fs::read(k.data_dir().join("pki").join("ca.crt")).expect("ca");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", k.addr))
        .expect("endpoint")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("connect");
    let mut client = pb::kernel_client::KernelClient::new(channel);
    let mut request = tonic::Request::new(pb::ListRequest {
        resource: Some(pb::ResourceRef {
            group: String::new(),
            version: "v1".into(),
            resource: "configmaps".into(),
            namespace: ns.into(),
            name: String::new(),
        }),
        ..Default::default()
    });
    let header = format!("Bearer {token}").parse().expect("header");
    request.metadata_mut().insert("authorization", header);
    client
        .list(request)
        .await
        .map(|r| r.into_inner().items.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn service_account_tokens_authenticate_grpc_calls_too() {
    let k = Kerno::up().expect("kerno up");
    k.kubectl_ok(&["create", "namespace", "team"]);
    k.kubectl_ok(&["create", "serviceaccount", "robot", "-n", "team"]);
    k.kubectl_ok(&["create", "configmap", "c", "-n", "team"]);
    k.kubectl_ok(&[
        "create",
        "rolebinding",
        "robot-view",
        "--clusterrole=view",
        "--serviceaccount=team:robot",
        "-n",
        "team",
    ]);
    let token = k
        .kubectl_ok(&["create", "token", "robot", "-n", "team"])
        .trim()
        .to_owned();
    let mut listed = Err(tonic::Status::unknown("not tried"));
    for _ in 0..50 {
        listed = grpc_list_as(&k, &token, "team").await;
        if listed.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(listed.ok(), Some(1));
    let elsewhere = grpc_list_as(&k, &token, "default")
        .await
        .expect_err("denied");
    assert_eq!(
        elsewhere.code(),
        tonic::Code::PermissionDenied,
        "{elsewhere:?}"
    );
    let mut forged = token.clone();
    forged.pop();
    let refused = grpc_list_as(&k, &forged, "team")
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
}
