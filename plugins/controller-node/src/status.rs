//! Writing what [`crate::policy`] decides: the node's Ready condition and
//! taints, its pods' Ready condition, and evictions.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kerno_sdk::{Api, DeleteParams, Error, Patch, PatchParams};
use serde_json::json;

use crate::policy::{self, Health, NOT_READY, UNKNOWN_REASON, UNREACHABLE};
use crate::{Context, NODE_INDEX, ReconcileError};

/// Our name in `managedFields`.
const FIELD_MANAGER: &str = "kerno-controller-node";

/// The wall clock as a Kubernetes time (jiff is built without its clock here).
fn now() -> Time {
    Time(Timestamp::from_millisecond(chrono::Utc::now().timestamp_millis()).unwrap_or_default())
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The node's health from its lease and its Ready condition.
pub fn judge(node: &Node, lease_stale: bool) -> Health {
    if lease_stale {
        Health::Unreachable
    } else if ready_condition(node).is_some_and(|c| c.status == "False") {
        Health::NotReady
    } else {
        Health::Ready
    }
}

/// Moves the node and its pods toward `health`; returns how soon the next
/// eviction is due, if one is pending.
pub async fn sync(
    ctx: &Context,
    node: &Node,
    name: &str,
    health: Health,
) -> Result<Option<Duration>, ReconcileError> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let now = now();
    let mut node = node.clone();
    if let Some(condition) = next_ready_condition(&node, health, &now) {
        let mut conditions = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        conditions.retain(|c| c.type_ != "Ready");
        conditions.push(condition);
        tracing::info!(node = name, ?health, "setting the Ready condition");
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "status": {"conditions": conditions},
        });
        node = nodes
            .patch_status(name, &pp(), &Patch::Merge(patch))
            .await?;
    }
    let current: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    if let Some(taints) = policy::desired_taints(&current, health, &now) {
        tracing::info!(node = name, ?health, "updating taints");
        let patch = json!({
            "metadata": {"resourceVersion": node.metadata.resource_version},
            "spec": {"taints": if taints.is_empty() { serde_json::Value::Null } else { json!(taints) }},
        });
        node = nodes.patch(name, &pp(), &Patch::Merge(patch)).await?;
    }
    let pods = ctx.pods.by_index(NODE_INDEX, name);
    if health == Health::Unreachable {
        for pod in &pods {
            mark_not_ready(ctx, pod, &now).await?;
        }
    }
    let no_execute: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.effect == "NoExecute" && (t.key == UNREACHABLE || t.key == NOT_READY))
        .collect();
    let mut next_due: Option<Duration> = None;
    for pod in &pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(remaining) = eviction_due_in(ctx, pod, &no_execute, &now) else {
            continue;
        };
        if remaining.is_zero() {
            evict(ctx, pod, health).await?;
        } else {
            next_due = Some(next_due.map_or(remaining, |d| d.min(remaining)));
        }
    }
    Ok(next_due)
}

/// The Ready condition to write, if it must change: Unknown when the lease
/// is stale; True again when the lease resumes after we set it Unknown
/// (nothing else would, since the lease is the kubelet's only heartbeat here).
fn next_ready_condition(node: &Node, health: Health, now: &Time) -> Option<NodeCondition> {
    let current = ready_condition(node);
    match health {
        Health::Unreachable => policy::unknown_ready(current, now),
        Health::Ready
            if current.is_some_and(|c| {
                c.status == "Unknown" && c.reason.as_deref() == Some(UNKNOWN_REASON)
            }) =>
        {
            Some(NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                message: Some("node lease renewed".into()),
                last_transition_time: Some(now.clone()),
                last_heartbeat_time: Some(now.clone()),
            })
        }
        _ => None,
    }
}

/// How long until `pod` must go because of the NoExecute `taints`: zero if
/// now, `None` if it may stay.
fn eviction_due_in(ctx: &Context, pod: &Pod, taints: &[Taint], now: &Time) -> Option<Duration> {
    let mut due: Option<i64> = None;
    for taint in taints {
        let Some(seconds) =
            policy::eviction_after(pod, taint, ctx.config.default_toleration_seconds)
        else {
            continue;
        };
        let added = taint
            .time_added
            .as_ref()
            .map_or(now.0.as_millisecond(), |t| t.0.as_millisecond());
        let deadline = added.saturating_add(seconds.saturating_mul(1000));
        due = Some(due.map_or(deadline, |d| d.min(deadline)));
    }
    let remaining = due? - now.0.as_millisecond();
    Some(Duration::from_millis(remaining.max(0).unsigned_abs()))
}

/// Sets a pod's Ready condition False (its node cannot vouch for it).
async fn mark_not_ready(ctx: &Context, pod: &Pod, now: &Time) -> Result<(), ReconcileError> {
    let mut conditions: Vec<PodCondition> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    if conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "False")
    {
        return Ok(());
    }
    conditions.retain(|c| c.type_ != "Ready");
    conditions.push(PodCondition {
        type_: "Ready".into(),
        status: "False".into(),
        reason: Some("NodeNotReady".into()),
        message: Some("the node's lease is not renewed".into()),
        last_transition_time: Some(now.clone()),
        ..PodCondition::default()
    });
    let (Some(namespace), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
        return Ok(());
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = json!({
        "metadata": {"resourceVersion": pod.metadata.resource_version},
        "status": {"conditions": conditions},
    });
    match pods.patch_status(name, &pp(), &Patch::Merge(patch)).await {
        Ok(_) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes a pod whose toleration ran out. On an unreachable node nothing
/// would finish a graceful deletion, so it is immediate there.
async fn evict(ctx: &Context, pod: &Pod, health: Health) -> Result<(), ReconcileError> {
    let (Some(namespace), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
        return Ok(());
    };
    tracing::info!(pod = %format!("{namespace}/{name}"), ?health, "evicting pod from tainted node");
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
    let dp = DeleteParams {
        grace_period_seconds: (health == Health::Unreachable).then_some(0),
        ..DeleteParams::default()
    };
    match pods.delete(name, &dp).await {
        Ok(_) | Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
