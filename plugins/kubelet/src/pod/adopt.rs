//! Node restart: sandboxes found in the runtime are adopted by their pods'
//! workers (no duplicates) or, when their pod is gone, removed.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kerno_proto::network::v1 as net;
use kerno_proto::runtime::v1 as rt;

use super::container::mark_running;
use super::deps::Deps;
use super::record::{ContainerPhase, Terminated};
use super::spec::{LABEL_CONTAINER_KIND, LABEL_CONTAINER_NAME, LABEL_NODE, LABEL_POD_UID};
use super::worker::{Adopted, PodWorker};
use crate::time;

/// Lists this node's sandboxes; returns those whose pod (by uid) is in
/// `pods` and not being deleted, one per pod (the newest), after stopping and
/// removing every other one.
pub async fn reconcile_sandboxes(
    deps: &Deps,
    pods: &[Arc<Pod>],
) -> Result<HashMap<String, Adopted>, String> {
    let mut runtime = deps.runtime.clone();
    let sandboxes = runtime
        .list_pod_sandbox(rt::ListPodSandboxRequest {
            label_selector: HashMap::from([(LABEL_NODE.to_owned(), deps.cfg.node_name.clone())]),
        })
        .await
        .map_err(|s| format!("list sandboxes: {}", s.message()))?
        .into_inner()
        .items;
    let live: HashMap<String, &Arc<Pod>> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| Some((p.metadata.uid.clone()?, p)))
        .collect();
    let mut keep: HashMap<String, rt::PodSandbox> = HashMap::new();
    let mut remove = Vec::new();
    for sandbox in sandboxes {
        let uid = sandbox
            .labels
            .get(LABEL_POD_UID)
            .cloned()
            .unwrap_or_default();
        if !live.contains_key(&uid) || sandbox.state() != rt::SandboxState::SandboxReady {
            remove.push(sandbox);
            continue;
        }
        match keep.remove(&uid) {
            Some(other) if other.created_at_unix_nanos > sandbox.created_at_unix_nanos => {
                keep.insert(uid, other);
                remove.push(sandbox);
            }
            Some(other) => {
                keep.insert(uid, sandbox);
                remove.push(other);
            }
            None => {
                keep.insert(uid, sandbox);
            }
        }
    }
    for sandbox in remove {
        tracing::info!(sandbox = %sandbox.id, "removing a sandbox no pod owns");
        remove_sandbox(deps, &sandbox).await;
    }
    let mut adopted = HashMap::new();
    for (uid, sandbox) in keep {
        let containers = runtime
            .list_containers(rt::ListContainersRequest {
                sandbox_id: sandbox.id.clone(),
                label_selector: HashMap::new(),
            })
            .await
            .map(|r| r.into_inner().items)
            .unwrap_or_default();
        adopted.insert(
            uid,
            Adopted {
                sandbox,
                containers,
            },
        );
    }
    Ok(adopted)
}

/// Stops a sandbox, releases its network and removes it (best effort).
pub async fn remove_sandbox(deps: &Deps, sandbox: &rt::PodSandbox) {
    let mut runtime = deps.runtime.clone();
    let mut network = deps.network.clone();
    let r = rt::PodSandboxRef {
        sandbox_id: sandbox.id.clone(),
    };
    let _ = runtime.stop_pod_sandbox(r.clone()).await;
    let meta = sandbox.metadata.clone().unwrap_or_default();
    let _ = network
        .tear_down(net::TearDownRequest {
            sandbox_id: sandbox.id.clone(),
            netns_path: sandbox.netns_path.clone(),
            pod: Some(net::PodRef {
                namespace: meta.namespace,
                name: meta.name,
                uid: meta.uid.clone(),
            }),
        })
        .await;
    let _ = runtime.remove_pod_sandbox(r).await;
    let _ = crate::volumes::remove_pod_dir(&deps.cfg.pod_dir(&meta.uid));
}

impl PodWorker {
    /// Takes over a sandbox and its containers found at start-up.
    pub async fn adopt(&mut self, adopted: Adopted) {
        let Adopted {
            sandbox,
            containers,
        } = adopted;
        let deps = self.deps.clone();
        self.sandbox_id = Some(sandbox.id.clone());
        self.netns_path = sandbox.netns_path.clone();
        let mut network = deps.network.clone();
        if self.pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
            self.pod_ips = vec![deps.host_ip.clone()];
        } else if let Ok(r) = network
            .status(net::StatusRequest {
                sandbox_id: sandbox.id.clone(),
            })
            .await
        {
            self.pod_ips = r.into_inner().ips;
        }
        self.record_pod_network();
        let spec = self.pod.spec.clone().unwrap_or_default();
        let pod = self.pod.clone();
        for (kind, specs, records) in [
            (
                "init",
                spec.init_containers.clone().unwrap_or_default(),
                &mut self.init,
            ),
            ("regular", spec.containers.clone(), &mut self.containers),
        ] {
            for (rec, cspec) in records.iter_mut().zip(&specs) {
                let mut instances: Vec<&rt::Container> = containers
                    .iter()
                    .filter(|c| {
                        c.labels.get(LABEL_CONTAINER_NAME) == Some(&cspec.name)
                            && c.labels.get(LABEL_CONTAINER_KIND).map(String::as_str) == Some(kind)
                    })
                    .collect();
                instances.sort_by_key(|c| {
                    std::cmp::Reverse(c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0))
                });
                let Some(current) = instances.first() else {
                    continue;
                };
                rec.container_id = Some(current.id.clone());
                rec.image_id = current.image_id.clone();
                rec.restart_count = current
                    .metadata
                    .as_ref()
                    .map(|m| m.attempt as i32)
                    .unwrap_or(0);
                rec.previous_id = instances.get(1).map(|c| c.id.clone());
                rec.last_terminated = instances.get(1).and_then(|c| exited(c));
                // Instances older than the previous one are no longer needed.
                for old in instances.iter().skip(2) {
                    let mut runtime = deps.runtime.clone();
                    let _ = runtime
                        .remove_container(rt::ContainerRef {
                            container_id: old.id.clone(),
                        })
                        .await;
                }
                match exited(current) {
                    Some(t) => {
                        rec.phase = ContainerPhase::Terminated(t);
                        rec.exited_at = Some(std::time::Instant::now());
                    }
                    None => {
                        mark_running(
                            rec,
                            cspec,
                            time::from_unix_nanos(current.started_at_unix_nanos),
                        );
                    }
                }
                let m = &pod.metadata;
                deps.index.set(
                    m.namespace.as_deref().unwrap_or_default(),
                    m.name.as_deref().unwrap_or_default(),
                    &cspec.name,
                    &current.id,
                );
            }
        }
        tracing::info!(pod = %self.name(), sandbox = %sandbox.id, "adopted running pod");
    }
}

/// How an instance ended, if it did (a created-but-never-started one counts as failed to start).
fn exited(c: &rt::Container) -> Option<Terminated> {
    let reason = |default: &str| {
        if c.reason.is_empty() {
            default.to_owned()
        } else {
            c.reason.clone()
        }
    };
    match c.state() {
        rt::ContainerState::ContainerRunning => None,
        rt::ContainerState::ContainerExited => Some(Terminated {
            container_id: c.id.clone(),
            exit_code: c.exit_code,
            reason: reason(if c.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            }),
            message: c.message.clone(),
            started_at: time::from_unix_nanos(c.started_at_unix_nanos),
            finished_at: time::from_unix_nanos(c.finished_at_unix_nanos),
        }),
        _ => Some(Terminated {
            container_id: c.id.clone(),
            exit_code: 128,
            reason: "StartError".to_owned(),
            message: "the kubelet restarted before the container started".to_owned(),
            started_at: None,
            finished_at: Some(time::now()),
        }),
    }
}
