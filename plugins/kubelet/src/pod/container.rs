//! One container's steps: refresh from the runtime, start (with image policy,
//! env, back-off) and probes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};
use kerno_proto::runtime::v1 as rt;

use super::deps::Deps;
use super::record::{ContainerPhase, ContainerRecord, Terminated};
use super::spec::container_config;
use crate::env::{PodFields, resolve_env};
use crate::probes::{ProbeKind, ProbeState, ProbeTarget, run_probe};
use crate::refs::ObjectRefs;
use crate::time;

/// What starting a container needs from its pod.
pub struct StartCtx<'a> {
    /// Shared state.
    pub deps: &'a Deps,
    /// The pod.
    pub pod: &'a Pod,
    /// Its sandbox.
    pub sandbox_id: &'a str,
    /// The sandbox config (the runtime wants it with each container).
    pub sandbox_config: &'a rt::PodSandboxConfig,
    /// Volume name → host path.
    pub volumes: &'a BTreeMap<String, PathBuf>,
    /// Referenced ConfigMaps and Secrets.
    pub refs: &'a ObjectRefs,
    /// The pod's IP.
    pub pod_ip: &'a str,
}

impl StartCtx<'_> {
    fn pod_ref(&self) -> String {
        let m = &self.pod.metadata;
        format!(
            "{}_{}({})",
            m.name.as_deref().unwrap_or_default(),
            m.namespace.as_deref().unwrap_or_default(),
            m.uid.as_deref().unwrap_or_default()
        )
    }
}

/// `spec.containers{name}` / `spec.initContainers{name}` for events.
pub fn field_path(kind: &str, name: &str) -> String {
    if kind == "init" {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}

/// The effective pull policy: `Always` for `:latest` or untagged images, else `IfNotPresent`.
pub fn pull_policy(container: &Container) -> String {
    if let Some(p) = &container.image_pull_policy {
        return p.clone();
    }
    let image = container.image.as_deref().unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') && !last.ends_with(":latest") {
        "IfNotPresent".to_owned()
    } else {
        "Always".to_owned()
    }
}

/// Re-reads the current instance from the runtime; notices exits.
pub async fn refresh(deps: &Deps, rec: &mut ContainerRecord) {
    let Some(id) = rec.container_id.clone() else {
        return;
    };
    if !rec.running() {
        return;
    }
    let mut runtime = deps.runtime.clone();
    let exited = match runtime
        .container_status(rt::ContainerRef {
            container_id: id.clone(),
        })
        .await
    {
        Ok(reply) => {
            let c = reply.into_inner();
            if !c.image_id.is_empty() {
                rec.image_id = c.image_id.clone();
            }
            if c.state() != rt::ContainerState::ContainerExited {
                return;
            }
            let reason = if !c.reason.is_empty() {
                c.reason.clone()
            } else if c.exit_code == 0 {
                "Completed".to_owned()
            } else {
                "Error".to_owned()
            };
            Terminated {
                container_id: id,
                exit_code: c.exit_code,
                reason,
                message: c.message,
                started_at: time::from_unix_nanos(c.started_at_unix_nanos),
                finished_at: time::from_unix_nanos(c.finished_at_unix_nanos),
            }
        }
        Err(s) if s.code() == tonic::Code::NotFound => Terminated {
            container_id: id,
            exit_code: 137,
            reason: "ContainerStatusUnknown".to_owned(),
            message: "The container could not be located".to_owned(),
            started_at: None,
            finished_at: Some(time::now()),
        },
        Err(s) => {
            tracing::debug!(error = %s.message(), "container status unavailable");
            return;
        }
    };
    rec.phase = ContainerPhase::Terminated(exited);
    rec.exited_at = Some(Instant::now());
    rec.ready = false;
    rec.started = false;
    rec.probes.clear();
}

/// Starts (or restarts) a container, honouring back-off and pull policy.
/// Failures become the record's waiting state plus an event.
pub async fn start(ctx: &StartCtx<'_>, rec: &mut ContainerRecord, spec: &Container, kind: &str) {
    let deps = ctx.deps;
    let pod = ctx.pod;
    let fp = field_path(kind, &spec.name);
    let now = Instant::now();
    let image = spec.image.clone().unwrap_or_default();
    if let (Some(delay), Some(exited)) = (rec.delay, rec.exited_at)
        && now < exited + delay
    {
        let pull_failed = matches!(&rec.phase, ContainerPhase::Waiting { reason, .. }
            if reason == "ErrImagePull" || reason == "ImagePullBackOff");
        if pull_failed {
            if rec.wait(
                "ImagePullBackOff",
                format!("Back-off pulling image \"{image}\""),
            ) {
                let msg = format!("Back-off pulling image \"{image}\"");
                deps.cluster
                    .event(pod, Some(&fp), "Normal", "BackOff", &msg)
                    .await;
            }
        } else {
            let msg = format!(
                "back-off {}s restarting failed container={} pod={}",
                delay.as_secs(),
                spec.name,
                ctx.pod_ref()
            );
            let keep_last = rec.last_terminated.clone();
            let current = rec.terminated().cloned();
            if rec.wait("CrashLoopBackOff", msg) {
                let msg = format!(
                    "Back-off restarting failed container {} in pod {}",
                    spec.name,
                    ctx.pod_ref()
                );
                deps.cluster
                    .event(pod, Some(&fp), "Warning", "BackOff", &msg)
                    .await;
            }
            // While backing off, the last run is what `lastState` shows.
            rec.last_terminated = current.or(keep_last);
        }
        return;
    }
    let mut runtime = deps.runtime.clone();
    let present = match runtime
        .image_status(rt::ImageRef {
            image: image.clone(),
        })
        .await
    {
        Ok(r) => r.into_inner().image,
        Err(s) => {
            if rec.wait("ContainerCreating", format!("runtime: {}", s.message())) {
                tracing::warn!(error = %s.message(), "image status failed");
            }
            return;
        }
    };
    let policy = pull_policy(spec);
    if present.is_none() && policy == "Never" {
        let msg = format!("Container image \"{image}\" is not present with pull policy of Never");
        if rec.wait("ErrImageNeverPull", msg.clone()) {
            deps.cluster
                .event(pod, Some(&fp), "Warning", "ErrImageNeverPull", &msg)
                .await;
        }
        return;
    }
    let fields = PodFields {
        pod_ip: ctx.pod_ip.to_owned(),
        host_ip: deps.host_ip.clone(),
        node_cpu_millis: deps.node_cpu_millis,
        node_memory_bytes: deps.node_memory_bytes,
    };
    let config = resolve_env(pod, spec, &fields, ctx.refs)
        .map_err(|e| e.to_string())
        .and_then(|env| {
            let attempt = next_attempt(rec);
            container_config(pod, spec, kind, &env, ctx.volumes, attempt).map_err(|e| e.to_string())
        });
    let config = match config {
        Ok(c) => c,
        Err(msg) => {
            if rec.wait("CreateContainerConfigError", msg.clone()) {
                deps.cluster
                    .event(
                        pod,
                        Some(&fp),
                        "Warning",
                        "Failed",
                        &format!("Error: {msg}"),
                    )
                    .await;
            }
            return;
        }
    };
    if let Some(img) = &present {
        rec.image_id = img.id.clone();
        if rec.container_id.is_none() {
            let msg = format!("Container image \"{image}\" already present on machine");
            deps.cluster
                .event(pod, Some(&fp), "Normal", "Pulled", &msg)
                .await;
        }
    }
    let attempt = next_attempt(rec);
    let created = runtime
        .create_container(rt::CreateContainerRequest {
            sandbox_id: ctx.sandbox_id.to_owned(),
            config: Some(config),
            sandbox_config: Some(ctx.sandbox_config.clone()),
        })
        .await;
    let new_id = match created {
        Ok(r) => r.into_inner().container_id,
        Err(s) => {
            let (reason, msg) = if s.code() == tonic::Code::NotFound && present.is_none() {
                (
                    "ErrImagePull",
                    format!("Failed to pull image \"{image}\": {}", s.message()),
                )
            } else {
                ("CreateContainerError", s.message().to_owned())
            };
            rec.exited_at = Some(Instant::now());
            rec.delay = Some(rec.backoff.next_delay());
            if rec.wait(reason, msg.clone()) {
                let event_msg = if reason == "ErrImagePull" {
                    msg
                } else {
                    format!("Error: {msg}")
                };
                deps.cluster
                    .event(pod, Some(&fp), "Warning", "Failed", &event_msg)
                    .await;
                if reason == "ErrImagePull" {
                    let m = format!("Error: {reason}");
                    deps.cluster
                        .event(pod, Some(&fp), "Warning", "Failed", &m)
                        .await;
                }
            }
            return;
        }
    };
    deps.cluster
        .event(
            pod,
            Some(&fp),
            "Normal",
            "Created",
            &format!("Created container: {}", spec.name),
        )
        .await;
    // The instance before the previous one is no longer needed (logs --previous
    // reads only the previous one).
    let restarting = rec.container_id.is_some();
    if restarting {
        if let Some(old) = rec.previous_id.take() {
            let _ = runtime
                .remove_container(rt::ContainerRef { container_id: old })
                .await;
        }
        rec.previous_id = rec.container_id.clone();
        if let Some(t) = rec.terminated().cloned() {
            rec.last_terminated = Some(t);
        }
        // A container that ran long enough starts its back-off over.
        let ran = match (rec.started_instant, rec.exited_at) {
            (Some(s), Some(e)) => e.saturating_duration_since(s),
            _ => Duration::ZERO,
        };
        if ran >= rec.backoff.reset_after() {
            rec.backoff.reset();
        }
        rec.delay = Some(rec.backoff.next_delay());
    }
    rec.container_id = Some(new_id.clone());
    rec.restart_count = attempt as i32;
    let m = &pod.metadata;
    deps.index.set(
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
        &spec.name,
        &new_id,
    );
    if let Err(s) = runtime
        .start_container(rt::ContainerRef {
            container_id: new_id.clone(),
        })
        .await
    {
        let msg = s.message().to_owned();
        rec.phase = ContainerPhase::Terminated(Terminated {
            container_id: new_id,
            exit_code: 128,
            reason: "StartError".to_owned(),
            message: msg.clone(),
            started_at: None,
            finished_at: Some(time::now()),
        });
        rec.exited_at = Some(Instant::now());
        rec.started_instant = rec.exited_at;
        rec.reported = None;
        deps.cluster
            .event(
                pod,
                Some(&fp),
                "Warning",
                "Failed",
                &format!("Error: {msg}"),
            )
            .await;
        return;
    }
    deps.cluster
        .event(
            pod,
            Some(&fp),
            "Normal",
            "Started",
            &format!("Started container {}", spec.name),
        )
        .await;
    mark_running(rec, spec, Some(time::now()));
}

/// The runtime attempt number of the next instance.
fn next_attempt(rec: &ContainerRecord) -> u32 {
    if rec.container_id.is_some() {
        rec.restart_count.max(0) as u32 + 1
    } else {
        rec.restart_count.max(0) as u32
    }
}

/// Sets a record to running with fresh probes.
pub fn mark_running(
    rec: &mut ContainerRecord,
    spec: &Container,
    started_at: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
) {
    let now = Instant::now();
    rec.phase = ContainerPhase::Running { started_at };
    rec.started_instant = Some(now);
    rec.exited_at = None;
    rec.reported = None;
    rec.probes.clear();
    for (kind, probe) in [
        (ProbeKind::Startup, &spec.startup_probe),
        (ProbeKind::Liveness, &spec.liveness_probe),
        (ProbeKind::Readiness, &spec.readiness_probe),
    ] {
        if let Some(p) = probe {
            rec.probes.push(ProbeState::new(kind, p, now));
        }
    }
    rec.started = spec.startup_probe.is_none();
    rec.ready = rec.started && spec.readiness_probe.is_none();
}

/// Runs the due probes of a running container; kills it on a failed
/// liveness or startup probe (the restart policy then applies).
pub async fn probe(
    deps: &Deps,
    pod: &Pod,
    rec: &mut ContainerRecord,
    spec: &Container,
    pod_ip: &str,
    grace: i64,
) {
    let Some(id) = rec.container_id.clone() else {
        return;
    };
    if !rec.running() {
        return;
    }
    let fp = field_path("regular", &spec.name);
    let now = Instant::now();
    let mut kill = None;
    for i in 0..rec.probes.len() {
        let state = &rec.probes[i];
        if !state.due(now) || (state.kind != ProbeKind::Startup && !rec.started) {
            continue;
        }
        let probe_spec = match state.kind {
            ProbeKind::Startup => spec.startup_probe.as_ref(),
            ProbeKind::Liveness => spec.liveness_probe.as_ref(),
            ProbeKind::Readiness => spec.readiness_probe.as_ref(),
        };
        let Some(probe_spec) = probe_spec else {
            continue;
        };
        let target = ProbeTarget {
            runtime: deps.runtime.clone(),
            container_id: &id,
            pod_ip,
            ports: spec.ports.as_deref().unwrap_or(&[]),
        };
        let timeout = state.timeout;
        let kind = state.kind;
        let outcome = run_probe(probe_spec, target, timeout).await;
        if let Err(msg) = &outcome {
            let msg = format!("{} probe failed: {msg}", kind.label());
            deps.cluster
                .event(pod, Some(&fp), "Warning", "Unhealthy", &msg)
                .await;
        }
        let flipped = rec.probes[i].record(outcome.is_ok(), Instant::now());
        match (kind, flipped) {
            (ProbeKind::Startup, Some(true)) => rec.started = true,
            (ProbeKind::Startup, Some(false)) => kill = Some("startup"),
            (ProbeKind::Liveness, Some(false)) => kill = Some("liveness"),
            _ => {}
        }
        if kill.is_some() {
            break;
        }
    }
    let readiness_ok = rec
        .probes
        .iter()
        .find(|p| p.kind == ProbeKind::Readiness)
        .is_none_or(|p| p.passing());
    rec.ready = rec.started && readiness_ok;
    if let Some(which) = kill {
        let msg = format!(
            "Container {} failed {which} probe, will be restarted",
            spec.name
        );
        deps.cluster
            .event(pod, Some(&fp), "Normal", "Killing", &msg)
            .await;
        let mut runtime = deps.runtime.clone();
        let _ = runtime
            .stop_container(rt::StopContainerRequest {
                container_id: id,
                timeout_seconds: grace,
            })
            .await;
        refresh(deps, rec).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_defaults_like_kubernetes() {
        let c = |image: &str| Container {
            image: Some(image.into()),
            ..Container::default()
        };
        assert_eq!(pull_policy(&c("busybox")), "Always");
        assert_eq!(pull_policy(&c("busybox:latest")), "Always");
        assert_eq!(pull_policy(&c("busybox:1.36")), "IfNotPresent");
        assert_eq!(pull_policy(&c("registry:5000/busybox")), "Always");
        let mut never = c("busybox");
        never.image_pull_policy = Some("Never".into());
        assert_eq!(pull_policy(&never), "Never");
    }
}
