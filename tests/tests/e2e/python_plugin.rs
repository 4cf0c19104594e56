//! A plugin written in Python against `proto/` only (grpcio, stubs generated
//! here with `grpc_tools.protoc`) registers with the kernel, shows up in
//! `kubectl get plugins`, and reconciles a custom resource created with
//! `kubectl apply`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use kerno_tests::{Kerno, eventually};

/// Debian's interpreter, which has `python3-grpcio` and `python3-grpc-tools`.
const PYTHON: &str = "/usr/bin/python3";

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/plugin-python")
}

fn generate_stubs(into: &Path) {
    let proto = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto/proto");
    let out = Command::new(PYTHON)
        .args(["-m", "grpc_tools.protoc"])
        .arg(format!("-I{}", proto.display()))
        .arg(format!("--python_out={}", into.display()))
        .arg(format!("--grpc_python_out={}", into.display()))
        .arg(proto.join("kerno/kernel/v1/kernel.proto"))
        .arg(proto.join("kerno/plugin/v1/plugin.proto"))
        .output()
        .expect("run python3 -m grpc_tools.protoc (apt-get install python3-grpc-tools)");
    assert!(
        out.status.success(),
        "generating the Python stubs failed (are python3-grpcio and python3-grpc-tools installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn python_plugin_registers_and_reconciles_a_custom_resource() {
    let k = Kerno::up().expect("kerno up");
    let stubs = tempfile::tempdir().expect("tempdir");
    generate_stubs(stubs.path());

    let example = example_dir();
    let crd = example.join("greeting-crd.yaml");
    k.kubectl_ok(&["apply", "-f", crd.to_str().unwrap_or_default()]);

    let pki = k.data_dir().join("pki");
    let mut plugin = Command::new(PYTHON)
        .arg(example.join("greeter.py"))
        .env("KERNO_PY_STUBS", stubs.path())
        .env("KERNO_KERNEL_ADDR", &k.addr)
        .env("KERNO_CA_FILE", pki.join("ca.crt"))
        .env("KERNO_CLIENT_CERT_FILE", pki.join("admin.crt"))
        .env("KERNO_CLIENT_KEY_FILE", pki.join("admin.key"))
        .env("KERNO_PLUGIN_NAME", "greeter")
        .env_remove("KERNO_PLUGIN_SOCKET_DIR")
        .env_remove("KERNO_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start greeter.py");
    let _guard = KillOnDrop(&mut plugin);

    let running = eventually(Duration::from_secs(30), || {
        let table = k.kubectl_ok(&["get", "plugins"]);
        let row = table
            .lines()
            .find(|l| l.starts_with("greeter "))?
            .to_owned();
        row.contains("Running").then_some(row)
    });
    let row = running.expect("greeter never showed Running in kubectl get plugins");
    assert!(row.contains("controller") && row.contains("0.1.0"), "{row}");

    let greeting = example.join("greeting.yaml");
    k.kubectl_ok(&["apply", "-f", greeting.to_str().unwrap_or_default()]);
    let message = eventually(Duration::from_secs(20), || {
        let out = k.kubectl(&[
            "get",
            "configmap",
            "greeting-hello",
            "-o",
            "jsonpath={.data.message}",
        ]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(message.as_deref(), Some("Hello, kerno!"));
    let status = k.kubectl_ok(&[
        "get",
        "greeting",
        "hello",
        "-o",
        "jsonpath={.status.message}",
    ]);
    assert_eq!(status, "Hello, kerno!");

    // An update is reconciled too: the watch is live, not a one-off list.
    k.kubectl_ok(&[
        "patch",
        "greeting",
        "hello",
        "--type=merge",
        "-p",
        r#"{"spec":{"to":"python"}}"#,
    ]);
    let updated = eventually(Duration::from_secs(20), || {
        let out = k.kubectl_ok(&[
            "get",
            "configmap",
            "greeting-hello",
            "-o",
            "jsonpath={.data.message}",
        ]);
        (out == "Hello, python!").then_some(out)
    });
    assert!(updated.is_some(), "the ConfigMap did not follow the update");
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
