//! A real node under the real kubectl: the kubelet with the containerd
//! runtime driver (a private containerd and runc) and the bridge network
//! driver, the scheduler placing the pod. `kubectl run` starts a busybox
//! pod that really runs, `kubectl logs` reads it through the kernel, HTTP
//! reaches it on its pod IP, and `kubectl delete` stops it and leaves
//! nothing behind.
//!
//! The node's network lives in a network namespace this test creates (the
//! bridge driver runs inside it; no route leaves it). The kubelet and the
//! runtime driver run in the root namespace, where the kernel's loopback
//! address is, as on a real node.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kerno_tests::containerd::Containerd;
use kerno_tests::image::build_busybox_image;
use kerno_tests::netns::{NetnsPlugin, TestNetns};
use kerno_tests::{Kerno, PluginProcess, eventually};

const NODE: &str = "node-e2e";
const POD_CIDR: &str = "10.244.9.0/24";

/// A directory bind-mounted onto itself and made a shared mount, so mounts
/// made below it later (the runtime's pod network namespaces) also appear in
/// the mount namespace `ip netns exec` gives the network driver. On a real
/// node both drivers share one mount namespace and this is not needed.
struct SharedMount(PathBuf);

impl SharedMount {
    fn new(dir: &Path) -> SharedMount {
        std::fs::create_dir_all(dir).expect("mount dir");
        let run = |args: &[&str]| {
            let status = Command::new("mount")
                .args(args)
                .arg(dir)
                .arg(dir)
                .status()
                .expect("mount");
            assert!(status.success(), "mount {args:?} {}", dir.display());
        };
        run(&["--bind"]);
        let status = Command::new("mount")
            .args(["--make-shared"])
            .arg(dir)
            .status()
            .expect("mount --make-shared");
        assert!(status.success(), "mount --make-shared {}", dir.display());
        SharedMount(dir.to_owned())
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-R").arg(&self.0).status();
    }
}

/// One node: kernel, containerd, both drivers, kubelet and scheduler. Field
/// order is drop order: processes first, then mounts and directories.
struct Cluster {
    k: Kerno,
    scheduler: PluginProcess,
    kubelet: PluginProcess,
    network: NetnsPlugin,
    runtime_driver: PluginProcess,
    node_ns: TestNetns,
    containerd_namespace: String,
    runtime_state: PathBuf,
    _shared: SharedMount,
    containerd: Containerd,
    _dir: tempfile::TempDir,
}

async fn cluster() -> Cluster {
    let k = Kerno::up().expect("kerno up");
    let containerd = Containerd::start().expect("a private containerd");
    let dir = tempfile::Builder::new()
        .prefix("kerno-node-")
        .tempdir()
        .expect("temp dir");
    let sockets = dir.path().join("sockets");
    std::fs::create_dir_all(&sockets).expect("socket dir");
    let shared = SharedMount::new(&dir.path().join("runtime"));
    let runtime_state = shared.0.join("state");
    let containerd_namespace = format!("kerno-node-e2e-{}", std::process::id());

    let (runtime_driver, runtime_socket) = k
        .spawn_plugin_on_socket(
            "kerno-cri-containerd",
            "cri-containerd",
            serde_json::json!({
                "address": containerd.socket,
                "namespace": containerd_namespace,
                "stateDir": runtime_state,
            }),
            &sockets,
        )
        .expect("kerno-cri-containerd (cargo build -p kerno-cri-containerd)");
    eventually(Duration::from_secs(20), || {
        runtime_socket.exists().then_some(())
    })
    .expect("the runtime driver never created its socket");
    // The test image, built from busybox-static, imported the way a user
    // would: `kerno image import` through the node's runtime driver.
    let archive = build_busybox_image(dir.path()).expect("busybox image");
    let endpoint = format!("unix://{}", runtime_socket.display());
    let kerno = kerno_tests::kerno_bin().expect("kerno binary");
    let import = Command::new(&kerno)
        .args(["image", "import"])
        .arg(&archive)
        .args(["--runtime-endpoint", &endpoint])
        .output()
        .expect("kerno image import");
    let imported = String::from_utf8_lossy(&import.stdout);
    assert!(
        import.status.success() && imported.contains("docker.io/library/busybox:latest"),
        "kerno image import: {import:?}"
    );
    let listed = Command::new(&kerno)
        .args(["image", "ls", "--runtime-endpoint", &endpoint])
        .output()
        .expect("kerno image ls");
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("busybox:latest"),
        "kerno image ls: {listed:?}"
    );
    let missing = Command::new(&kerno)
        .args([
            "image",
            "import",
            "/nonexistent/image.tar",
            "--runtime-endpoint",
            &endpoint,
        ])
        .output()
        .expect("kerno image import of a missing file");
    assert!(
        !missing.status.success()
            && String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/image.tar"),
        "{missing:?}"
    );

    let node_ns = TestNetns::create().expect("the node's network namespace");
    let network = node_ns
        .spawn_plugin(
            "kerno-cni-bridge",
            "cni-bridge",
            serde_json::json!({
                "bridge": "kerno0",
                "podCIDR": POD_CIDR,
                "nodeName": NODE,
                "stateDir": dir.path().join("network"),
                "hairpin": true,
                "standalone": true,
            }),
            &sockets,
            None,
        )
        .expect("kerno-cni-bridge in the node's namespace");

    let kubelet = k
        .spawn_plugin(
            "kerno-kubelet",
            "kubelet",
            serde_json::json!({
                "nodeName": NODE,
                "runtimeEndpoint": format!("unix://{}", runtime_socket.display()),
                "networkEndpoint": format!("unix://{}", network.socket().display()),
                "rootDir": dir.path().join("kubelet"),
                "nodeIP": "127.0.0.1",
                "kubeletPort": 0,
                "podCIDR": POD_CIDR,
            }),
        )
        .expect("kerno-kubelet (cargo build -p kerno-kubelet)");
    let scheduler = k
        .spawn_plugin(
            "kerno-scheduler-default",
            "scheduler-default",
            serde_json::json!({}),
        )
        .expect("kerno-scheduler-default (cargo build -p kerno-scheduler-default)");
    Cluster {
        k,
        scheduler,
        kubelet,
        network,
        runtime_driver,
        node_ns,
        containerd_namespace,
        runtime_state,
        _shared: shared,
        containerd,
        _dir: dir,
    }
}

impl Cluster {
    fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let mut all = args.to_vec();
        let expr = format!("jsonpath={path}");
        all.extend(["-o", &expr]);
        let out = self.k.kubectl(&all);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Links in the node's namespace other than loopback and the bridge:
    /// the pods' veths.
    fn pod_links(&self) -> Vec<String> {
        let out = self
            .node_ns
            .exec_ok(&["ip", "-o", "link", "show"])
            .expect("ip link in the node namespace");
        out.lines()
            .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_owned()))
            .map(|n| n.split('@').next().unwrap_or_default().to_owned())
            .filter(|n| n != "lo" && n != "kerno0")
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_runs_a_real_pod_reads_its_logs_reaches_it_and_deletes_it() {
    let c = cluster().await;
    eventually(Duration::from_secs(60), || {
        let ready = c.jsonpath(
            &["get", "node", NODE],
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        );
        (ready == "True").then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the node never became Ready: {}",
            c.k.kubectl_ok(&["get", "node", NODE, "-o", "yaml"])
        )
    });

    // A shell that stops on SIGTERM (PID 1 ignores signals it has no handler
    // for), prints a line, and serves HTTP with busybox httpd.
    let script = "trap 'echo got SIGTERM; exit 0' TERM; echo hello from kerno; \
                  mkdir -p /www; echo pod-says-hi > /www/index.html; \
                  httpd -f -p 8080 -h /www & wait";
    c.k.kubectl_ok(&[
        "run",
        "web",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        script,
    ]);
    let ip = eventually(Duration::from_secs(60), || {
        let phase = c.jsonpath(&["get", "pod", "web"], "{.status.phase} {.status.podIP}");
        let mut parts = phase.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("Running"), Some(ip)) => Some(ip.to_owned()),
            _ => None,
        }
    })
    .unwrap_or_else(|| {
        panic!(
            "the pod never ran: {}",
            c.k.kubectl_ok(&["describe", "pod", "web"])
        )
    });
    assert!(
        ip.starts_with("10.244.9."),
        "pod IP {ip} outside {POD_CIDR}"
    );
    assert_eq!(c.jsonpath(&["get", "pod", "web"], "{.spec.nodeName}"), NODE);
    let wide = c.k.kubectl_ok(&["get", "pod", "web", "-o", "wide"]);
    assert!(
        wide.contains("Running") && wide.contains(&ip) && wide.contains(NODE),
        "{wide}"
    );

    // Logs come from the container's stdout through the kernel and kubelet.
    let logs = eventually(Duration::from_secs(20), || {
        let out = c.k.kubectl(&["logs", "web"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("hello from kerno").then_some(text)
    })
    .unwrap_or_else(|| {
        let out = c.k.kubectl(&["logs", "web"]);
        panic!(
            "kubectl logs never showed the line: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(logs.trim(), "hello from kerno");
    let err = c.k.kubectl_err(&["logs", "web", "-c", "nope"]);
    assert!(
        err.contains("container nope is not valid for pod web"),
        "{err}"
    );

    // exec through the kernel to the kubelet (WebSocket, v5.channel.k8s.io).
    assert_eq!(
        c.k.kubectl_ok(&["exec", "web", "--", "hostname"]).trim(),
        "web"
    );
    let failed =
        c.k.kubectl(&["exec", "web", "--", "sh", "-c", "echo oops >&2; exit 3"]);
    assert_eq!(failed.status.code(), Some(3), "{failed:?}");
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("oops"),
        "{failed:?}"
    );
    let echoed =
        c.k.kubectl_stdin(&["exec", "-i", "web", "--", "cat"], Some("through stdin\n"));
    assert_eq!(
        String::from_utf8_lossy(&echoed.stdout),
        "through stdin\n",
        "{echoed:?}"
    );
    // `-it` under a pseudo-terminal (util-linux `script`): the command sees a TTY.
    let kubeconfig = c.k.kubeconfig();
    let tty = Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "kubectl --kubeconfig {} exec -it web -- sh -c 'tty; test -t 0 && echo stdin-is-a-tty'",
            kubeconfig.display()
        ))
        .arg("/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script");
    let tty_out = String::from_utf8_lossy(&tty.stdout);
    assert!(
        tty_out.contains("/dev/pts/") && tty_out.contains("stdin-is-a-tty"),
        "exec -it: {tty:?}"
    );

    // The pod is on the node's bridge: HTTP from the node's namespace.
    let url = format!("http://{ip}:8080/");
    let fetch = format!(
        "import urllib.request; print(urllib.request.urlopen('{url}', timeout=2).read().decode(), end='')"
    );
    let wget = ["/usr/bin/python3", "-c", fetch.as_str()];
    let page = eventually(Duration::from_secs(20), || c.node_ns.exec_ok(&wget).ok())
        .unwrap_or_else(|| {
            panic!(
                "no HTTP answer from {url} in the node's namespace: {:?}; addresses: {:?}",
                c.node_ns.exec_ok(&wget),
                c.node_ns.exec_ok(&["ip", "-o", "addr"]),
            )
        });
    assert_eq!(page.trim(), "pod-says-hi");
    assert_eq!(c.pod_links().len(), 1, "one veth for one pod");
    let containers = c
        .containerd
        .ids(&c.containerd_namespace, "containers")
        .expect("ctr containers");
    assert_eq!(containers.len(), 1, "{containers:?}");

    // Delete: SIGTERM reaches the shell, which exits at once (well inside
    // the 30 s grace period), and the pod object goes away.
    let started = Instant::now();
    c.k.kubectl_ok(&["delete", "pod", "web", "--timeout=60s"]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "deleting took {took:?}: SIGTERM was not delivered"
    );

    // Nothing is left: containers, tasks, veths, sandbox state.
    eventually(Duration::from_secs(20), || {
        let containers = c
            .containerd
            .ids(&c.containerd_namespace, "containers")
            .ok()?;
        let tasks = c.containerd.ids(&c.containerd_namespace, "tasks").ok()?;
        (containers.is_empty() && tasks.is_empty() && c.pod_links().is_empty()).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "left behind: containers {:?}, tasks {:?}, links {:?}",
            c.containerd.ids(&c.containerd_namespace, "containers"),
            c.containerd.ids(&c.containerd_namespace, "tasks"),
            c.pod_links()
        )
    });
    let sandboxes: Vec<_> = std::fs::read_dir(c.runtime_state.join("sandboxes"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(sandboxes.is_empty(), "sandbox state left: {sandboxes:?}");
    let _ = (&c.scheduler, &c.kubelet, &c.network, &c.runtime_driver);
}
