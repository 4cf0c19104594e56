//! The whole control loop as a user starts it: `kerno up --config FILE
//! --sim-nodes 3`, the supervisor running the scheduler, the controllers and
//! `node-sim`, driven by the real kubectl. The per-plugin modules test edge
//! cases; this one checks that the processes work together, also when one of
//! them is killed mid-rollout.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kerno_tests::{Backend, Kerno, eventually};

use super::workloads::{kube_client, watch_extremes};

const PATIENCE: Duration = Duration::from_secs(90);

/// The plugins of the config file; `--sim-nodes` adds node-sim.
const CONTROL_PLANE: &[&str] = &[
    "scheduler-default",
    "controller-replicaset",
    "controller-deployment",
    "controller-gc",
    "controller-namespace",
    "controller-serviceaccount",
    "controller-node",
];

struct Cluster {
    k: Kerno,
    _config_dir: tempfile::TempDir,
}

/// `kerno up --config cluster.yaml --sim-nodes 3`, waiting until every
/// plugin is Running and the three nodes are Ready.
fn cluster() -> Cluster {
    let config_dir = tempfile::tempdir().expect("config dir");
    let config = config_dir.path().join("cluster.yaml");
    let mut yaml = String::from("plugins:\n");
    for name in CONTROL_PLANE {
        if *name == "controller-node" {
            // Short grace periods, so a lost node is noticed within seconds.
            yaml.push_str(
                "  controller-node: { nodeMonitorGracePeriodSeconds: 3, \
                 nodeMonitorPeriodMillis: 200, defaultTolerationSeconds: 2 }\n",
            );
        } else {
            yaml.push_str(&format!("  {name}: {{}}\n"));
        }
    }
    // Leases renewed well inside that grace period; `--sim-nodes` sets the count.
    yaml.push_str("  node-sim: { leaseSeconds: 1 }\n");
    std::fs::write(&config, yaml).expect("write the config");
    let config_arg = config.display().to_string();
    let k = Kerno::start_with(
        Backend::AllInOne,
        &["--config", &config_arg, "--sim-nodes", "3"],
    )
    .expect("kerno up --sim-nodes 3");
    let c = Cluster {
        k,
        _config_dir: config_dir,
    };
    let expected = CONTROL_PLANE.len() + 1;
    let running = eventually(PATIENCE, || {
        let phases = c.k.kubectl_ok(&[
            "get",
            "plugins",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}",
        ]);
        let running = phases.lines().filter(|l| l.ends_with("=Running")).count();
        (running == expected).then_some(())
    });
    assert!(
        running.is_some(),
        "not every plugin is Running: {}",
        c.k.kubectl_ok(&["get", "plugins"])
    );
    let ready = eventually(PATIENCE, || {
        let out = c.k.kubectl_ok(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ]);
        (out.lines().filter(|l| *l == "True").count() == 3).then_some(())
    });
    assert!(
        ready.is_some(),
        "three Ready nodes: {}",
        c.k.kubectl_ok(&["get", "nodes"])
    );
    c
}

impl Cluster {
    fn get(&self, what: &[&str], path: &str) -> String {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        let output = format!("jsonpath={path}");
        args.extend(["-o", &output]);
        let out = self.k.kubectl(&args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn rollout_status(&self, deployment: &str, namespace: &str) {
        self.k.kubectl_ok(&[
            "rollout",
            "status",
            &format!("deployment/{deployment}"),
            "-n",
            namespace,
            "--timeout=90s",
        ]);
    }

    /// `replicas/updated/available` of a deployment.
    fn counts(&self, deployment: &str) -> String {
        self.get(
            &["deployment", deployment],
            "{.status.replicas}/{.status.updatedReplicas}/{.status.availableReplicas}",
        )
    }

    /// Images of the live pods of `app` (one entry per pod).
    fn pod_images(&self, app: &str) -> Vec<String> {
        self.get(
            &["pods", "-l", &format!("app={app}")],
            "{range .items[*]}{.metadata.deletionTimestamp}|{.spec.containers[0].image}{\"\\n\"}{end}",
        )
        .lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.trim_start_matches('|').to_owned())
        .collect()
    }

    /// Waits for exactly `n` live pods of `app`, all with `image`.
    fn wait_pods(&self, app: &str, n: usize, image: &str) {
        let settled = eventually(PATIENCE, || {
            let images = self.pod_images(app);
            (images.len() == n && images.iter().all(|i| i == image)).then_some(())
        });
        assert!(
            settled.is_some(),
            "wanted {n} pods of {app} with {image}, have {:?}",
            self.pod_images(app)
        );
    }

    fn plugin_pid(&self, plugin: &str) -> u32 {
        self.get(&["plugin", plugin], "{.status.pid}")
            .parse()
            .unwrap_or_else(|_| panic!("plugin {plugin} has no pid"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deployment_lives_its_whole_life_on_simulated_nodes() {
    let c = cluster();
    c.k.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=5",
    ]);
    c.rollout_status("web", "default");
    assert_eq!(c.counts("web"), "5/5/5");
    // Placed by the scheduler on the simulated nodes, run by node-sim.
    let placed = c.get(
        &["pods", "-l", "app=web"],
        "{range .items[*]}{.spec.nodeName} {.status.phase} {.status.podIP}{\"\\n\"}{end}",
    );
    let nodes: BTreeSet<&str> = placed
        .lines()
        .map(|l| {
            let parts: Vec<&str> = l.split(' ').collect();
            assert!(
                parts.len() == 3 && parts[1] == "Running" && !parts[2].is_empty(),
                "{placed}"
            );
            parts[0]
        })
        .collect();
    assert!(
        nodes.iter().all(|n| n.starts_with("sim-node-")) && nodes.len() >= 2,
        "spread over the simulated nodes: {placed}"
    );

    c.k.kubectl_ok(&["scale", "deployment/web", "--replicas=8"]);
    c.rollout_status("web", "default");
    assert_eq!(c.counts("web"), "8/8/8");

    // A rolling update keeps within maxUnavailable (25% of 8 = 2) and
    // maxSurge (2), as seen by a watch on the pods.
    let client = kube_client(&c.k).await;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_extremes(client, "web".into(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.k.kubectl_ok(&["set", "image", "deployment/web", "busybox=busybox:2"]);
    c.rollout_status("web", "default");
    stop.store(true, Ordering::SeqCst);
    let (min_ready, max_pods, seen) = watcher.await.expect("watcher");
    assert!(seen > 8, "the watch saw the rollout ({seen} events)");
    assert!(min_ready >= 6, "ready pods fell to {min_ready}");
    assert!(max_pods <= 10, "pods rose to {max_pods}");
    c.wait_pods("web", 8, "busybox:2");

    // History, undo, pause and resume.
    let history = c.k.kubectl_ok(&["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    c.k.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    c.rollout_status("web", "default");
    c.wait_pods("web", 8, "busybox");
    c.k.kubectl_ok(&["rollout", "pause", "deployment/web"]);
    let replica_sets = c.get(
        &["replicasets", "-l", "app=web"],
        "{.items[*].metadata.name}",
    );
    c.k.kubectl_ok(&["set", "image", "deployment/web", "busybox=busybox:3"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        c.get(
            &["replicasets", "-l", "app=web"],
            "{.items[*].metadata.name}"
        ),
        replica_sets,
        "a paused deployment rolled out"
    );
    c.wait_pods("web", 8, "busybox");
    c.k.kubectl_ok(&["rollout", "resume", "deployment/web"]);
    c.rollout_status("web", "default");
    c.wait_pods("web", 8, "busybox:3");

    // kill -9 of every control-plane plugin mid-rollout: the supervisor
    // restarts each, and the rollout ends with exactly the desired pods.
    c.k.kubectl_ok(&["set", "image", "deployment/web", "busybox=busybox:4"]);
    eventually(PATIENCE, || {
        c.pod_images("web")
            .iter()
            .any(|i| i == "busybox:4")
            .then_some(())
    })
    .expect("the rollout started");
    let victims = [
        "scheduler-default",
        "controller-replicaset",
        "controller-deployment",
        "controller-gc",
    ];
    for plugin in victims {
        let pid = c.plugin_pid(plugin);
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(killed, "kill -9 {plugin} ({pid})");
    }
    for plugin in victims {
        let back = eventually(PATIENCE, || {
            let restarts: u32 = c
                .get(&["plugin", plugin], "{.status.restarts}")
                .parse()
                .ok()?;
            let phase = c.get(&["plugin", plugin], "{.status.phase}");
            (restarts >= 1 && phase == "Running").then_some(())
        });
        assert!(
            back.is_some(),
            "{plugin} was not restarted: {}",
            c.k.kubectl_ok(&["get", "plugins"])
        );
    }
    c.rollout_status("web", "default");
    c.wait_pods("web", 8, "busybox:4");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(c.pod_images("web").len(), 8, "late extra pods");
    assert_eq!(c.counts("web"), "8/8/8");

    // Deleting the deployment cascades to its ReplicaSets and pods.
    c.k.kubectl_ok(&["delete", "deployment", "web"]);
    let emptied = eventually(PATIENCE, || {
        let left = c.get(
            &["replicasets,pods", "-l", "app=web"],
            "{.items[*].metadata.name}",
        );
        left.trim().is_empty().then_some(())
    });
    assert!(
        emptied.is_some(),
        "ReplicaSets or pods outlived the deployment"
    );

    // --cascade=orphan keeps them, without owner.
    c.k.kubectl_ok(&[
        "create",
        "deployment",
        "keep",
        "--image=busybox",
        "--replicas=2",
    ]);
    c.rollout_status("keep", "default");
    c.k.kubectl_ok(&["delete", "deployment", "keep", "--cascade=orphan"]);
    let orphaned = eventually(PATIENCE, || {
        let owners = c.get(
            &["replicasets", "-l", "app=keep"],
            "{range .items[*]}{.metadata.name}:{.metadata.ownerReferences}{\"\\n\"}{end}",
        );
        let rows: Vec<&str> = owners.lines().collect();
        (rows.len() == 1 && rows[0].ends_with(':')).then_some(())
    });
    assert!(
        orphaned.is_some(),
        "the orphaned ReplicaSet: {}",
        c.k.kubectl_ok(&["get", "replicasets", "-l", "app=keep", "-o", "yaml"])
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(c.pod_images("keep").len(), 2, "orphaned pods were deleted");

    // Deleting a namespace empties it, then removes it.
    c.k.kubectl_ok(&["create", "namespace", "team"]);
    c.k.kubectl_ok(&[
        "create",
        "deployment",
        "svc",
        "--image=busybox",
        "--replicas=2",
        "-n",
        "team",
    ]);
    c.rollout_status("svc", "team");
    c.k.kubectl_ok(&["delete", "namespace", "team", "--wait=false"]);
    let gone = eventually(PATIENCE, || {
        let out = c.k.kubectl(&["get", "namespace", "team"]);
        (!out.status.success()).then_some(())
    });
    assert!(gone.is_some(), "namespace team was not removed");
    let left = c.get(&["pods", "-n", "team"], "{.items[*].metadata.name}");
    assert!(left.trim().is_empty(), "pods left in team: {left}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pods_of_a_node_that_stops_heartbeating_are_replaced_elsewhere() {
    let c = cluster();
    c.k.kubectl_ok(&[
        "create",
        "deployment",
        "spread",
        "--image=busybox",
        "--replicas=6",
    ]);
    c.rollout_status("spread", "default");
    let placement = || {
        c.get(
            &["pods", "-l", "app=spread"],
            "{range .items[*]}{.metadata.name} {.spec.nodeName}{\"\\n\"}{end}",
        )
    };
    let before = placement();
    let lost = before
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        .next()
        .expect("a pod with a node")
        .to_owned();
    let doomed: Vec<String> = before
        .lines()
        .filter(|l| l.ends_with(&format!(" {lost}")))
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect();
    assert!(!doomed.is_empty());

    // node-sim stops renewing the node's Lease.
    c.k.kubectl_ok(&["annotate", "node", &lost, "kerno.dev/sim-heartbeat=stopped"]);
    let not_ready = eventually(PATIENCE, || {
        let table = c.k.kubectl_ok(&["get", "node", &lost]);
        let taints = c.get(&["node", &lost], "{.spec.taints[*].key}");
        (table.contains("NotReady") && taints.contains("node.kubernetes.io/unreachable"))
            .then_some(())
    });
    assert!(
        not_ready.is_some(),
        "node {lost} did not become NotReady and tainted: {}",
        c.k.kubectl_ok(&["describe", "node", &lost])
    );
    // Its pods are evicted and replaced on the other nodes.
    let replaced = eventually(PATIENCE, || {
        let now = placement();
        let live: Vec<&str> = now.lines().collect();
        let on_lost = live.iter().any(|l| l.ends_with(&format!(" {lost}")));
        let old_left = doomed.iter().any(|p| now.contains(p.as_str()));
        (live.len() == 6 && !on_lost && !old_left).then_some(())
    });
    assert!(
        replaced.is_some(),
        "pods on {lost} were not replaced: {}",
        placement()
    );
    c.rollout_status("spread", "default");
    assert_eq!(c.counts("spread"), "6/6/6");
}
