//! Authentication and RBAC with the real kubectl: users issued with `kerno
//! certs issue`, Kubernetes' 403 messages, `kubectl auth can-i` and
//! `whoami`, 401 for missing, garbled, expired or foreign credentials, and
//! the shipped plugins' roles refusing what they do not need.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kerno_tests::{Backend, Kerno, kerno_bin};

/// `kerno certs issue` for `user` in `groups`, returning the kubeconfig.
fn issue(k: &Kerno, dir: &Path, user: &str, groups: &[&str]) -> PathBuf {
    let out = dir.join(format!("{}.kubeconfig", user.replace(':', "_")));
    let mut cmd = Command::new(kerno_bin().expect("kerno"));
    cmd.args(["certs", "issue", "--user", user])
        .arg("--data-dir")
        .arg(k.data_dir())
        .arg("--out")
        .arg(&out);
    for g in groups {
        cmd.args(["--group", g]);
    }
    let result = cmd.output().expect("kerno certs issue");
    assert!(result.status.success(), "kerno certs issue: {result:?}");
    out
}

fn kubectl_as(kubeconfig: &Path, args: &[&str]) -> Output {
    Command::new("/usr/bin/kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("kubectl")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_namespace_viewer_reads_there_and_nothing_else() {
    let k = Kerno::up().expect("kerno up");
    let dir = tempfile::tempdir().expect("tempdir");
    let alice = issue(&k, dir.path(), "alice", &["dev"]);
    k.kubectl_ok(&["create", "namespace", "team"]);
    k.kubectl_ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team",
        "--from-literal=a=b",
    ]);
    k.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "--clusterrole=view",
        "--user=alice",
        "-n",
        "team",
    ]);

    let got = kubectl_as(
        &alice,
        &["get", "configmap", "settings", "-n", "team", "-o", "name"],
    );
    assert!(got.status.success(), "{got:?}");
    assert_eq!(stdout(&got).trim(), "configmap/settings");

    let delete = kubectl_as(&alice, &["delete", "configmap", "settings", "-n", "team"]);
    assert!(!delete.status.success());
    assert_eq!(
        stderr(&delete).trim(),
        "Error from server (Forbidden): configmaps \"settings\" is forbidden: User \"alice\" \
         cannot delete resource \"configmaps\" in API group \"\" in the namespace \"team\""
    );
    let elsewhere = kubectl_as(&alice, &["get", "configmaps", "-n", "default"]);
    assert!(!elsewhere.status.success());
    assert_eq!(
        stderr(&elsewhere).trim(),
        "Error from server (Forbidden): configmaps is forbidden: User \"alice\" cannot list \
         resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    // The object survived the refused delete.
    k.kubectl_ok(&["get", "configmap", "settings", "-n", "team"]);

    // kubectl auth can-i, for a table of users, verbs and resources.
    let admin = k.kubeconfig();
    let table: &[(&Path, &[&str], bool)] = &[
        (&alice, &["get", "pods", "-n", "team"], true),
        (&alice, &["list", "configmaps", "-n", "team"], true),
        (&alice, &["watch", "deployments.apps", "-n", "team"], true),
        (&alice, &["delete", "pods", "-n", "team"], false),
        (&alice, &["create", "configmaps", "-n", "team"], false),
        (&alice, &["get", "secrets", "-n", "team"], false),
        (&alice, &["get", "pods", "-n", "default"], false),
        (&alice, &["get", "nodes"], false),
        (&admin, &["delete", "nodes"], true),
        (&admin, &["create", "clusterroles"], true),
    ];
    for (who, args, expected) in table {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let out = kubectl_as(who, &all);
        let answer = stdout(&out).trim().to_owned();
        assert_eq!(
            answer,
            if *expected { "yes" } else { "no" },
            "can-i {args:?} as {}: {out:?}",
            who.display()
        );
    }
    let whoami = kubectl_as(&alice, &["auth", "whoami"]);
    let text = stdout(&whoami);
    assert!(
        whoami.status.success() && text.contains("alice") && text.contains("dev"),
        "{whoami:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_garbled_expired_and_foreign_credentials_get_401() {
    let k = Kerno::start_with(
        Backend::Embedded,
        &[
            "--bootstrap-token",
            "old123.0123456789abcdef@2000-01-01T00:00:00Z",
        ],
    )
    .expect("kerno up");
    let server = format!("https://{}", k.addr);
    let ca = k.data_dir().join("pki/ca.crt");
    let ca_arg = format!("--certificate-authority={}", ca.display());
    let with_token = |token: &str| {
        Command::new("/usr/bin/kubectl")
            .args(["--kubeconfig", "/dev/null", "--server", &server, &ca_arg])
            .args(["--token", token, "get", "namespaces"])
            .output()
            .expect("kubectl")
    };
    for token in ["garbage", "old123.0123456789abcdef"] {
        let out = with_token(token);
        assert!(!out.status.success(), "{token}: {out:?}");
        // kubectl's words for a 401.
        assert!(
            stderr(&out).contains("provide credentials"),
            "{token}: {}",
            stderr(&out)
        );
    }
    // No credentials at all: 401 (a Status), except the public paths.
    let ca_pem = std::fs::read(&ca).expect("ca");
    let anonymous = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).expect("ca pem"))
        .build()
        .expect("client");
    let refused = anonymous
        .get(format!("{server}/api/v1/namespaces"))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status().as_u16(), 401);
    let body: serde_json::Value = refused.json().await.expect("status");
    assert_eq!(
        (body["kind"].as_str(), body["reason"].as_str()),
        (Some("Status"), Some("Unauthorized"))
    );
    for public in ["/version", "/healthz", "/readyz", "/livez"] {
        let ok = anonymous
            .get(format!("{server}{public}"))
            .send()
            .await
            .expect("request");
        assert_eq!(ok.status().as_u16(), 200, "{public}");
    }

    // A certificate from another cluster's CA is refused in the handshake.
    let other = Kerno::up().expect("another kerno");
    let foreign = Command::new("/usr/bin/kubectl")
        .args(["--kubeconfig", "/dev/null", "--server", &server, &ca_arg])
        .arg(format!(
            "--client-certificate={}",
            other.data_dir().join("pki/admin.crt").display()
        ))
        .arg(format!(
            "--client-key={}",
            other.data_dir().join("pki/admin.key").display()
        ))
        .args(["get", "namespaces"])
        .output()
        .expect("kubectl");
    assert!(!foreign.status.success(), "{foreign:?}");
    assert!(
        stderr(&foreign).contains("certificate") || stderr(&foreign).contains("tls"),
        "{}",
        stderr(&foreign)
    );
}

#[test]
fn shipped_plugins_roles_refuse_what_they_do_not_need() {
    let k = Kerno::up().expect("kerno up");
    let dir = tempfile::tempdir().expect("tempdir");
    k.kubectl_ok(&["run", "p", "--image=busybox", "--restart=Never"]);
    // Each plugin's own user (as its token would be), via a certificate.
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "scheduler-default",
            &["get", "pods", "-A"],
            &["delete", "node", "n1"],
        ),
        (
            "controller-replicaset",
            &["get", "replicasets", "-A"],
            &["get", "secrets", "-A"],
        ),
        (
            "kubelet",
            &["get", "pods", "-A"],
            &["delete", "namespace", "default"],
        ),
    ];
    for (plugin, allowed, refused) in cases {
        let user = format!("system:plugin:{plugin}");
        let config = issue(&k, dir.path(), &user, &["system:plugins"]);
        let ok = kubectl_as(&config, allowed);
        assert!(ok.status.success(), "{plugin} {allowed:?}: {ok:?}");
        let no = kubectl_as(&config, refused);
        assert!(!no.status.success(), "{plugin} {refused:?} was allowed");
        assert!(
            stderr(&no).contains("Forbidden") && stderr(&no).contains(&user),
            "{plugin}: {}",
            stderr(&no)
        );
    }
}
