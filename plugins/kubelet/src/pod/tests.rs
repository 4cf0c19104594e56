//! Pod lifecycle against in-process fake Runtime/Network gRPC servers on a
//! temp unix socket and a recording cluster.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodStatus};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ContainerIndex, Deps, PodManager, PodWorker, WorkerOptions, adopt};
use crate::config::KubeletConfig;
use crate::drivers;
use crate::testing::{FakeCluster, FakeNetwork, FakeRuntime, serve_fakes};

struct Rig {
    runtime: FakeRuntime,
    cluster: Arc<FakeCluster>,
    deps: Arc<Deps>,
    dir: tempfile::TempDir,
}

async fn rig() -> anyhow::Result<Rig> {
    let dir = tempfile::tempdir()?;
    let runtime = FakeRuntime::default();
    runtime
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .images
        .insert("busybox:1.36".into());
    let network = FakeNetwork {
        runtime: runtime.clone(),
        ips: Arc::default(),
    };
    let (re, ne) = serve_fakes(dir.path(), runtime.clone(), network).await?;
    let cfg: KubeletConfig = serde_json::from_value(serde_json::json!({
        "nodeName": "n1", "runtimeEndpoint": re, "networkEndpoint": ne,
        "rootDir": dir.path().join("root"), "clusterDNS": "10.96.0.10"
    }))?;
    let cluster = Arc::new(FakeCluster::default());
    let deps = Arc::new(Deps {
        runtime: drivers::runtime(&re)?,
        network: drivers::network(&ne)?,
        cluster: cluster.clone(),
        host_ip: "192.168.0.10".into(),
        node_cpu_millis: 2000,
        node_memory_bytes: 1 << 30,
        options: WorkerOptions {
            backoff_initial: Duration::from_millis(300),
            backoff_max: Duration::from_millis(1200),
            resync: Duration::from_millis(50),
        },
        index: ContainerIndex::default(),
        cfg,
    });
    Ok(Rig {
        runtime,
        cluster,
        deps,
        dir,
    })
}

fn pod(name: &str, spec: serde_json::Value) -> anyhow::Result<Arc<Pod>> {
    Ok(Arc::new(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "namespace": "team", "uid": format!("uid-{name}"), "resourceVersion": "1"},
        "spec": spec
    }))?))
}

fn spawn(rig: &Rig, pod: &Arc<Pod>) -> (watch::Sender<Option<Arc<Pod>>>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(Some(pod.clone()));
    let worker = PodWorker::new(rig.deps.clone(), pod.clone());
    (tx, tokio::spawn(worker.run(None, rx)))
}

async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn phase(s: &PodStatus) -> &str {
    s.phase.as_deref().unwrap_or_default()
}

fn condition(s: &PodStatus, t: &str) -> Option<String> {
    s.conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

fn waiting_reason(s: &PodStatus, i: usize) -> Option<String> {
    s.container_statuses
        .as_ref()?
        .get(i)?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

fn index_of(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|c| c.starts_with(prefix))
        .unwrap_or_else(|| panic!("no call {prefix} in {calls:?}"))
}

#[tokio::test]
async fn pod_runs_init_then_containers_and_terminates_in_order() -> anyhow::Result<()> {
    let rig = rig().await?;
    rig.cluster
        .config_maps
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .insert(
            "settings".into(),
            ConfigMap {
                data: Some(BTreeMap::from([("MODE".to_owned(), "fast".to_owned())])),
                ..ConfigMap::default()
            },
        );
    rig.runtime
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .exit_on_start
        .insert("setup".into(), 0);
    let p = pod(
        "web",
        serde_json::json!({
            "terminationGracePeriodSeconds": 7,
            "initContainers": [{"name": "setup", "image": "busybox:1.36"}],
            "containers": [{"name": "app", "image": "busybox:1.36",
                "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "MODE"}}},
                        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}]}],
            "volumes": [{"name": "cfg", "configMap": {"name": "settings"}}]
        }),
    )?;
    let (tx, task) = spawn(&rig, &p);
    let status = wait_for("Running and Ready", || {
        rig.cluster
            .last_status()
            .filter(|s| phase(s) == "Running" && condition(s, "Ready").as_deref() == Some("True"))
    })
    .await;
    assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.2"));
    assert_eq!(status.host_ip.as_deref(), Some("192.168.0.10"));
    assert_eq!(condition(&status, "Initialized").as_deref(), Some("True"));
    let init = status.init_container_statuses.clone().unwrap_or_default();
    assert_eq!(
        init[0]
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code),
        Some(0)
    );
    let app = &status.container_statuses.clone().unwrap_or_default()[0];
    assert!(
        app.container_id
            .as_deref()
            .is_some_and(|id| id.starts_with("containerd://c-"))
    );
    assert_eq!(app.image_id, "sha256:busybox:1.36");
    let calls = rig.runtime.calls();
    // Sandbox, network, then the init container strictly before the app.
    assert!(index_of(&calls, "RunPodSandbox") < index_of(&calls, "SetUp"));
    assert!(index_of(&calls, "SetUp") < index_of(&calls, "CreateContainer setup"));
    assert!(index_of(&calls, "CreateContainer setup") < index_of(&calls, "CreateContainer app"));
    let config = rig
        .runtime
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .configs
        .values()
        .find(|c| c.metadata.as_ref().is_some_and(|m| m.name == "app"))
        .cloned()
        .unwrap_or_default();
    let env: BTreeMap<_, _> = config
        .envs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone()))
        .collect();
    assert_eq!(env.get("MODE").map(String::as_str), Some("fast"));
    assert_eq!(env.get("IP").map(String::as_str), Some("10.244.0.2"));
    let mount = &config.mounts[0];
    assert_eq!(
        std::fs::read_to_string(std::path::Path::new(&mount.host_path).join("MODE"))?,
        "fast"
    );
    let reasons = rig.cluster.reasons();
    for r in ["Pulled", "Created", "Started"] {
        assert!(reasons.contains(&r.to_owned()), "{r} in {reasons:?}");
    }
    // The status is written only when it changes: once the pod has
    // settled (a loaded machine may still be finishing the last change),
    // no further writes come.
    let count = || rig.cluster.statuses.lock().map(|s| s.len()).unwrap_or(0);
    let mut settled = false;
    for _ in 0..10 {
        let writes = count();
        tokio::time::sleep(Duration::from_millis(300)).await;
        if count() == writes {
            settled = true;
            break;
        }
    }
    assert!(settled, "the status kept being written: {} writes", count());

    // Delete: stop (with the grace period), network down, sandbox removed, files gone, pod deleted.
    let mut deleting = (*p).clone();
    deleting.metadata.deletion_timestamp = Some(crate::time::now());
    deleting.metadata.deletion_grace_period_seconds = Some(5);
    tx.send_replace(Some(Arc::new(deleting)));
    tokio::time::timeout(Duration::from_secs(10), task).await??;
    let calls = rig.runtime.calls();
    let stop = index_of(&calls, "StopContainer");
    assert!(calls[stop].ends_with(" 5"), "grace passed: {}", calls[stop]);
    assert!(stop < index_of(&calls, "StopPodSandbox"));
    assert!(index_of(&calls, "StopPodSandbox") < index_of(&calls, "TearDown"));
    assert!(index_of(&calls, "TearDown") < index_of(&calls, "RemovePodSandbox"));
    assert!(rig.cluster.reasons().contains(&"Killing".to_owned()));
    assert_eq!(
        *rig.cluster
            .deleted
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?,
        vec!["web".to_owned()]
    );
    assert!(!rig.deps.cfg.pod_dir("uid-web").exists());
    assert!(
        rig.runtime
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .sandboxes
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn crashing_container_backs_off_and_counts_restarts() -> anyhow::Result<()> {
    let rig = rig().await?;
    rig.runtime
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .exit_on_start
        .insert("app".into(), 1);
    let p = pod(
        "crash",
        serde_json::json!({"containers": [{"name": "app", "image": "busybox:1.36"}]}),
    )?;
    let (_tx, task) = spawn(&rig, &p);
    let status = wait_for("CrashLoopBackOff with 2 restarts", || {
        rig.cluster.last_status().filter(|s| {
            waiting_reason(s, 0).as_deref() == Some("CrashLoopBackOff")
                && s.container_statuses
                    .as_ref()
                    .is_some_and(|c| c[0].restart_count >= 2)
        })
    })
    .await;
    assert_eq!(phase(&status), "Running");
    let c = &status.container_statuses.clone().unwrap_or_default()[0];
    let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    assert_eq!(last.map(|t| t.exit_code), Some(1));
    assert_eq!(last.and_then(|t| t.reason.as_deref()), Some("Error"));
    assert!(rig.cluster.reasons().contains(&"BackOff".to_owned()));
    // Restarts are spaced by the back-off: 3 creations take at least 300 ms (1st restart immediate, then 300 ms).
    let creates = rig
        .runtime
        .calls()
        .iter()
        .filter(|c| c.starts_with("CreateContainer app"))
        .count();
    assert!(creates <= 4, "{creates} creations");
    task.abort();
    Ok(())
}

#[tokio::test]
async fn restart_policies_end_in_the_right_phase() -> anyhow::Result<()> {
    let rig = rig().await?;
    {
        let mut s = rig
            .runtime
            .0
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?;
        s.exit_on_start.insert("fails".into(), 3);
        s.exit_on_start.insert("succeeds".into(), 0);
    }
    for (name, policy, container, want) in [
        ("never-fail", "Never", "fails", "Failed"),
        ("onfailure-ok", "OnFailure", "succeeds", "Succeeded"),
        ("never-ok", "Never", "succeeds", "Succeeded"),
    ] {
        let p = pod(
            name,
            serde_json::json!({"restartPolicy": policy,
            "containers": [{"name": container, "image": "busybox:1.36"}]}),
        )?;
        let (_tx, task) = spawn(&rig, &p);
        let status = wait_for(want, || {
            rig.cluster.last_status().filter(|s| phase(s) == want)
        })
        .await;
        let c = &status.container_statuses.clone().unwrap_or_default()[0];
        assert_eq!(c.restart_count, 0, "{name}");
        task.abort();
    }
    Ok(())
}

#[tokio::test]
async fn absent_image_with_never_and_bad_references_wait_with_reasons() -> anyhow::Result<()> {
    let rig = rig().await?;
    let p = pod(
        "noimg",
        serde_json::json!({"containers": [
        {"name": "app", "image": "missing:1", "imagePullPolicy": "Never"}]}),
    )?;
    let (_tx, task) = spawn(&rig, &p);
    let status = wait_for("ErrImageNeverPull", || {
        rig.cluster
            .last_status()
            .filter(|s| waiting_reason(s, 0).as_deref() == Some("ErrImageNeverPull"))
    })
    .await;
    assert_eq!(phase(&status), "Pending");
    task.abort();
    let p = pod(
        "pull",
        serde_json::json!({"containers": [{"name": "app", "image": "missing:2"}]}),
    )?;
    let (_tx, task) = spawn(&rig, &p);
    wait_for("ImagePullBackOff", || {
        rig.cluster
            .last_status()
            .filter(|s| waiting_reason(s, 0).as_deref() == Some("ImagePullBackOff"))
    })
    .await;
    task.abort();
    let p = pod(
        "badenv",
        serde_json::json!({"containers": [{"name": "app", "image": "busybox:1.36",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "k"}}}]}]}),
    )?;
    let (_tx, task) = spawn(&rig, &p);
    wait_for("CreateContainerConfigError", || {
        rig.cluster
            .last_status()
            .filter(|s| waiting_reason(s, 0).as_deref() == Some("CreateContainerConfigError"))
    })
    .await;
    task.abort();
    let p = pod(
        "badvol",
        serde_json::json!({"containers": [{"name": "app", "image": "busybox:1.36"}],
        "volumes": [{"name": "v", "secret": {"secretName": "absent"}}]}),
    )?;
    let (_tx, task) = spawn(&rig, &p);
    wait_for("FailedMount", || {
        rig.cluster
            .reasons()
            .contains(&"FailedMount".to_owned())
            .then_some(())
    })
    .await;
    let status = rig.cluster.last_status().unwrap_or_default();
    assert_eq!(
        waiting_reason(&status, 0).as_deref(),
        Some("ContainerCreating")
    );
    assert!(
        status
            .message
            .unwrap_or_default()
            .contains("secret \"absent\" not found")
    );
    task.abort();
    let p = pod(
        "rtclass",
        serde_json::json!({"runtimeClassName": "unknown",
        "containers": [{"name": "app", "image": "busybox:1.36"}]}),
    )?;
    let (_tx, task) = spawn(&rig, &p);
    wait_for("FailedCreatePodSandBox", || {
        rig.cluster
            .reasons()
            .contains(&"FailedCreatePodSandBox".to_owned())
            .then_some(())
    })
    .await;
    task.abort();
    Ok(())
}

#[tokio::test]
async fn failing_liveness_probe_restarts_and_readiness_gates_ready() -> anyhow::Result<()> {
    let rig = rig().await?;
    rig.runtime
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .exec_exit
        .insert("app".into(), 1);
    let p = pod(
        "probed",
        serde_json::json!({"terminationGracePeriodSeconds": 3, "containers": [
        {"name": "app", "image": "busybox:1.36",
         "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2}},
        {"name": "side", "image": "busybox:1.36",
         "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}]}),
    )?;
    let (_tx, task) = spawn(&rig, &p);
    let status = wait_for("a liveness restart", || {
        rig.cluster.last_status().filter(|s| {
            s.container_statuses
                .as_ref()
                .is_some_and(|c| c[0].restart_count >= 1)
        })
    })
    .await;
    let reasons = rig.cluster.reasons();
    assert!(reasons.contains(&"Unhealthy".to_owned()));
    assert!(reasons.contains(&"Killing".to_owned()));
    assert!(
        rig.runtime
            .calls()
            .iter()
            .any(|c| c.starts_with("StopContainer") && c.ends_with(" 3"))
    );
    // The side container became ready through its readiness probe.
    let _ = status;
    wait_for("side ready", || {
        rig.cluster
            .last_status()
            .and_then(|s| s.container_statuses)
            .filter(|c| c[1].ready)
            .map(|_| ())
    })
    .await;
    task.abort();
    Ok(())
}

#[tokio::test]
async fn restarted_kubelet_adopts_running_pods_and_removes_orphans() -> anyhow::Result<()> {
    let rig = rig().await?;
    let p = pod(
        "keep",
        serde_json::json!({"containers": [{"name": "app", "image": "busybox:1.36"}]}),
    )?;
    let orphan = pod(
        "orphan",
        serde_json::json!({"containers": [{"name": "app", "image": "busybox:1.36"}]}),
    )?;
    let (_tx1, t1) = spawn(&rig, &p);
    let (_tx2, t2) = spawn(&rig, &orphan);
    wait_for("both running", || {
        let s = rig.runtime.0.lock().ok()?;
        (s.containers
            .values()
            .filter(|c| c.state() == kerno_proto::runtime::v1::ContainerState::ContainerRunning)
            .count()
            == 2)
            .then_some(())
    })
    .await;
    // The kubelet dies: workers stop without cleaning up.
    t1.abort();
    t2.abort();
    let before = rig.runtime.calls().len();
    // It starts again; only "keep" still exists.
    let adopted = adopt::reconcile_sandboxes(&rig.deps, std::slice::from_ref(&p))
        .await
        .map_err(anyhow::Error::msg)?;
    assert_eq!(adopted.len(), 1);
    assert!(adopted.contains_key("uid-keep"));
    let mut manager = PodManager::new(rig.deps.clone());
    manager
        .start(std::slice::from_ref(&p))
        .await
        .map_err(anyhow::Error::msg)?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let calls = rig.runtime.calls()[before..].to_vec();
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("RunPodSandbox") || c.starts_with("CreateContainer")),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|c| c.starts_with("RemovePodSandbox")),
        "orphan removed: {calls:?}"
    );
    let state = rig
        .runtime
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    assert_eq!(state.sandboxes.len(), 1);
    drop(state);
    let status = rig.cluster.last_status().unwrap_or_default();
    assert_eq!(phase(&status), "Running");
    assert!(rig.deps.index.get("team", "keep", "app").is_some());
    assert!(rig.dir.path().exists());
    Ok(())
}

#[tokio::test]
async fn failing_readiness_keeps_pod_unready_and_vanished_pods_are_cleaned_without_delete()
-> anyhow::Result<()> {
    let rig = rig().await?;
    rig.runtime
        .0
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .exec_exit
        .insert("app".into(), 1);
    let p = pod(
        "unready",
        serde_json::json!({"containers": [{"name": "app", "image": "busybox:1.36",
        "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1}}]}),
    )?;
    let (tx, task) = spawn(&rig, &p);
    let status = wait_for("Running", || {
        rig.cluster.last_status().filter(|s| phase(s) == "Running")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let status = rig.cluster.last_status().unwrap_or(status);
    assert_eq!(condition(&status, "Ready").as_deref(), Some("False"));
    assert_eq!(
        condition(&status, "ContainersReady").as_deref(),
        Some("False")
    );
    assert!(
        rig.runtime
            .calls()
            .iter()
            .any(|c| c.starts_with("ExecSync"))
    );
    // Readiness failures never restart the container.
    assert_eq!(
        status.container_statuses.clone().unwrap_or_default()[0].restart_count,
        0
    );
    // The pod disappears (force-deleted): everything is removed, no delete call is made.
    tx.send_replace(None);
    tokio::time::timeout(Duration::from_secs(10), task).await??;
    assert!(
        rig.runtime
            .calls()
            .iter()
            .any(|c| c.starts_with("RemovePodSandbox"))
    );
    assert!(
        rig.cluster
            .deleted
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .is_empty()
    );
    Ok(())
}
