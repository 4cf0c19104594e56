//! The node lifecycle rules as pure functions: which taints a node should
//! carry, its Ready condition when its lease is stale, and when a pod on a
//! tainted node must go.

use k8s_openapi::api::core::v1::{NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// The taint key of a node whose lease went stale.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint key of a node whose Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The reason we put on a Ready condition we set to Unknown.
pub const UNKNOWN_REASON: &str = "NodeStatusUnknown";
/// The message of that condition (as Kubernetes writes it).
pub const UNKNOWN_MESSAGE: &str = "Kubelet stopped posting node status.";

/// The node's health as this controller judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Lease fresh and Ready not False.
    Ready,
    /// Lease fresh but the Ready condition is False.
    NotReady,
    /// Lease not renewed within the grace period.
    Unreachable,
}

/// The managed taint key for a health, if any.
pub fn taint_key(health: Health) -> Option<&'static str> {
    match health {
        Health::Ready => None,
        Health::NotReady => Some(NOT_READY),
        Health::Unreachable => Some(UNREACHABLE),
    }
}

/// The taints a node should carry: its own taints minus the managed ones
/// that no longer apply, plus the ones that now apply (NoSchedule and
/// NoExecute, stamped `now`). `None` when nothing changes.
pub fn desired_taints(current: &[Taint], health: Health, now: &Time) -> Option<Vec<Taint>> {
    let wanted = taint_key(health);
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| {
            let managed = t.key == UNREACHABLE || t.key == NOT_READY;
            !managed || Some(t.key.as_str()) == wanted
        })
        .cloned()
        .collect();
    if let Some(key) = wanted {
        for effect in ["NoSchedule", "NoExecute"] {
            if !next.iter().any(|t| t.key == key && t.effect == effect) {
                next.push(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    time_added: (effect == "NoExecute").then(|| now.clone()),
                    value: None,
                });
            }
        }
    }
    (next != current).then_some(next)
}

/// The node's Ready condition after its lease went stale: Unknown, keeping
/// the original transition time if it already was.
pub fn unknown_ready(current: Option<&NodeCondition>, now: &Time) -> Option<NodeCondition> {
    if current.is_some_and(|c| c.status == "Unknown") {
        return None;
    }
    Some(NodeCondition {
        type_: "Ready".into(),
        status: "Unknown".into(),
        reason: Some(UNKNOWN_REASON.into()),
        message: Some(UNKNOWN_MESSAGE.into()),
        last_transition_time: Some(now.clone()),
        last_heartbeat_time: current.and_then(|c| c.last_heartbeat_time.clone()),
    })
}

/// Seconds after the NoExecute taint `taint` was added at which `pod` must
/// be evicted: `None` when a toleration lets it stay for ever. A pod without
/// a matching toleration gets `default_seconds` (what Kubernetes' admission
/// adds for the not-ready and unreachable taints).
pub fn eviction_after(pod: &Pod, taint: &Taint, default_seconds: i64) -> Option<i64> {
    let tolerations: &[Toleration] = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    let matching = tolerations.iter().find(|t| tolerates(t, taint));
    match matching {
        Some(t) => t.toleration_seconds.map(|s| s.max(0)),
        None => Some(default_seconds.max(0)),
    }
}

/// Whether a toleration matches a taint (key, value by operator, effect).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect_ok = toleration
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = toleration.key.as_deref().unwrap_or_default();
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    let key_ok = key.is_empty() && operator == "Exists" || key == taint.key;
    let value_ok = match operator {
        "Exists" => true,
        _ => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
    };
    effect_ok && key_ok && value_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        serde_json::from_value(serde_json::json!("2025-01-01T00:00:00Z"))
            .unwrap_or_else(|e| panic!("time: {e}"))
    }

    fn user_taint() -> Taint {
        Taint {
            key: "dedicated".into(),
            effect: "NoSchedule".into(),
            value: Some("gpu".into()),
            time_added: None,
        }
    }

    #[test]
    fn unreachable_adds_both_effects_and_keeps_user_taints() {
        let Some(next) = desired_taints(&[user_taint()], Health::Unreachable, &now()) else {
            panic!("a change");
        };
        assert_eq!(next.len(), 3);
        assert_eq!(next[0], user_taint());
        assert!(
            next.iter()
                .any(|t| t.key == UNREACHABLE && t.effect == "NoSchedule")
        );
        assert!(
            next.iter()
                .any(|t| t.key == UNREACHABLE && t.effect == "NoExecute" && t.time_added.is_some())
        );
        // Applying again changes nothing.
        assert_eq!(desired_taints(&next, Health::Unreachable, &now()), None);
        // Recovered: only the user's taint stays.
        assert_eq!(
            desired_taints(&next, Health::Ready, &now()),
            Some(vec![user_taint()])
        );
        // Not ready replaces unreachable.
        let Some(nr) = desired_taints(&next, Health::NotReady, &now()) else {
            panic!("a change");
        };
        assert!(nr.iter().all(|t| t.key != UNREACHABLE));
        assert_eq!(nr.iter().filter(|t| t.key == NOT_READY).count(), 2);
    }

    #[test]
    fn ready_becomes_unknown_once() {
        let ready = NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..NodeCondition::default()
        };
        let Some(unknown) = unknown_ready(Some(&ready), &now()) else {
            panic!("a change");
        };
        assert_eq!(unknown.status, "Unknown");
        assert_eq!(unknown.message.as_deref(), Some(UNKNOWN_MESSAGE));
        assert_eq!(unknown_ready(Some(&unknown), &now()), None);
    }

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c"}], "tolerations": tolerations}}))
        .unwrap_or_else(|e| panic!("pod: {e}"))
    }

    #[test]
    fn eviction_honours_tolerations() {
        let taint = Taint {
            key: UNREACHABLE.into(),
            effect: "NoExecute".into(),
            value: None,
            time_added: Some(now()),
        };
        assert_eq!(
            eviction_after(&pod(serde_json::json!([])), &taint, 300),
            Some(300)
        );
        let bounded = pod(
            serde_json::json!([{"key": UNREACHABLE, "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 5}]),
        );
        assert_eq!(eviction_after(&bounded, &taint, 300), Some(5));
        let forever = pod(serde_json::json!([{"operator": "Exists"}]));
        assert_eq!(eviction_after(&forever, &taint, 300), None);
        let other = pod(serde_json::json!([{"key": NOT_READY, "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 1}]));
        assert_eq!(eviction_after(&other, &taint, 7), Some(7));
        let wrong_effect = pod(
            serde_json::json!([{"key": UNREACHABLE, "operator": "Exists",
            "effect": "NoSchedule"}]),
        );
        assert_eq!(eviction_after(&wrong_effect, &taint, 9), Some(9));
    }
}
