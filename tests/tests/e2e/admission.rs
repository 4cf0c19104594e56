//! The admission chain on the write path, with the real kubectl: the
//! built-in ServiceAccount module, and the two example shared-library
//! modules of `examples/admission-modules` loaded from the config file (one
//! mutating, one validating). A module that cannot be loaded stops the start.

use std::path::PathBuf;
use std::process::Command;

use kerno_tests::{Backend, Kerno, bin_dir, kerno_bin};

fn module(name: &str) -> PathBuf {
    let path = bin_dir().join(format!("libkerno_admission_{name}.so"));
    assert!(
        path.exists(),
        "{} is missing: build it with cargo build -p kerno-admission-{}",
        path.display(),
        name.replace('_', "-")
    );
    path
}

#[test]
fn modules_from_the_config_mutate_and_refuse_pods_written_with_kubectl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("kerno.yaml");
    std::fs::write(
        &config,
        format!(
            "kernel:\n  admission:\n    modules:\n      - {}\n      - {}\n",
            module("add_label").display(),
            module("require_image_tag").display()
        ),
    )
    .expect("config");
    let config = config.display().to_string();
    let k = Kerno::start_with(Backend::Embedded, &["--config", &config]).expect("kerno up");

    // The mutating module labels the pod; the built-in one names its
    // ServiceAccount.
    k.kubectl_ok(&["run", "tagged", "--image=busybox:1.36", "--restart=Never"]);
    let labels = k.kubectl_ok(&[
        "get",
        "pod",
        "tagged",
        "-o",
        "jsonpath={.metadata.labels.kerno\\.dev/admitted-by} {.spec.serviceAccountName}",
    ]);
    assert_eq!(labels, "add-label default");

    // The validating module refuses an untagged image, in kubectl's output.
    let pod = r#"
apiVersion: v1
kind: Pod
metadata: {name: untagged}
spec:
  containers: [{name: app, image: busybox}]
"#;
    let refused = k.kubectl_stdin(&["apply", "-f", "-"], Some(pod));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("pods \"untagged\" is forbidden")
            && stderr.contains("container \"app\" uses image \"busybox\" without a tag"),
        "{stderr}"
    );
    assert!(!k.kubectl(&["get", "pod", "untagged"]).status.success());
    // Updates pass through it as well.
    let retag = k.kubectl(&["set", "image", "pod/tagged", "tagged=busybox"]);
    assert!(!retag.status.success(), "{retag:?}");
    assert!(String::from_utf8_lossy(&retag.stderr).contains("without a tag"));
    // Other kinds are not its business.
    k.kubectl_ok(&["create", "configmap", "c", "--from-literal=a=b"]);
}

#[test]
fn a_missing_module_stops_the_start_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("kerno.yaml");
    std::fs::write(
        &config,
        "kernel:\n  admission:\n    modules: [/nonexistent/libnothing.so]\n",
    )
    .expect("config");
    let out = Command::new(kerno_bin().expect("kerno"))
        .args(["up", "--no-default-plugins", "--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("kerno up");
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("admission module /nonexistent/libnothing.so"),
        "{stderr}"
    );
}
