//! One real node for tests and benchmarks: the kubelet, the containerd
//! runtime driver on a shared (test-started) containerd, and the bridge
//! network driver inside a network namespace the caller created.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::containerd::Containerd;
use crate::image::build_busybox_image;
use crate::netns::{NetnsPlugin, TestNetns};
use crate::{Kerno, PluginProcess, eventually};

/// A directory bind-mounted onto itself and made a shared mount, so mounts
/// made below it later (the runtime's pod network namespaces) also appear in
/// the mount namespace `ip netns exec` gives the network driver. On a real
/// node both drivers share one mount namespace and this is not needed.
pub struct SharedMount(pub PathBuf);

impl SharedMount {
    /// Bind-mounts `dir` onto itself as a shared mount.
    pub fn new(dir: &Path) -> SharedMount {
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

/// One node's agent: the kubelet and both drivers, the node's network
/// namespace and its containerd namespace. Field order is drop order.
pub struct NodeAgent {
    /// The kubelet (root network namespace, like the kernel).
    pub kubelet: PluginProcess,
    /// The bridge driver, inside `ns`.
    pub network: NetnsPlugin,
    /// The containerd runtime driver.
    pub runtime_driver: PluginProcess,
    /// The node's network namespace.
    pub ns: TestNetns,
    /// The node's containerd namespace.
    pub containerd_namespace: String,
    /// The runtime driver's state directory.
    pub runtime_state: PathBuf,
    _shared: SharedMount,
}

/// Starts node `name` under `dir`: the runtime driver on the shared
/// containerd (its own containerd namespace) with the busybox image imported
/// by `kerno image import`, the bridge driver inside `ns`, and the kubelet.
pub fn start_node(
    k: &Kerno,
    containerd: &Containerd,
    dir: &Path,
    name: &str,
    pod_cidr: &str,
    node_ip: &str,
    ns: TestNetns,
) -> NodeAgent {
    start_node_with(
        k,
        containerd,
        dir,
        name,
        pod_cidr,
        node_ip,
        ns,
        serde_json::json!({}),
    )
}

/// [`start_node`] with more kubelet settings (e.g. `clusterDNS`) merged in.
#[allow(clippy::too_many_arguments)]
pub fn start_node_with(
    k: &Kerno,
    containerd: &Containerd,
    dir: &Path,
    name: &str,
    pod_cidr: &str,
    node_ip: &str,
    ns: TestNetns,
    kubelet_extra: serde_json::Value,
) -> NodeAgent {
    let dir = dir.join(name);
    let sockets = dir.join("sockets");
    std::fs::create_dir_all(&sockets).expect("socket dir");
    let shared = SharedMount::new(&dir.join("runtime"));
    let runtime_state = shared.0.join("state");
    let containerd_namespace = format!("kerno-{name}-{}", std::process::id());

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
    let archive = build_busybox_image(&dir).expect("busybox image");
    let endpoint = format!("unix://{}", runtime_socket.display());
    let kerno = crate::kerno_bin().expect("kerno binary");
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

    let network = ns
        .spawn_plugin(
            "kerno-cni-bridge",
            "cni-bridge",
            serde_json::json!({
                "bridge": "kerno0",
                "podCIDR": pod_cidr,
                "nodeName": name,
                "stateDir": dir.join("network"),
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
                "nodeName": name,
                "runtimeEndpoint": endpoint,
                "networkEndpoint": format!("unix://{}", network.socket().display()),
                "rootDir": dir.join("kubelet"),
                "nodeIP": node_ip,
                "kubeletPort": 0,
                "podCIDR": pod_cidr,
            })
            .as_object()
            .cloned()
            .map(|mut config| {
                if let Some(extra) = kubelet_extra.as_object() {
                    config.extend(extra.clone());
                }
                serde_json::Value::Object(config)
            })
            .unwrap_or_default(),
        )
        .expect("kerno-kubelet (cargo build -p kerno-kubelet)");
    NodeAgent {
        kubelet,
        network,
        runtime_driver,
        ns,
        containerd_namespace,
        runtime_state,
        _shared: shared,
    }
}

impl NodeAgent {
    /// Links in the node's namespace other than loopback, the bridge and
    /// `keep`: the pods' veths.
    pub fn pod_links(&self, keep: &[&str]) -> Vec<String> {
        let out = self
            .ns
            .exec_ok(&["ip", "-o", "link", "show"])
            .expect("ip link in the node namespace");
        out.lines()
            .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().to_owned()))
            .map(|n| n.split('@').next().unwrap_or_default().to_owned())
            .filter(|n| n != "lo" && n != "kerno0" && !keep.contains(&n.as_str()))
            .collect()
    }
}

/// Whether node `name` reports Ready within `patience`.
pub fn node_ready_within(k: &Kerno, name: &str, patience: Duration) -> bool {
    eventually(patience, || {
        let out = k.kubectl(&[
            "get",
            "node",
            name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (out.stdout == b"True").then_some(())
    })
    .is_some()
}
