//! The pod status the kubelet reports, computed from its container records:
//! phase, conditions, IPs and container statuses (as Kubernetes' kubelet).

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::record::{ContainerPhase, ContainerRecord, Terminated, should_restart};

/// What the status is computed from.
pub struct PodView<'a> {
    /// The pod as last seen.
    pub pod: &'a Pod,
    /// The sandbox exists and its network is set up.
    pub sandbox_ready: bool,
    /// Pod IPs (IPv4 first).
    pub pod_ips: &'a [String],
    /// The node's IP.
    pub host_ip: &'a str,
    /// When the kubelet first acknowledged the pod.
    pub start_time: Option<&'a Time>,
    /// Init containers in spec order.
    pub init: &'a [ContainerRecord],
    /// Regular containers in spec order.
    pub containers: &'a [ContainerRecord],
    /// Every init container completed.
    pub initialized: bool,
    /// A message for the pod (e.g. a failed sandbox), shown by `describe`.
    pub message: Option<&'a str>,
    /// Now (for conditions that change).
    pub now: &'a Time,
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// The pod phase, following Kubernetes' `getPhase`.
pub fn phase(view: &PodView<'_>) -> &'static str {
    let policy = restart_policy(view.pod);
    // A failed init container that will not be retried fails the pod.
    let init_failed = view.init.iter().any(|c| {
        c.terminated()
            .is_some_and(|t| t.exit_code != 0 && !should_restart(policy, t.exit_code))
    });
    if init_failed {
        return "Failed";
    }
    if !view.initialized {
        return "Pending";
    }
    let (mut pending, mut running, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in view.containers {
        match &c.phase {
            ContainerPhase::Running { .. } => running += 1,
            ContainerPhase::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            ContainerPhase::Waiting { .. } => match &c.last_terminated {
                // Waiting to restart after it ran: counts as stopped.
                Some(t) => {
                    stopped += 1;
                    if t.exit_code == 0 {
                        succeeded += 1;
                    }
                }
                None => pending += 1,
            },
        }
    }
    if pending > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

fn state(phase: &ContainerPhase) -> ContainerState {
    match phase {
        ContainerPhase::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: (!message.is_empty()).then(|| message.clone()),
            }),
            ..ContainerState::default()
        },
        ContainerPhase::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: started_at.clone(),
            }),
            ..ContainerState::default()
        },
        ContainerPhase::Terminated(t) => terminated_state(t),
    }
}

fn terminated_state(t: &Terminated) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            container_id: Some(runtime_container_id(&t.container_id)),
            exit_code: t.exit_code,
            reason: (!t.reason.is_empty()).then(|| t.reason.clone()),
            message: (!t.message.is_empty()).then(|| t.message.clone()),
            started_at: t.started_at.clone(),
            finished_at: t.finished_at.clone(),
            signal: None,
        }),
        ..ContainerState::default()
    }
}

/// `containerd://<id>` as Kubernetes shows container ids.
pub fn runtime_container_id(id: &str) -> String {
    format!("containerd://{id}")
}

/// The status of one container.
pub fn container_status(c: &ContainerRecord) -> ContainerStatus {
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c.image_id.clone(),
        container_id: c.container_id.as_deref().map(runtime_container_id),
        state: Some(state(&c.phase)),
        last_state: Some(
            c.last_terminated
                .as_ref()
                .map(terminated_state)
                .unwrap_or_default(),
        ),
        ready: c.ready,
        started: Some(c.started),
        restart_count: c.restart_count,
        ..ContainerStatus::default()
    }
}

fn condition(pod: &Pod, type_: &str, ok: bool, reason: Option<&str>, now: &Time) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    // Keep the transition time while the status stays the same.
    let since = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: if ok { None } else { reason.map(str::to_owned) },
        last_transition_time: Some(since),
        ..PodCondition::default()
    }
}

/// The full status; fields the kubelet does not own are kept from the pod.
pub fn compute(view: &PodView<'_>) -> PodStatus {
    let pod = view.pod;
    let mut status = pod.status.clone().unwrap_or_default();
    let phase = phase(view);
    let finished = phase == "Succeeded" || phase == "Failed";
    let containers_ready = !view.containers.is_empty() && view.containers.iter().all(|c| c.ready);
    let not_ready_reason = if finished {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    status.phase = Some(phase.to_owned());
    status.conditions = Some(vec![
        condition(
            pod,
            "PodReadyToStartContainers",
            view.sandbox_ready,
            None,
            view.now,
        ),
        condition(
            pod,
            "Initialized",
            view.initialized,
            Some(if finished {
                "PodCompleted"
            } else {
                "ContainersNotInitialized"
            }),
            view.now,
        ),
        condition(
            pod,
            "Ready",
            containers_ready,
            Some(not_ready_reason),
            view.now,
        ),
        condition(
            pod,
            "ContainersReady",
            containers_ready,
            Some(not_ready_reason),
            view.now,
        ),
        condition(pod, "PodScheduled", true, None, view.now),
    ]);
    status.host_ip = (!view.host_ip.is_empty()).then(|| view.host_ip.to_owned());
    status.host_ips = status
        .host_ip
        .as_ref()
        .map(|ip| vec![HostIP { ip: ip.clone() }]);
    status.pod_ip = view.pod_ips.first().cloned();
    status.pod_ips = (!view.pod_ips.is_empty()).then(|| {
        view.pod_ips
            .iter()
            .map(|ip| PodIP { ip: ip.clone() })
            .collect()
    });
    status.start_time = view.start_time.cloned();
    status.message = view.message.map(str::to_owned);
    status.container_statuses = Some(view.containers.iter().map(container_status).collect());
    status.init_container_statuses =
        (!view.init.is_empty()).then(|| view.init.iter().map(container_status).collect());
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::Backoff;

    fn pod(policy: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "d", "uid": "u"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "a", "image": "busybox"}]}
        }))
        .unwrap_or_default()
    }

    fn record(phase: ContainerPhase) -> ContainerRecord {
        let mut r = ContainerRecord::new("a", "busybox", Backoff::kubernetes());
        r.phase = phase;
        r
    }

    fn exited(code: i32) -> ContainerPhase {
        ContainerPhase::Terminated(Terminated {
            container_id: "c1".into(),
            exit_code: code,
            reason: if code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            },
            message: String::new(),
            started_at: None,
            finished_at: None,
        })
    }

    fn view<'a>(
        pod: &'a Pod,
        init: &'a [ContainerRecord],
        cs: &'a [ContainerRecord],
        now: &'a Time,
    ) -> PodView<'a> {
        PodView {
            pod,
            sandbox_ready: true,
            pod_ips: &[],
            host_ip: "10.0.0.1",
            start_time: None,
            init,
            containers: cs,
            initialized: init
                .iter()
                .all(|c| c.terminated().is_some_and(|t| t.exit_code == 0)),
            message: None,
            now,
        }
    }

    #[test]
    fn phase_follows_container_states_and_restart_policy() {
        let now = crate::time::now();
        let waiting = || ContainerPhase::Waiting {
            reason: "ContainerCreating".into(),
            message: String::new(),
        };
        let running = || ContainerPhase::Running { started_at: None };
        let cases = [
            ("Always", waiting(), "Pending"),
            ("Always", running(), "Running"),
            ("Always", exited(0), "Running"),
            ("Never", exited(0), "Succeeded"),
            ("Never", exited(1), "Failed"),
            ("OnFailure", exited(0), "Succeeded"),
            ("OnFailure", exited(2), "Running"),
        ];
        for (policy, state, want) in cases {
            let p = pod(policy);
            let cs = [record(state.clone())];
            assert_eq!(phase(&view(&p, &[], &cs, &now)), want, "{policy} {state:?}");
        }
        // Crash-looping (waiting after a run) is Running under Always.
        let p = pod("Always");
        let mut r = record(ContainerPhase::Waiting {
            reason: "CrashLoopBackOff".into(),
            message: String::new(),
        });
        r.last_terminated = Some(Terminated {
            container_id: "c0".into(),
            exit_code: 1,
            reason: "Error".into(),
            message: String::new(),
            started_at: None,
            finished_at: None,
        });
        assert_eq!(phase(&view(&p, &[], &[r], &now)), "Running");
        // A running init container keeps the pod Pending; a failed one under Never fails it.
        let init = [record(running())];
        assert_eq!(
            phase(&view(&p, &init, &[record(waiting())], &now)),
            "Pending"
        );
        let p = pod("Never");
        let init = [record(exited(3))];
        assert_eq!(
            phase(&view(&p, &init, &[record(waiting())], &now)),
            "Failed"
        );
    }

    #[test]
    fn status_has_conditions_ids_and_stable_transition_times() {
        let now = crate::time::now();
        let mut p = pod("Always");
        let mut r = record(ContainerPhase::Running {
            started_at: Some(now.clone()),
        });
        r.container_id = Some("abc".into());
        r.ready = true;
        r.started = true;
        r.restart_count = 2;
        let cs = [r];
        let ips = ["10.244.0.7".to_owned()];
        let mut v = view(&p, &[], &cs, &now);
        v.pod_ips = &ips;
        let s = compute(&v);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.0.7"));
        assert_eq!(s.host_ip.as_deref(), Some("10.0.0.1"));
        let cond = |s: &PodStatus, t: &str| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == t)
                .map(|c| c.status.clone())
        };
        for t in [
            "Ready",
            "ContainersReady",
            "Initialized",
            "PodScheduled",
            "PodReadyToStartContainers",
        ] {
            assert_eq!(cond(&s, t).as_deref(), Some("True"), "{t}");
        }
        let c = &s.container_statuses.clone().unwrap_or_default()[0];
        assert_eq!(c.container_id.as_deref(), Some("containerd://abc"));
        assert_eq!(c.restart_count, 2);
        assert!(c.state.as_ref().and_then(|s| s.running.as_ref()).is_some());
        // Recomputing against the written status, later, changes nothing.
        p.status = Some(s.clone());
        let later = Time(now.0 + k8s_openapi::jiff::SignedDuration::from_secs(30));
        let mut v = view(&p, &[], &cs, &later);
        v.pod_ips = &ips;
        assert_eq!(compute(&v), s);
    }
}
