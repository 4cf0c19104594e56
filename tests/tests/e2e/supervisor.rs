//! The plugin supervisor with real processes: `kerno up --config F` starts
//! `kerno-test-plugin` in its various modes (and the example controller),
//! restarts them, reports them on Plugin objects and stops them with the
//! kernel; plugin and bootstrap tokens authenticate plugins.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use kerno_proto::plugin::v1 as pb;
use kerno_tests::{Backend, Kerno, bin_dir, eventually};

const PATIENCE: Duration = Duration::from_secs(40);

fn binary(name: &str) -> PathBuf {
    let bin = bin_dir().join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p kerno-tests -p kerno-example-controller --all-targets)",
        bin.display()
    );
    bin
}

/// `kerno up --config` with `plugins_yaml` as the `plugins:` section.
fn up_with(dir: &Path, kernel_yaml: &str, plugins_yaml: &str, args: &[&str]) -> Kerno {
    let config = dir.join("kerno.yaml");
    let kernel = if kernel_yaml.is_empty() {
        String::new()
    } else {
        format!("kernel:\n{kernel_yaml}\n")
    };
    let text = format!("{kernel}plugins:\n{plugins_yaml}\n");
    std::fs::write(&config, text).expect("write config");
    let config = config.display().to_string();
    let mut all = vec!["--config", config.as_str()];
    all.extend_from_slice(args);
    Kerno::start_with(Backend::Embedded, &all).expect("kerno up")
}

fn test_plugin(name: &str, settings: &str) -> String {
    format!(
        "  {name}:\n    command: [{}]\n    config: {settings}\n",
        binary("kerno-test-plugin").display()
    )
}

fn field(k: &Kerno, plugin: &str, path: &str) -> String {
    let out = k.kubectl(&[
        "get",
        "plugin",
        plugin,
        "-o",
        &format!("jsonpath={{{path}}}"),
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_phase(k: &Kerno, plugin: &str, phase: &str) {
    let seen = eventually(PATIENCE, || {
        (field(k, plugin, ".status.phase") == phase).then_some(())
    });
    assert!(
        seen.is_some(),
        "plugin {plugin} did not reach {phase}: {}",
        k.kubectl_ok(&["get", "plugin", plugin, "-o", "yaml"])
    );
}

fn pid_of(k: &Kerno, plugin: &str) -> u32 {
    field(k, plugin, ".status.pid")
        .parse()
        .unwrap_or_else(|_| panic!("plugin {plugin} has no status.pid"))
}

/// Whether a process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit(')').next().map(|rest| rest.trim().to_owned()))
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid} failed");
}

#[test]
fn healthy_plugin_runs_and_is_restarted_after_kill9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let k = up_with(
        dir.path(),
        "",
        &test_plugin("probe", "{ mode: healthy }"),
        &[],
    );
    wait_phase(&k, "probe", "Running");
    let table = k.kubectl_ok(&["get", "plugins"]);
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("probe "))
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        &row[..5],
        ["probe", "test", "0.0.1", "Running", "0"],
        "{table}"
    );

    let first = pid_of(&k, "probe");
    assert!(alive(first));
    signal(first, "-9");
    let restarted = eventually(PATIENCE, || {
        let restarts = field(&k, "probe", ".status.restarts");
        let phase = field(&k, "probe", ".status.phase");
        let pid = field(&k, "probe", ".status.pid");
        (restarts == "1" && phase == "Running" && pid != first.to_string()).then_some(pid)
    });
    assert!(
        restarted.is_some(),
        "not restarted: {}",
        k.kubectl_ok(&["get", "plugin", "probe", "-o", "yaml"])
    );
    assert!(!alive(first));
    assert!(alive(pid_of(&k, "probe")));
    let table = k.kubectl_ok(&["get", "plugins"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("probe "))
        .unwrap_or_default();
    assert_eq!(row.split_whitespace().nth(4), Some("1"), "{table}");
    let error = field(&k, "probe", ".status.lastError");
    assert!(error.contains("signal: 9"), "lastError: {error}");
}

#[test]
fn plugin_exiting_at_once_backs_off_into_crash_loop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let starts = dir.path().join("starts");
    let settings = format!("{{ mode: exit, startsFile: {} }}", starts.display());
    let k = up_with(dir.path(), "", &test_plugin("crasher", &settings), &[]);
    let times = eventually(PATIENCE, || {
        let text = std::fs::read_to_string(&starts).ok()?;
        let times: Vec<u64> = text.lines().filter_map(|l| l.parse().ok()).collect();
        (times.len() >= 4).then_some(times)
    })
    .expect("the crashing plugin was not started 4 times");
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for pair in gaps.windows(2) {
        // Each delay doubles; allow for start-up jitter.
        assert!(
            pair[1] as f64 > pair[0] as f64 * 1.5,
            "delays do not grow: {gaps:?}"
        );
    }
    assert!(gaps[0] >= 900, "first delay too short: {gaps:?}");
    wait_phase(&k, "crasher", "CrashLoopBackOff");
    let restarts: u32 = field(&k, "crasher", ".status.restarts")
        .parse()
        .unwrap_or(0);
    assert!(restarts >= 3, "restarts {restarts}");
    let error = field(&k, "crasher", ".status.lastError");
    assert!(error.contains("exit status: 3"), "lastError: {error}");
}

#[test]
fn garbled_and_future_handshakes_are_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = test_plugin("garbled", "{ mode: garbled }")
        + &test_plugin("future", "{ mode: future-protocol }");
    let k = up_with(dir.path(), "", &plugins, &[]);
    wait_phase(&k, "garbled", "Failed");
    wait_phase(&k, "future", "Failed");
    assert_eq!(
        field(&k, "garbled", ".status.lastError"),
        "handshake: expected 'KERNO_PLUGIN <version> <unix:///path | tcp://host:port>', got \"hello, I am not a handshake\""
    );
    assert_eq!(
        field(&k, "future", ".status.lastError"),
        "handshake: unsupported plugin protocol version 99; this kernel supports [1]"
    );
    let described = k.kubectl_ok(&["describe", "plugin", "garbled"]);
    assert!(described.contains("handshake: expected"), "{described}");
}

#[test]
fn stopping_the_kernel_leaves_no_plugin_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = test_plugin("polite", "{ mode: healthy }")
        + &test_plugin("stubborn", "{ mode: ignore-sigterm }");
    let k = up_with(dir.path(), "  pluginGracePeriodSeconds: 2", &plugins, &[]);
    wait_phase(&k, "polite", "Running");
    wait_phase(&k, "stubborn", "Running");
    let pids = [pid_of(&k, "polite"), pid_of(&k, "stubborn")];
    assert!(pids.iter().all(|p| alive(*p)));
    let kernel = k.pid().expect("kernel pid");
    signal(kernel, "-TERM");
    let gone = eventually(Duration::from_secs(20), || {
        (!alive(kernel) && pids.iter().all(|p| !alive(*p))).then_some(())
    });
    assert!(
        gone.is_some(),
        "still alive after SIGTERM: kernel {} plugins {:?}",
        alive(kernel),
        pids.map(|p| (p, alive(p)))
    );
}

#[test]
fn sdk_plugins_stop_when_the_kernel_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut k = up_with(
        dir.path(),
        "",
        &test_plugin("orphan", "{ mode: healthy }"),
        &[],
    );
    wait_phase(&k, "orphan", "Running");
    let plugin = pid_of(&k, "orphan");
    let kernel = k.pid().expect("kernel pid");
    // kill -9 gives the kernel no chance to stop its plugins: the plugin
    // notices its supervisor is gone and stops by itself, so a restarted
    // kernel never runs two copies side by side.
    signal(kernel, "-KILL");
    let gone = eventually(Duration::from_secs(10), || (!alive(plugin)).then_some(()));
    assert!(gone.is_some(), "plugin {plugin} outlived its kernel");
    k.kill9_and_restart().expect("restart the kernel");
    // The restarted kernel starts one new copy.
    let again = eventually(PATIENCE, || {
        let pid = field(&k, "orphan", ".status.pid").parse::<u32>().ok()?;
        (pid != plugin && alive(pid)).then_some(pid)
    });
    assert!(
        again.is_some(),
        "the restarted kernel did not start the plugin again"
    );
}

#[test]
fn plugin_token_cannot_register_another_plugin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let result = dir.path().join("result");
    let settings = format!(
        "{{ mode: healthy, impersonate: victim, resultFile: {} }}",
        result.display()
    );
    let k = up_with(dir.path(), "", &test_plugin("mallory", &settings), &[]);
    wait_phase(&k, "mallory", "Running");
    let outcome = eventually(PATIENCE, || std::fs::read_to_string(&result).ok())
        .expect("the plugin did not report its impersonation attempt");
    assert!(outcome.starts_with("PermissionDenied"), "{outcome}");
    assert!(outcome.contains("\"mallory\""), "{outcome}");
    k.kubectl_err(&["get", "plugin", "victim"]);
}

const BOOTSTRAP: &str = "abcdef.0123456789abcdef";
const EXPIRED: &str = "old123.0123456789abcdef";

async fn register_with_token(k: &Kerno, token: &str) -> Result<(), tonic::Status> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let ca = std::fs::read(k.data_dir().join("pki/ca.crt")).expect("ca");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", k.addr))
        .and_then(|e| e.tls_config(tls))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let bearer: tonic::metadata::MetadataValue<_> =
        format!("Bearer {token}").parse().expect("header");
    let mut client = pb::plugin_registry_client::PluginRegistryClient::with_interceptor(
        channel,
        move |mut req: tonic::Request<()>| {
            req.metadata_mut().insert("authorization", bearer.clone());
            Ok(req)
        },
    );
    client
        .register(pb::RegisterRequest {
            name: "by-hand".into(),
            kind: "test".into(),
            version: "1".into(),
            protocol_versions: vec![1],
            capabilities: vec![],
            endpoint: "tcp://127.0.0.1:1".into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread")]
async fn bootstrap_tokens_admit_external_plugins_and_bad_tokens_are_refused() {
    let expired = format!("{EXPIRED}@2020-01-01T00:00:00Z");
    let k = Kerno::start_with(
        Backend::Embedded,
        &[
            "--bootstrap-token",
            BOOTSTRAP,
            "--bootstrap-token",
            &expired,
        ],
    )
    .expect("kerno up");
    // A plugin started by hand, authenticated only by the bootstrap token.
    let mut external = Command::new(binary("kerno-test-plugin"))
        .env("KERNO_KERNEL_ADDR", &k.addr)
        .env("KERNO_CA_FILE", k.data_dir().join("pki/ca.crt"))
        .env("KERNO_TOKEN", BOOTSTRAP)
        .env("KERNO_PLUGIN_NAME", "external")
        .env("KERNO_PLUGIN_CONFIG", "{}")
        .env_remove("KERNO_CLIENT_CERT_FILE")
        .env_remove("KERNO_CLIENT_KEY_FILE")
        .env_remove("KERNO_PLUGIN_SOCKET_DIR")
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn external plugin");
    let running = eventually(PATIENCE, || {
        (field(&k, "external", ".status.phase") == "Running").then_some(())
    });
    let _ = external.kill();
    let _ = external.wait();
    assert!(running.is_some(), "the external plugin did not register");

    assert!(register_with_token(&k, BOOTSTRAP).await.is_ok());
    for bad in [EXPIRED, "garbled-token", "abcdef.0000000000000000"] {
        let err = register_with_token(&k, bad).await.expect_err(bad);
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{bad}: {err:?}");
    }

    // REST: the same tokens, without a client certificate.
    let ca = std::fs::read(k.data_dir().join("pki/ca.crt")).expect("ca");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("ca pem"))
        .build()
        .expect("client");
    let get = |token: &str| {
        http.get(k.url("/api/v1/namespaces"))
            .bearer_auth(token)
            .send()
    };
    // A valid bootstrap token authenticates, but grants no object rights
    // until RBAC binds some: 403, not 401.
    let forbidden = get(BOOTSTRAP).await.expect("request");
    assert_eq!(forbidden.status(), 403);
    k.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "bootstrappers-view",
        "--clusterrole=view",
        "--group=system:bootstrappers",
    ]);
    let mut allowed = false;
    for _ in 0..100 {
        if get(BOOTSTRAP).await.is_ok_and(|r| r.status() == 200) {
            allowed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(allowed, "the binding did not take effect");
    for bad in [EXPIRED, "garbled-token"] {
        let refused = get(bad).await.expect("request");
        assert_eq!(refused.status(), 401, "{bad}");
        let body: serde_json::Value = refused.json().await.expect("status body");
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["reason"], "Unauthorized");
    }
}

#[test]
fn example_controller_runs_under_the_supervisor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = format!(
        "  example:\n    command: [{}]\n",
        binary("kerno-example-controller").display()
    );
    let k = up_with(dir.path(), "", &plugins, &[]);
    wait_phase(&k, "example", "Running");
    let kind = field(&k, "example", ".spec.kind");
    assert_eq!(kind, "controller");
}
