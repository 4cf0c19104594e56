//! Admission plugins over gRPC with the real kubectl: the SDK test plugin
//! `kerno-test-admission` labels pods (mutating hook) and refuses untagged
//! images (validating hook); a hook that sleeps past its timeout, and one
//! whose plugin is down, are handled by their failure policy.

use std::time::Duration;

use kerno_tests::{Backend, Kerno, PluginProcess, eventually};
use serde_json::json;

const UNTAGGED: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: untagged}
spec:
  containers: [{name: app, image: busybox}]
"#;

fn pod(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers: [{{name: app, image: 'busybox:1.36'}}]\n"
    )
}

/// Starts the plugin and waits until its hooks are registered.
fn start(k: &Kerno, name: &str, config: serde_json::Value) -> PluginProcess {
    let plugin = k
        .spawn_plugin("kerno-test-admission", name, config)
        .expect("plugin");
    let registered = eventually(Duration::from_secs(30), || {
        let out = k.kubectl(&[
            "get",
            "plugin",
            name,
            "-o",
            "jsonpath={.spec.admission[*].name}",
        ]);
        let hooks = String::from_utf8_lossy(&out.stdout).into_owned();
        hooks.contains("image-tag.test.kerno.dev").then_some(())
    });
    assert!(
        registered.is_some(),
        "plugin {name} did not register its hooks"
    );
    plugin
}

fn label(k: &Kerno, pod: &str) -> String {
    k.kubectl_ok(&[
        "get",
        "pod",
        pod,
        "-o",
        "jsonpath={.metadata.labels.kerno\\.dev/admitted-by}",
    ])
}

#[test]
fn a_grpc_plugin_labels_pods_and_refuses_untagged_images_through_kubectl() {
    let k = Kerno::start(Backend::Embedded).expect("kerno up");
    let _plugin = start(&k, "admission-test", json!({}));

    let applied = k.kubectl_stdin(&["apply", "-f", "-"], Some(&pod("tagged")));
    assert!(applied.status.success(), "{applied:?}");
    assert_eq!(label(&k, "tagged"), "grpc-plugin");
    // The built-in ServiceAccount module ran too (in-process before plugins).
    assert_eq!(
        k.kubectl_ok(&[
            "get",
            "pod",
            "tagged",
            "-o",
            "jsonpath={.spec.serviceAccountName}"
        ]),
        "default"
    );

    let refused = k.kubectl_stdin(&["apply", "-f", "-"], Some(UNTAGGED));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(r#"pods "untagged" is forbidden: admission webhook "image-tag.test.kerno.dev" denied the request: container "app" uses image "busybox" without a tag (grpc plugin)"#),
        "{stderr}"
    );
    assert!(!k.kubectl(&["get", "pod", "untagged"]).status.success());
    // Updates are reviewed as well.
    let retag = k.kubectl(&["set", "image", "pod/tagged", "app=busybox"]);
    assert!(!retag.status.success(), "{retag:?}");
    assert!(String::from_utf8_lossy(&retag.stderr).contains("without a tag (grpc plugin)"));
    // Other resources are not the plugin's business.
    k.kubectl_ok(&["create", "configmap", "c", "--from-literal=a=b"]);
    // A dry run is reviewed (and mutated) but not stored.
    let dry = k.kubectl_stdin(
        &[
            "apply",
            "--dry-run=server",
            "-o",
            "jsonpath={.metadata.labels.kerno\\.dev/admitted-by}",
            "-f",
            "-",
        ],
        Some(&pod("dry")),
    );
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout),
        "grpc-plugin",
        "{dry:?}"
    );
    assert!(!k.kubectl(&["get", "pod", "dry"]).status.success());
}

#[test]
fn a_plugin_that_times_out_is_handled_by_its_failure_policy() {
    let k = Kerno::start(Backend::Embedded).expect("kerno up");
    let lenient = start(
        &k,
        "slow-lenient",
        json!({"sleep": true, "timeoutMs": 300, "failurePolicy": "Ignore"}),
    );
    // Ignore: the write goes through without the plugin's label, and the
    // untagged image is not refused either (the validating hook timed out).
    let started = std::time::Instant::now();
    k.kubectl_stdin(&["apply", "-f", "-"], Some(UNTAGGED));
    assert!(k.kubectl(&["get", "pod", "untagged"]).status.success());
    assert_eq!(label(&k, "untagged"), "");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the kernel waited for the plugin: {:?}",
        started.elapsed()
    );
    drop(lenient);

    let _strict = start(
        &k,
        "slow-strict",
        json!({"sleep": true, "timeoutMs": 300, "failurePolicy": "Fail"}),
    );
    let refused = k.kubectl_stdin(&["apply", "-f", "-"], Some(&pod("late")));
    assert!(!refused.status.success(), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            r#"failed calling webhook "add-label.test.kerno.dev": timed out after 300ms"#
        ),
        "{stderr}"
    );
    assert!(!k.kubectl(&["get", "pod", "late"]).status.success());
}

#[test]
fn a_plugin_that_is_down_is_handled_by_its_failure_policy() {
    let k = Kerno::start(Backend::Embedded).expect("kerno up");
    let mut strict = start(&k, "down-strict", json!({"failurePolicy": "Fail"}));
    strict.kill9().expect("kill");
    let refused = k.kubectl_stdin(&["apply", "-f", "-"], Some(&pod("refused")));
    assert!(!refused.status.success(), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            r#"Internal error occurred: failed calling webhook "add-label.test.kerno.dev""#
        ),
        "{stderr}"
    );
    assert!(!k.kubectl(&["get", "pod", "refused"]).status.success());

    // The same plugin back up: writes pass and are labelled again.
    strict.restart().expect("restart");
    let back = eventually(Duration::from_secs(30), || {
        k.kubectl_stdin(&["apply", "-f", "-"], Some(&pod("back")))
            .status
            .success()
            .then_some(())
    });
    assert!(back.is_some(), "the restarted plugin was not called");
    assert_eq!(label(&k, "back"), "grpc-plugin");

    // Ignore: a plugin that is down lets writes through.
    let mut lenient = start(&k, "down-lenient", json!({"failurePolicy": "Ignore"}));
    lenient.kill9().expect("kill");
    let passed = k.kubectl_stdin(&["apply", "-f", "-"], Some(&pod("passed")));
    assert!(passed.status.success(), "{passed:?}");
}
