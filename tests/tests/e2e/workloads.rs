//! The ReplicaSet and Deployment controllers (`kerno-controller-replicaset`,
//! `kerno-controller-deployment`) against a real kernel, driven by kubectl.
//!
//! There is no scheduler or kubelet here: a small in-test pod runner marks
//! every pod `Running` and `Ready` a moment after it appears, through the
//! kernel's `pods/status` subresource.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kerno_tests::{Kerno, PluginProcess, eventually};
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// How long after a pod appears the runner reports it ready: long enough that
/// a rollout takes several observable steps.
const READY_DELAY: Duration = Duration::from_millis(300);

struct Cluster {
    k: Kerno,
    replicaset: PluginProcess,
    deployment: PluginProcess,
    client: kube::Client,
    stop_runner: Arc<AtomicBool>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_runner.store(true, Ordering::SeqCst);
    }
}

pub(crate) async fn kube_client(k: &Kerno) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(k.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

/// A kernel, both controllers and the pod runner.
async fn cluster() -> Cluster {
    let k = Kerno::up().expect("kerno up");
    let replicaset = k
        .spawn_plugin(
            "kerno-controller-replicaset",
            "controller-replicaset",
            serde_json::json!({}),
        )
        .expect("the replicaset controller binary (cargo build -p kerno-controller-replicaset)");
    let deployment = k
        .spawn_plugin(
            "kerno-controller-deployment",
            "controller-deployment",
            serde_json::json!({}),
        )
        .expect("the deployment controller binary (cargo build -p kerno-controller-deployment)");
    let client = kube_client(&k).await;
    let stop_runner = Arc::new(AtomicBool::new(false));
    tokio::spawn(run_pods(client.clone(), stop_runner.clone()));
    Cluster {
        k,
        replicaset,
        deployment,
        client,
        stop_runner,
    }
}

/// The in-test stand-in for kubelets: every pod not being deleted becomes
/// Running and Ready `READY_DELAY` after the runner first sees it.
async fn run_pods(client: kube::Client, stop: Arc<AtomicBool>) {
    let pods: Api<Pod> = Api::all(client);
    let mut first_seen: HashMap<String, Instant> = HashMap::new();
    while !stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(list) = pods.list(&ListParams::default()).await else {
            continue;
        };
        for pod in list.items {
            let (Some(ns), Some(name), Some(uid)) = (
                pod.metadata.namespace.clone(),
                pod.metadata.name.clone(),
                pod.metadata.uid.clone(),
            ) else {
                continue;
            };
            if pod.metadata.deletion_timestamp.is_some() || is_ready(&pod) {
                continue;
            }
            let seen = *first_seen.entry(uid).or_insert_with(Instant::now);
            if seen.elapsed() < READY_DELAY {
                continue;
            }
            let now = k8s_openapi::jiff::Timestamp::from_second(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
                    .unwrap_or(0),
            )
            .unwrap_or_default()
            .to_string();
            let patch = serde_json::json!({"status": {
                "phase": "Running",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
                    {"type": "Ready", "status": "True", "lastTransitionTime": now},
                ],
            }});
            let api: Api<Pod> = Api::namespaced(pods.clone().into_client(), &ns);
            let _ = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
        }
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn image_of(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

impl Cluster {
    /// The pods labelled `app=<app>` in `default`, including ones being deleted.
    async fn pods(&self, app: &str) -> Vec<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), "default");
        pods.list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .expect("list pods")
            .items
    }

    fn rollout_status(&self, deployment: &str) -> String {
        self.k.kubectl_ok(&[
            "rollout",
            "status",
            &format!("deployment/{deployment}"),
            "--timeout=90s",
        ])
    }

    fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        let output = format!("jsonpath={path}");
        args.extend_from_slice(&["-o", &output]);
        self.k.kubectl_ok(&args)
    }

    /// Waits until exactly `n` pods of `app` exist (none being deleted), all
    /// ready and with `image` when given.
    async fn wait_for_pods(&self, app: &str, n: usize, image: Option<&str>) -> Vec<Pod> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pods = self.pods(app).await;
            let settled = pods.len() == n
                && pods.iter().all(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && is_ready(p)
                        && image.is_none_or(|i| image_of(p) == i)
                });
            if settled {
                return pods;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} ready pods of {app} with image {image:?}; have {:?}",
                pods.iter()
                    .map(|p| (p.metadata.name.clone(), image_of(p), is_ready(p)))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Watches the pods of `app` and records the worst moments: the fewest ready
/// and the most existing (not being deleted) pods, over every state the
/// watch passes through. Stops when `stop` is set.
pub(crate) async fn watch_extremes(
    client: kube::Client,
    app: String,
    stop: Arc<AtomicBool>,
) -> (usize, usize, usize) {
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let list = pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods");
    let mut state: BTreeMap<String, Pod> = list
        .items
        .into_iter()
        .filter_map(|p| Some((p.metadata.name.clone()?, p)))
        .collect();
    let rv = list.metadata.resource_version.unwrap_or_default();
    let wp = WatchParams::default()
        .labels(&format!("app={app}"))
        .timeout(120);
    let mut events = pods.watch(&wp, &rv).await.expect("watch pods").boxed();
    let (mut min_ready, mut max_pods, mut seen) = (usize::MAX, 0, 0);
    while !stop.load(Ordering::SeqCst) {
        let next = tokio::time::timeout(Duration::from_millis(200), events.try_next()).await;
        let event = match next {
            Err(_) => continue,
            Ok(Ok(Some(e))) => e,
            Ok(other) => panic!("pod watch ended: {other:?}"),
        };
        match event {
            WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                state.insert(p.metadata.name.clone().unwrap_or_default(), p);
            }
            WatchEvent::Deleted(p) => {
                state.remove(&p.metadata.name.clone().unwrap_or_default());
            }
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("pod watch error: {e:?}"),
        }
        seen += 1;
        let live: Vec<&Pod> = state
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        min_ready = min_ready.min(live.iter().filter(|p| is_ready(p)).count());
        max_pods = max_pods.max(live.len());
    }
    (min_ready, max_pods, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_deployment_scale_and_replace_deleted_pods() {
    let c = cluster().await;
    c.k.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=5",
    ]);
    let out = c.rollout_status("web");
    assert!(out.contains("successfully rolled out"), "{out}");
    assert_eq!(
        c.jsonpath(&["deployment", "web"], "{.status.availableReplicas}"),
        "5"
    );
    let pods = c.wait_for_pods("web", 5, Some("busybox")).await;
    // Pods are named <rs>-<5 chars>, owned by the deployment's ReplicaSet.
    let rs_name = c.jsonpath(&["rs", "-l", "app=web"], "{.items[0].metadata.name}");
    assert!(rs_name.starts_with("web-"), "{rs_name}");
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let suffix = name
            .strip_prefix(&format!("{rs_name}-"))
            .unwrap_or_default();
        assert_eq!(suffix.len(), 5, "pod {name} of replicaset {rs_name}");
        let owner = &pod.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("ReplicaSet", rs_name.as_str(), Some(true))
        );
    }
    assert_eq!(
        c.jsonpath(
            &["rs", &rs_name],
            "{.status.readyReplicas}/{.status.availableReplicas}/{.status.fullyLabeledReplicas}"
        ),
        "5/5/5"
    );

    c.k.kubectl_ok(&["scale", "deployment", "web", "--replicas=8"]);
    c.rollout_status("web");
    c.wait_for_pods("web", 8, None).await;
    c.k.kubectl_ok(&["scale", "deployment", "web", "--replicas=2"]);
    c.rollout_status("web");
    let pods = c.wait_for_pods("web", 2, None).await;
    assert_eq!(
        c.jsonpath(
            &["deployment", "web"],
            "{.status.replicas}/{.status.availableReplicas}"
        ),
        "2/2"
    );

    // A deleted pod is replaced by a new one.
    let victim = pods[0].metadata.name.clone().unwrap_or_default();
    c.k.kubectl_ok(&["delete", "pod", &victim]);
    let pods = c.wait_for_pods("web", 2, None).await;
    assert!(
        pods.iter()
            .all(|p| p.metadata.name.as_deref() != Some(victim.as_str())),
        "{victim} was not replaced"
    );
}

const ROLLING: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: roll
spec:
  replicas: 4
  selector:
    matchLabels: {app: roll}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}
  template:
    metadata:
      labels: {app: roll}
    spec:
      containers:
      - name: main
        image: busybox:1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_update_undo_pause_resume_and_history() {
    let c = cluster().await;
    c.k.kubectl_stdin(&["apply", "-f", "-"], Some(ROLLING));
    c.rollout_status("roll");
    c.wait_for_pods("roll", 4, Some("busybox:1")).await;

    // set image: watched, availability never below 4-1, pods never above 4+1.
    let stop = Arc::new(AtomicBool::new(false));
    let watch = tokio::spawn(watch_extremes(
        c.client.clone(),
        "roll".into(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.k.kubectl_ok(&["set", "image", "deployment/roll", "main=busybox:2"]);
    c.rollout_status("roll");
    c.wait_for_pods("roll", 4, Some("busybox:2")).await;
    stop.store(true, Ordering::SeqCst);
    let (min_ready, max_pods, seen) = watch.await.expect("watch task");
    assert!(seen >= 8, "the watch saw only {seen} events");
    assert!(
        min_ready >= 3,
        "ready pods dropped to {min_ready} (maxUnavailable 1)"
    );
    assert!(
        max_pods <= 5,
        "{max_pods} pods existed at once (maxSurge 1)"
    );

    // Two ReplicaSets, the old one scaled to zero; revisions 1 and 2.
    let sizes = c.jsonpath(
        &["rs", "-l", "app=roll"],
        "{range .items[*]}{.metadata.annotations.deployment\\.kubernetes\\.io/revision}={.spec.replicas} {end}",
    );
    let mut sizes: Vec<&str> = sizes.split_whitespace().collect();
    sizes.sort_unstable();
    assert_eq!(sizes, ["1=0", "2=4"]);
    let history = c.k.kubectl_ok(&["rollout", "history", "deployment/roll"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    let rev2 =
        c.k.kubectl_ok(&["rollout", "history", "deployment/roll", "--revision=2"]);
    assert!(rev2.contains("busybox:2"), "{rev2}");

    // undo restores the previous template as revision 3.
    c.k.kubectl_ok(&["rollout", "undo", "deployment/roll"]);
    c.rollout_status("roll");
    c.wait_for_pods("roll", 4, Some("busybox:1")).await;
    assert_eq!(
        c.jsonpath(
            &["deployment", "roll"],
            "{.metadata.annotations.deployment\\.kubernetes\\.io/revision}"
        ),
        "3"
    );
    let history = c.k.kubectl_ok(&["rollout", "history", "deployment/roll"]);
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|ch| ch.is_ascii_digit()))
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");

    // Paused: a template change rolls nothing out until resumed.
    c.k.kubectl_ok(&["rollout", "pause", "deployment/roll"]);
    c.k.kubectl_ok(&["set", "image", "deployment/roll", "main=busybox:3"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let images = c.jsonpath(
        &["rs", "-l", "app=roll"],
        "{.items[*].spec.template.spec.containers[0].image}",
    );
    assert!(
        !images.contains("busybox:3"),
        "rolled out while paused: {images}"
    );
    assert!(
        c.pods("roll")
            .await
            .iter()
            .all(|p| image_of(p) == "busybox:1"),
        "pods changed while paused"
    );
    c.k.kubectl_ok(&["rollout", "resume", "deployment/roll"]);
    c.rollout_status("roll");
    c.wait_for_pods("roll", 4, Some("busybox:3")).await;
}

const RECREATE: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: again
spec:
  replicas: 3
  selector:
    matchLabels: {app: again}
  strategy: {type: Recreate}
  template:
    metadata:
      labels: {app: again}
    spec:
      containers:
      - name: main
        image: busybox:1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recreate_stops_old_pods_before_starting_new_ones() {
    let c = cluster().await;
    c.k.kubectl_stdin(&["apply", "-f", "-"], Some(RECREATE));
    c.rollout_status("again");
    c.wait_for_pods("again", 3, Some("busybox:1")).await;

    // Watch images of live pods: old and new must never run side by side.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels("app=again"))
        .await
        .expect("list");
    let rv = list.metadata.resource_version.clone().unwrap_or_default();
    let mut state: BTreeMap<String, Pod> = list
        .items
        .into_iter()
        .filter_map(|p| Some((p.metadata.name.clone()?, p)))
        .collect();
    let mut events = pods
        .watch(
            &WatchParams::default().labels("app=again").timeout(120),
            &rv,
        )
        .await
        .expect("watch")
        .boxed();
    c.k.kubectl_ok(&["set", "image", "deployment/again", "main=busybox:2"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let live: Vec<String> = state
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(image_of)
            .collect();
        assert!(
            !(live.iter().any(|i| i == "busybox:1") && live.iter().any(|i| i == "busybox:2")),
            "old and new pods ran together: {live:?}"
        );
        if live.len() == 3 && live.iter().all(|i| i == "busybox:2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recreate did not finish: {live:?}"
        );
        match tokio::time::timeout(Duration::from_secs(5), events.try_next()).await {
            Ok(Ok(Some(WatchEvent::Added(p) | WatchEvent::Modified(p)))) => {
                state.insert(p.metadata.name.clone().unwrap_or_default(), p);
            }
            Ok(Ok(Some(WatchEvent::Deleted(p)))) => {
                state.remove(&p.metadata.name.clone().unwrap_or_default());
            }
            Ok(Ok(Some(_))) | Err(_) => {}
            Ok(other) => panic!("watch ended: {other:?}"),
        }
    }
    c.rollout_status("again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_mid_rollout_converges_without_extra_pods() {
    let mut c = cluster().await;
    c.k.kubectl_ok(&[
        "create",
        "deployment",
        "tough",
        "--image=busybox:1",
        "--replicas=6",
    ]);
    c.rollout_status("tough");
    c.wait_for_pods("tough", 6, Some("busybox:1")).await;
    c.k.kubectl_ok(&["set", "image", "deployment/tough", "busybox=busybox:2"]);
    // Wait until the rollout is under way (a new-image pod exists), then kill both.
    eventually(Duration::from_secs(30), || {
        let images = c.k.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app=tough",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ]);
        images.contains("busybox:2").then_some(())
    })
    .expect("the rollout started");
    c.deployment.kill9().expect("kill -9 deployment controller");
    c.replicaset.kill9().expect("kill -9 replicaset controller");
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.replicaset
        .restart()
        .expect("restart replicaset controller");
    c.deployment
        .restart()
        .expect("restart deployment controller");
    c.rollout_status("tough");
    c.wait_for_pods("tough", 6, Some("busybox:2")).await;
    // And it stays that way: no late extra pods.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pods = c.pods("tough").await;
    assert_eq!(
        pods.len(),
        6,
        "{:?}",
        pods.iter()
            .map(|p| p.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        c.jsonpath(
            &["deployment", "tough"],
            "{.status.replicas}/{.status.updatedReplicas}/{.status.availableReplicas}"
        ),
        "6/6/6"
    );
}
