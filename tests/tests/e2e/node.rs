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

use std::process::Command;
use std::time::{Duration, Instant};

use kerno_tests::containerd::Containerd;
use kerno_tests::netns::TestNetns;
use kerno_tests::node::{NodeAgent, SharedMount, node_ready_within, start_node};
use kerno_tests::{Backend, Kerno, PluginProcess, eventually};

const NODE: &str = "node-e2e";
const POD_CIDR: &str = "10.244.9.0/24";

/// A kernel, the scheduler and one real node. Field order is drop order.
struct Cluster {
    k: Kerno,
    scheduler: PluginProcess,
    node: NodeAgent,
    containerd: Containerd,
    _dir: tempfile::TempDir,
}

async fn cluster(tag: &str) -> Cluster {
    let k = Kerno::up().expect("kerno up");
    let containerd = Containerd::start().expect("a private containerd");
    let dir = tempfile::Builder::new()
        .prefix(&format!("kerno-node-{tag}-"))
        .tempdir()
        .expect("temp dir");
    let ns = TestNetns::create().expect("the node's network namespace");
    let node = start_node(&k, &containerd, dir.path(), NODE, POD_CIDR, "127.0.0.1", ns);
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
        node,
        containerd,
        _dir: dir,
    }
}

impl Cluster {
    /// Waits for the node's Ready condition.
    fn wait_node_ready(&self) {
        assert!(
            node_ready_within(&self.k, NODE, Duration::from_secs(60)),
            "the node never became Ready: {}",
            self.k.kubectl_ok(&["get", "node", NODE, "-o", "yaml"])
        );
    }

    /// Waits until `check` holds for the pod's JSON; panics with `describe`.
    fn wait_pod(&self, pod: &str, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
        let seen = eventually(Duration::from_secs(60), || {
            let out = self.k.kubectl(&["get", "pod", pod, "-o", "json"]);
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            check(&json).then_some(())
        });
        if seen.is_none() {
            panic!(
                "pod {pod}: {what} never happened:\n{}",
                self.k.kubectl_ok(&["describe", "pod", pod])
            );
        }
    }

    fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let mut all = args.to_vec();
        let expr = format!("jsonpath={path}");
        all.extend(["-o", &expr]);
        let out = self.k.kubectl(&all);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn pod_links(&self) -> Vec<String> {
        self.node.pod_links(&[])
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_runs_a_real_pod_reads_its_logs_reaches_it_and_deletes_it() {
    let c = cluster("run").await;
    c.wait_node_ready();

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
    // `logs -f` streams: the line arrives and kubectl keeps following.
    let mut follow = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(c.k.kubeconfig())
        .args(["logs", "-f", "web"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl logs -f");
    let mut first = String::new();
    {
        use std::io::BufRead;
        let stdout = follow.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .expect("a followed line");
    }
    assert_eq!(first.trim(), "hello from kerno");
    assert!(
        follow.try_wait().expect("kubectl status").is_none(),
        "kubectl logs -f stopped following"
    );
    let _ = follow.kill();
    let _ = follow.wait();
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

    // port-forward through the kernel to the kubelet (SPDY over a
    // WebSocket): two requests on one forward, each its own stream pair,
    // reach httpd on the pod's port 8080.
    let forward = PortForward::start(&c.k, "web", "8080");
    for _ in 0..2 {
        assert_eq!(http_get_loopback(forward.port).trim(), "pod-says-hi");
    }
    drop(forward);
    // Nothing listens on 9999: the local connection closes and kubectl
    // prints the kubelet's reason.
    let refused = PortForward::start(&c.k, "web", "9999");
    let answer = std::net::TcpStream::connect(("127.0.0.1", refused.port)).and_then(|mut s| {
        use std::io::Read;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).map(|_| out)
    });
    assert!(
        matches!(&answer, Ok(bytes) if bytes.is_empty()),
        "{answer:?}"
    );
    eventually(Duration::from_secs(10), || {
        refused
            .stderr()
            .contains("error forwarding port 9999 to pod default/web")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("kubectl port-forward said: {}", refused.stderr()));
    drop(refused);

    // The pod is on the node's bridge: HTTP from the node's namespace.
    let url = format!("http://{ip}:8080/");
    let fetch = format!(
        "import urllib.request; print(urllib.request.urlopen('{url}', timeout=2).read().decode(), end='')"
    );
    let wget = ["/usr/bin/python3", "-c", fetch.as_str()];
    let page = eventually(Duration::from_secs(20), || c.node.ns.exec_ok(&wget).ok())
        .unwrap_or_else(|| {
            panic!(
                "no HTTP answer from {url} in the node's namespace: {:?}; addresses: {:?}",
                c.node.ns.exec_ok(&wget),
                c.node.ns.exec_ok(&["ip", "-o", "addr"]),
            )
        });
    assert_eq!(page.trim(), "pod-says-hi");
    assert_eq!(c.pod_links().len(), 1, "one veth for one pod");
    let containers = c
        .containerd
        .ids(&c.node.containerd_namespace, "containers")
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
            .ids(&c.node.containerd_namespace, "containers")
            .ok()?;
        let tasks = c
            .containerd
            .ids(&c.node.containerd_namespace, "tasks")
            .ok()?;
        (containers.is_empty() && tasks.is_empty() && c.pod_links().is_empty()).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "left behind: containers {:?}, tasks {:?}, links {:?}",
            c.containerd.ids(&c.node.containerd_namespace, "containers"),
            c.containerd.ids(&c.node.containerd_namespace, "tasks"),
            c.pod_links()
        )
    });
    let sandboxes: Vec<_> = std::fs::read_dir(c.node.runtime_state.join("sandboxes"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(sandboxes.is_empty(), "sandbox state left: {sandboxes:?}");
    let _ = &c.scheduler;
}

/// `kerno up --config` composing a real node the way the README's "A real
/// node" does (kubelet, cri-containerd, cni-bridge and the scheduler under
/// the supervisor), except that the bridge driver runs in a network
/// namespace of the test's (through `command:`) and containerd is private:
/// the node turns Ready and kubectl runs a busybox pod on it.
#[tokio::test(flavor = "multi_thread")]
async fn kerno_up_composes_a_real_node_that_runs_a_pod() {
    let containerd = Containerd::start().expect("a private containerd");
    let dir = tempfile::Builder::new()
        .prefix("kerno-up-node-")
        .tempdir()
        .expect("temp dir");
    let ns = TestNetns::create().expect("the node's network namespace");
    let shared = SharedMount::new(&dir.path().join("runtime"));
    let bin = kerno_tests::bin_dir();
    let config = dir.path().join("cluster.yaml");
    let yaml = format!(
        r#"plugins:
  scheduler-default: {{}}
  cri-containerd:
    address: {containerd}
    namespace: kerno-up-{pid}
    stateDir: {state}
  cni-bridge:
    command: [ip, netns, exec, {ns}, {bin}/kerno-cni-bridge]
    bridge: kerno0
    podCIDR: 10.244.8.0/24
    nodeName: up-node
    stateDir: {dir}/cni
    standalone: true
  kubelet:
    nodeName: up-node
    podCIDR: 10.244.8.0/24
    rootDir: {dir}/kubelet
    nodeIP: 127.0.0.1
    kubeletPort: 0
"#,
        containerd = containerd.socket.display(),
        pid = std::process::id(),
        state = shared.0.join("state").display(),
        ns = ns.name(),
        bin = bin.display(),
        dir = dir.path().display(),
    );
    std::fs::write(&config, yaml).expect("write the config");
    let config_arg = config.display().to_string();
    let k = Kerno::start_with(Backend::AllInOne, &["--config", &config_arg])
        .expect("kerno up --config");

    // The image, imported the way the README says: `kerno image import`
    // finds the runtime driver's socket from the data dir.
    let archive = kerno_tests::image::build_busybox_image(dir.path()).expect("busybox image");
    let kerno = kerno_tests::kerno_bin().expect("kerno binary");
    let imported = eventually(Duration::from_secs(30), || {
        let out = Command::new(&kerno)
            .args(["image", "import"])
            .arg(&archive)
            .arg("--data-dir")
            .arg(k.data_dir())
            .output()
            .ok()?;
        out.status.success().then_some(())
    });
    assert!(
        imported.is_some(),
        "kerno image import --data-dir never worked"
    );

    assert!(
        node_ready_within(&k, "up-node", Duration::from_secs(60)),
        "the node never became Ready: {} {}",
        k.kubectl_ok(&["get", "plugins"]),
        String::from_utf8_lossy(&k.kubectl(&["get", "nodes", "-o", "wide"]).stdout)
    );
    // The kubelet runs with its own plugin token under the supervisor: its
    // heartbeat Lease must be allowed by its role.
    let lease = eventually(Duration::from_secs(30), || {
        let out = k.kubectl(&[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            "up-node",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        (out.stdout == b"up-node").then_some(())
    });
    assert!(lease.is_some(), "the kubelet never wrote its Lease");
    k.kubectl_ok(&["run", "box", "--image=busybox", "--", "sleep", "3600"]);
    let running = eventually(Duration::from_secs(60), || {
        let out = k.kubectl(&[
            "get",
            "pod",
            "box",
            "-o",
            "jsonpath={.status.phase} {.status.podIP}",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.starts_with("Running 10.244.8.").then_some(text)
    });
    assert!(
        running.is_some(),
        "the pod never ran: {}",
        k.kubectl_ok(&["describe", "pod", "box"])
    );
    assert_eq!(
        k.kubectl_ok(&["exec", "box", "--", "hostname"]).trim(),
        "box"
    );
    k.kubectl_ok(&["delete", "pod", "box", "--grace-period=1", "--timeout=60s"]);
    let gone = eventually(Duration::from_secs(30), || {
        let ids = containerd
            .ids(&format!("kerno-up-{}", std::process::id()), "containers")
            .ok()?;
        ids.is_empty().then_some(())
    });
    assert!(gone.is_some(), "the pod's container was left behind");
    drop(k);
    drop(shared);
}

/// A running `kubectl port-forward pod/<pod> :<remote>` and the local port
/// it chose.
struct PortForward {
    child: std::process::Child,
    port: u16,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl PortForward {
    fn start(k: &Kerno, pod: &str, remote: &str) -> PortForward {
        use std::io::BufRead;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(k.kubeconfig())
            .args(["port-forward", "--address", "127.0.0.1"])
            .arg(format!("pod/{pod}"))
            .arg(format!(":{remote}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("kubectl port-forward");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let errors = child.stderr.take().expect("stderr");
        let collected = stderr.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(errors)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(mut all) = collected.lock() {
                    all.push_str(&line);
                    all.push('\n');
                }
            }
        });
        let (found, chosen) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // "Forwarding from 127.0.0.1:41235 -> 8080"
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(port) = line
                    .strip_prefix("Forwarding from 127.0.0.1:")
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|p| p.parse::<u16>().ok())
                {
                    let _ = found.send(port);
                }
            }
        });
        match chosen.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => PortForward {
                child,
                port,
                stderr,
            },
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kubectl port-forward never listened: {stderr:?}");
            }
        }
    }

    /// What kubectl has printed on stderr so far.
    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /` on a loopback port, HTTP/1.0 so the server closes after answering.
fn http_get_loopback(port: u16) -> String {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the forward");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
        .expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    body.to_owned()
}

fn container_status<'a>(pod: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    pod["status"]["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or(&serde_json::Value::Null)
}

fn condition(pod: &serde_json::Value, kind: &str) -> String {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

const FEATURES_POD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {color: blue, "app.conf": "mode=fast"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: s3cr3t-value}
---
apiVersion: v1
kind: Pod
metadata:
  name: features
  labels: {tier: web}
spec:
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: first
    image: busybox
    command: [sh, -c, "echo first >> /shared/order"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  - name: second
    image: busybox
    command: [sh, -c, "echo second >> /shared/order"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  containers:
  - name: main
    image: busybox
    command: [sh, -c, "trap 'exit 0' TERM; echo from-main > /shared/note; while true; do sleep 1; done"]
    env:
    - {name: COLOR, valueFrom: {configMapKeyRef: {name: settings, key: color}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
    - {name: MY_POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: PLAIN, value: plain-value}
    resources:
      limits: {memory: 64Mi, cpu: 500m}
    readinessProbe:
      exec: {command: [test, -f, /tmp/ready]}
      periodSeconds: 1
    volumeMounts:
    - {name: shared, mountPath: /shared}
    - {name: config, mountPath: /etc/config}
    - {name: secret, mountPath: /etc/secret}
    - {name: podinfo, mountPath: /etc/podinfo}
  - name: sidecar
    image: busybox
    command: [sh, -c, "trap 'exit 0' TERM; while true; do cat /shared/note > /tmp/seen 2>/dev/null; sleep 1; done"]
    volumeMounts: [{name: shared, mountPath: /shared}]
  volumes:
  - {name: shared, emptyDir: {}}
  - {name: config, configMap: {name: settings}}
  - {name: secret, secret: {secretName: creds}}
  - name: podinfo
    downwardAPI:
      items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
---
apiVersion: v1
kind: Pod
metadata: {name: liveness}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "touch /tmp/alive; sleep 2; rm /tmp/alive; sleep 600"]
    livenessProbe:
      exec: {command: [test, -f, /tmp/alive]}
      initialDelaySeconds: 1
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  containers:
  - {name: app, image: busybox, command: [sh, -c, "exit 7"]}
---
apiVersion: v1
kind: Pod
metadata: {name: retry}
spec:
  restartPolicy: OnFailure
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "test -f /state/ran && exit 0; touch /state/ran; exit 1"]
    volumeMounts: [{name: state, mountPath: /state}]
  volumes:
  - {name: state, emptyDir: {}}
---
apiVersion: v1
kind: Pod
metadata: {name: always}
spec:
  restartPolicy: Always
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; echo run-$n; echo last-line; sleep 1; exit 0"]
    volumeMounts: [{name: state, mountPath: /state}]
  volumes:
  - {name: state, emptyDir: {}}
---
apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {name: app, image: busybox, command: [sh, -c, "trap '' TERM; echo ignoring-sigterm; while true; do sleep 1; done"]}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn real_containers_get_volumes_env_probes_limits_and_restart_policies() {
    let c = cluster("features").await;
    c.wait_node_ready();
    c.k.kubectl_stdin(&["apply", "-f", "-"], Some(FEATURES_POD));
    c.wait_pod("features", "Running", |p| p["status"]["phase"] == "Running");
    let exec = |args: &[&str]| {
        let mut all = vec!["exec", "features", "-c", "main", "--"];
        all.extend_from_slice(args);
        c.k.kubectl_ok(&all)
    };
    // Init containers ran first, in order, into the shared emptyDir.
    assert_eq!(exec(&["cat", "/shared/order"]), "first\nsecond\n");
    // Env from a ConfigMap, a Secret, the downward API and a literal.
    let env = exec(&["env"]);
    let ip = c.jsonpath(&["get", "pod", "features"], "{.status.podIP}");
    for expected in [
        "COLOR=blue".to_owned(),
        "PASSWORD=s3cr3t-value".to_owned(),
        "MY_POD=features".to_owned(),
        format!("MY_IP={ip}"),
        "PLAIN=plain-value".to_owned(),
    ] {
        assert!(
            env.lines().any(|l| l == expected),
            "{expected} not in {env}"
        );
    }
    // ConfigMap, Secret and downward API volumes.
    assert_eq!(exec(&["cat", "/etc/config/app.conf"]), "mode=fast");
    assert_eq!(exec(&["cat", "/etc/secret/password"]), "s3cr3t-value");
    assert!(exec(&["cat", "/etc/podinfo/labels"]).contains("tier=\"web\""));
    // The sidecar reads what main wrote into the shared emptyDir.
    let seen = eventually(Duration::from_secs(15), || {
        let out = c.k.kubectl(&[
            "exec",
            "features",
            "-c",
            "sidecar",
            "--",
            "cat",
            "/tmp/seen",
        ]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.trim() == "from-main").then_some(())
    });
    assert!(seen.is_some(), "the sidecar never saw main's file");
    // The memory limit is on the container's cgroup (cgroup v1 here).
    let limit = exec(&["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]);
    assert_eq!(limit.trim(), (64 * 1024 * 1024).to_string());
    // Readiness gates Ready: not ready until the probe's file exists.
    let pod: serde_json::Value =
        serde_json::from_str(&c.k.kubectl_ok(&["get", "pod", "features", "-o", "json"]))
            .expect("pod json");
    assert_eq!(
        condition(&pod, "Ready"),
        "False",
        "ready before its probe passed"
    );
    assert_eq!(container_status(&pod, "main")["ready"], false);
    exec(&["touch", "/tmp/ready"]);
    c.wait_pod("features", "Ready", |p| condition(p, "Ready") == "True");

    // A failing liveness probe restarts the container and counts it.
    c.wait_pod("liveness", "a liveness restart", |p| {
        container_status(p, "app")["restartCount"]
            .as_i64()
            .unwrap_or(0)
            >= 1
    });
    let table = c.k.kubectl_ok(&["get", "pod", "liveness"]);
    let restarts: i64 = table
        .lines()
        .nth(1)
        .and_then(|row| row.split_whitespace().nth(3))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    assert!(restarts >= 1, "RESTARTS column: {table}");
    let events = c.k.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=liveness",
    ]);
    assert!(events.contains("Unhealthy"), "{events}");

    // restartPolicy: Never ends Failed with the exit code; OnFailure retries once then succeeds.
    c.wait_pod("once", "Failed", |p| p["status"]["phase"] == "Failed");
    let once: serde_json::Value =
        serde_json::from_str(&c.k.kubectl_ok(&["get", "pod", "once", "-o", "json"])).expect("json");
    let terminated = &container_status(&once, "app")["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 7, "{once}");
    assert_eq!(container_status(&once, "app")["restartCount"], 0);
    c.wait_pod("retry", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    });
    let retry: serde_json::Value =
        serde_json::from_str(&c.k.kubectl_ok(&["get", "pod", "retry", "-o", "json"]))
            .expect("json");
    assert_eq!(
        container_status(&retry, "app")["restartCount"],
        1,
        "{retry}"
    );
    // Always restarts a container even when it exits 0.
    c.wait_pod("always", "a restart", |p| {
        container_status(p, "app")["restartCount"].as_i64() >= Some(1)
    });
    // Logs of the instance before the restart, and only the last line.
    let previous = c.k.kubectl_ok(&["logs", "always", "--previous"]);
    let runs: Vec<&str> = previous.lines().collect();
    assert!(
        runs.len() == 2 && runs[0].starts_with("run-") && runs[1] == "last-line",
        "kubectl logs --previous: {previous:?}"
    );
    let tail = eventually(Duration::from_secs(10), || {
        let out = c.k.kubectl(&["logs", "always", "--tail=1"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.trim() == "last-line").then_some(text)
    });
    assert!(
        tail.is_some(),
        "kubectl logs --tail=1 never showed only the last line"
    );
    // A container ignoring SIGTERM is killed once its 2 s grace period is over.
    c.wait_pod("stubborn", "Running", |p| p["status"]["phase"] == "Running");
    eventually(Duration::from_secs(20), || {
        let out = c.k.kubectl(&["logs", "stubborn"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("ignoring-sigterm")
            .then_some(())
    })
    .expect("the stubborn pod's trap never ran");
    let started = Instant::now();
    c.k.kubectl_ok(&["delete", "pod", "stubborn", "--timeout=60s"]);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(12),
        "deleting a pod that ignores SIGTERM took {took:?}; its grace period is 2 s"
    );

    c.k.kubectl_ok(&["delete", "pod", "--all", "--timeout=60s"]);
    eventually(Duration::from_secs(20), || {
        let containers = c
            .containerd
            .ids(&c.node.containerd_namespace, "containers")
            .ok()?;
        (containers.is_empty() && c.pod_links().is_empty()).then_some(())
    })
    .expect("every container and veth removed after the pods");
}

const BAD_PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: no-image}
spec:
  containers: [{name: app, image: "example.invalid/absent:1.0", imagePullPolicy: Never}]
---
apiVersion: v1
kind: Pod
metadata: {name: bad-command}
spec:
  containers: [{name: app, image: busybox, command: [/no/such/binary]}]
---
apiVersion: v1
kind: Pod
metadata: {name: bad-volume}
spec:
  containers:
  - {name: app, image: busybox, command: [sleep, "600"], volumeMounts: [{name: cfg, mountPath: /cfg}]}
  volumes: [{name: cfg, configMap: {name: does-not-exist}}]
---
apiVersion: v1
kind: Pod
metadata: {name: odd-runtime}
spec:
  runtimeClassName: no-such-handler
  containers: [{name: app, image: busybox, command: [sleep, "600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: good}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: app, image: busybox, command: [sleep, "600"]}]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn bad_pods_get_kubernetes_reasons_and_the_node_keeps_serving_others() {
    let c = cluster("bad").await;
    c.wait_node_ready();
    c.k.kubectl_stdin(&["apply", "-f", "-"], Some(BAD_PODS));
    let waiting = |pod: &'static str, reason: &'static str| {
        c.wait_pod(pod, reason, move |p| {
            container_status(p, "app")["state"]["waiting"]["reason"] == reason
        });
    };
    waiting("no-image", "ErrImageNeverPull");
    c.wait_pod("bad-command", "a start error", |p| {
        let s = container_status(p, "app");
        let reason = s["state"]["waiting"]["reason"]
            .as_str()
            .or(s["state"]["terminated"]["reason"].as_str())
            .or(s["lastState"]["terminated"]["reason"].as_str())
            .unwrap_or_default();
        matches!(
            reason,
            "RunContainerError" | "StartError" | "CrashLoopBackOff" | "ContainerCannotRun"
        )
    });
    c.wait_pod("good", "Running", |p| p["status"]["phase"] == "Running");
    let bad_volume: serde_json::Value =
        serde_json::from_str(&c.k.kubectl_ok(&["get", "pod", "bad-volume", "-o", "json"]))
            .expect("json");
    assert_eq!(bad_volume["status"]["phase"], "Pending", "{bad_volume}");
    let described = c.k.kubectl_ok(&["describe", "pod", "bad-volume"]);
    assert!(
        described.contains("does-not-exist"),
        "describe shows the missing ConfigMap: {described}"
    );
    // An unknown runtime handler: the sandbox cannot be made, and says why.
    let sandbox_failed = eventually(Duration::from_secs(30), || {
        let events = c.k.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=odd-runtime",
        ]);
        (events.contains("FailedCreatePodSandBox") && events.contains("no-such-handler"))
            .then_some(())
    });
    assert!(
        sandbox_failed.is_some(),
        "{}",
        c.k.kubectl_ok(&["describe", "pod", "odd-runtime"])
    );
    let described = c.k.kubectl_ok(&["describe", "pod", "no-image"]);
    assert!(described.contains("ErrImageNeverPull"), "{described}");
    // Creating the ConfigMap lets the pod start.
    c.k.kubectl_ok(&[
        "create",
        "configmap",
        "does-not-exist",
        "--from-literal=a=b",
    ]);
    c.wait_pod("bad-volume", "Running once its ConfigMap exists", |p| {
        p["status"]["phase"] == "Running"
    });
    c.k.kubectl_ok(&["delete", "pod", "--all", "--timeout=60s"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_node_adopts_its_running_pods() {
    let mut c = cluster("restart").await;
    c.wait_node_ready();
    c.k.kubectl_ok(&[
        "run",
        "steady",
        "--image=busybox",
        "--restart=Always",
        "--",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ]);
    c.wait_pod("steady", "Running", |p| p["status"]["phase"] == "Running");
    let before: serde_json::Value =
        serde_json::from_str(&c.k.kubectl_ok(&["get", "pod", "steady", "-o", "json"]))
            .expect("json");
    let container_id = container_status(&before, "steady")["containerID"].clone();
    let ip = before["status"]["podIP"].clone();
    let containers = c
        .containerd
        .ids(&c.node.containerd_namespace, "containers")
        .expect("ctr");
    assert_eq!(containers.len(), 1, "{containers:?}");

    // The whole node agent dies at once and comes back.
    c.node.kubelet.kill9().expect("kill the kubelet");
    c.node
        .runtime_driver
        .kill9()
        .expect("kill the runtime driver");
    c.node.network.kill9().expect("kill the network driver");
    c.node
        .network
        .restart()
        .expect("restart the network driver");
    c.node
        .runtime_driver
        .restart()
        .expect("restart the runtime driver");
    c.node.kubelet.restart().expect("restart the kubelet");

    // The same container keeps running: adopted, not started again.
    let settled = eventually(Duration::from_secs(30), || {
        let out = c.k.kubectl(&["get", "pod", "steady", "-o", "json"]);
        let pod: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let status = container_status(&pod, "steady");
        (pod["status"]["phase"] == "Running"
            && status["ready"] == true
            && status["containerID"] == container_id)
            .then_some(pod)
    })
    .unwrap_or_else(|| panic!("{}", c.k.kubectl_ok(&["describe", "pod", "steady"])));
    assert_eq!(settled["status"]["podIP"], ip);
    assert_eq!(container_status(&settled, "steady")["restartCount"], 0);
    // Let a few kubelet sync rounds pass, then count again: no duplicates.
    std::thread::sleep(Duration::from_secs(3));
    let containers = c
        .containerd
        .ids(&c.node.containerd_namespace, "containers")
        .expect("ctr");
    assert_eq!(
        containers.len(),
        1,
        "duplicated after restart: {containers:?}"
    );
    assert_eq!(c.pod_links().len(), 1, "{:?}", c.pod_links());
    assert_eq!(
        c.k.kubectl_ok(&["exec", "steady", "--", "echo", "still-here"])
            .trim(),
        "still-here"
    );

    c.k.kubectl_ok(&["delete", "pod", "steady", "--timeout=60s"]);
    eventually(Duration::from_secs(20), || {
        let containers = c
            .containerd
            .ids(&c.node.containerd_namespace, "containers")
            .ok()?;
        (containers.is_empty() && c.pod_links().is_empty()).then_some(())
    })
    .expect("nothing left after delete");
}

/// Two network namespaces joined by a veth pair `n0` (10.99.0.1/30 in the
/// first, 10.99.0.2/30 in the second): two nodes' links, nothing else.
fn linked_namespaces() -> (TestNetns, TestNetns) {
    let a = TestNetns::create().expect("node-a namespace");
    let b = TestNetns::create().expect("node-b namespace");
    a.exec_ok(&[
        "ip",
        "link",
        "add",
        "n0",
        "type",
        "veth",
        "peer",
        "name",
        "n0",
        "netns",
        b.name(),
    ])
    .expect("veth between the nodes");
    for (ns, addr) in [(&a, "10.99.0.1/30"), (&b, "10.99.0.2/30")] {
        ns.exec_ok(&["ip", "addr", "add", addr, "dev", "n0"])
            .expect("node address");
        ns.exec_ok(&["ip", "link", "set", "n0", "up"])
            .expect("link up");
    }
    (a, b)
}

#[tokio::test(flavor = "multi_thread")]
async fn pods_on_two_nodes_talk_over_http() {
    let k = Kerno::up().expect("kerno up");
    let containerd = Containerd::start().expect("a private containerd");
    let dir = tempfile::Builder::new()
        .prefix("kerno-two-nodes-")
        .tempdir()
        .expect("temp dir");
    let (ns_a, ns_b) = linked_namespaces();
    let node_a = start_node(
        &k,
        &containerd,
        dir.path(),
        "node-a",
        "10.244.1.0/24",
        "10.99.0.1",
        ns_a,
    );
    let node_b = start_node(
        &k,
        &containerd,
        dir.path(),
        "node-b",
        "10.244.2.0/24",
        "10.99.0.2",
        ns_b,
    );
    for node in ["node-a", "node-b"] {
        eventually(Duration::from_secs(60), || {
            let out = k.kubectl(&[
                "get",
                "node",
                node,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ]);
            (out.stdout == b"True").then_some(())
        })
        .unwrap_or_else(|| panic!("{node} never became Ready"));
    }
    let pods = r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: node-b
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox
    command: [sh, -c, "mkdir -p /www; echo served-by-node-b > /www/index.html; exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: node-a
  terminationGracePeriodSeconds: 1
  containers:
  - {name: client, image: busybox, command: [sleep, "600"]}
"#;
    let applied = k.kubectl_stdin(&["apply", "-f", "-"], Some(pods));
    assert!(applied.status.success(), "{applied:?}");
    let running = |pod: &str| -> serde_json::Value {
        eventually(Duration::from_secs(60), || {
            let out = k.kubectl(&["get", "pod", pod, "-o", "json"]);
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            (json["status"]["phase"] == "Running").then_some(json)
        })
        .unwrap_or_else(|| panic!("{}", k.kubectl_ok(&["describe", "pod", pod])))
    };
    let web = running("web");
    let client = running("client");
    let web_ip = web["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(web_ip.starts_with("10.244.2."), "{web_ip}");
    assert!(
        client["status"]["podIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.244.1.")),
        "{client}"
    );
    // Exec in the client's container through containerd (the kernel cannot
    // reach these nodes' kubelets: their addresses live in the namespaces).
    let client_id = container_status(&client, "client")["containerID"]
        .as_str()
        .and_then(|id| id.split("://").nth(1))
        .expect("client container id")
        .to_owned();
    let url = format!("http://{web_ip}:8080/");
    let mut attempt = 0;
    let page = eventually(Duration::from_secs(30), || {
        attempt += 1;
        containerd
            .ctr(
                &node_a.containerd_namespace,
                &[
                    "tasks",
                    "exec",
                    "--exec-id",
                    &format!("probe-{attempt}"),
                    &client_id,
                    "wget",
                    "-q",
                    "-O",
                    "-",
                    &url,
                ],
            )
            .ok()
    })
    .unwrap_or_else(|| {
        panic!(
            "no HTTP from the pod on node-a to {url}; routes in node-a: {:?}; nodes: {}",
            node_a.ns.exec_ok(&["ip", "route", "show", "table", "all"]),
            k.kubectl_ok(&["get", "nodes", "-o", "wide"])
        )
    });
    assert_eq!(page.trim(), "served-by-node-b");

    k.kubectl_ok(&["delete", "pod", "--all", "--timeout=60s"]);
    for node in [&node_a, &node_b] {
        eventually(Duration::from_secs(20), || {
            let containers = containerd
                .ids(&node.containerd_namespace, "containers")
                .ok()?;
            (containers.is_empty() && node.pod_links(&["n0"]).is_empty()).then_some(())
        })
        .expect("nothing left on either node");
    }
}
