//! The simulated kubelet: pods bound to our nodes become Running; pods being
//! deleted are finished off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{ContainerState, ContainerStateRunning};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodIP, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kerno_sdk::{Action, Api, DeleteParams, Error, KernelClient, Patch, PatchParams};
use serde_json::json;

use crate::config::SimConfig;

/// What the pod reconciler needs.
pub struct PodContext {
    /// The kernel.
    pub client: KernelClient,
    /// Our config.
    pub config: SimConfig,
    /// Our node names → their index.
    pub nodes: HashMap<String, usize>,
    /// Per node, how many pod IPs were handed out.
    pub next_ip: Mutex<HashMap<String, u32>>,
}

impl PodContext {
    /// The context for `config`'s nodes.
    pub fn new(client: KernelClient, config: SimConfig) -> Self {
        let nodes = (0..config.nodes)
            .map(|i| (config.node_name(i), i))
            .collect();
        Self {
            client,
            config,
            nodes,
            next_ip: Mutex::new(HashMap::new()),
        }
    }

    /// The next pod IP on `node` (index `i`), cycling through .2–.251.
    fn allocate_ip(&self, node: &str, i: usize) -> String {
        let n = {
            let mut next = self.next_ip.lock().unwrap_or_else(|e| e.into_inner());
            let n = next.entry(node.to_owned()).or_insert(0);
            let current = *n;
            *n = n.wrapping_add(1);
            current
        };
        let cidr = self.config.pod_cidr(i);
        let prefix = cidr.trim_end_matches(".0/24");
        format!("{prefix}.{}", 2 + n % 250)
    }
}

/// The Running status of `pod` on node `i` with `ip`.
pub fn running_status(config: &SimConfig, pod: &Pod, i: usize, ip: &str) -> PodStatus {
    let now = Time(kerno_sdk::events::now());
    let condition = |type_: &str| PodCondition {
        type_: type_.into(),
        status: "True".into(),
        last_transition_time: Some(now.clone()),
        ..PodCondition::default()
    };
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or(&[]);
    PodStatus {
        phase: Some("Running".into()),
        host_ip: Some(config.node_ip(i)),
        pod_ip: Some(ip.to_owned()),
        pod_ips: Some(vec![PodIP { ip: ip.to_owned() }]),
        start_time: Some(now.clone()),
        qos_class: pod.status.as_ref().and_then(|s| s.qos_class.clone()),
        conditions: Some(vec![
            condition("PodReadyToStartContainers"),
            condition("Initialized"),
            condition("Ready"),
            condition("ContainersReady"),
            condition("PodScheduled"),
        ]),
        container_statuses: Some(
            containers
                .iter()
                .map(|c| ContainerStatus {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    image_id: format!("sim://{}", c.image.clone().unwrap_or_default()),
                    container_id: Some(format!("sim://{}", c.name)),
                    ready: true,
                    started: Some(true),
                    restart_count: 0,
                    state: Some(ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(now.clone()),
                        }),
                        ..ContainerState::default()
                    }),
                    ..ContainerStatus::default()
                })
                .collect(),
        ),
        ..PodStatus::default()
    }
}

/// Moves one pod toward what a kubelet would make of it.
pub async fn reconcile(pod: Arc<Pod>, ctx: Arc<PodContext>) -> Result<Action, Error> {
    let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
        return Ok(Action::await_change());
    };
    let Some(&i) = ctx.nodes.get(node) else {
        return Ok(Action::await_change());
    };
    let (Some(name), Some(namespace)) = (
        pod.metadata.name.as_deref(),
        pod.metadata.namespace.as_deref(),
    ) else {
        return Ok(Action::await_change());
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    if pod.metadata.deletion_timestamp.is_some() {
        // Containers "stopped" at once: finish the deletion like a kubelet.
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        };
        match pods.delete(name, &dp).await {
            Ok(_) | Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        return Ok(Action::await_change());
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if !ctx.config.run_pods || matches!(phase, Some("Running" | "Succeeded" | "Failed")) {
        return Ok(Action::await_change());
    }
    let ip = ctx.allocate_ip(node, i);
    let status = running_status(&ctx.config, &pod, i, &ip);
    let patch = json!({ "status": status });
    match pods
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) | Err(Error::NotFound(_)) => Ok(Action::await_change()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    #[test]
    fn running_status_is_ready_with_an_ip_in_the_node_cidr() {
        let config = SimConfig::default();
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some("busybox".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        let s = running_status(&config, &pod, 1, "10.64.1.2");
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.64.1.2"));
        let statuses = s.container_statuses.unwrap_or_default();
        assert_eq!(statuses.len(), 1);
        assert!(statuses[0].ready);
        let conditions = s.conditions.unwrap_or_default();
        assert!(
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        );
    }
}
