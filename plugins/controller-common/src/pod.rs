//! Pod readiness and availability as the workload controllers count them.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Not terminated and not being deleted: counts toward a ReplicaSet's replicas.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// The pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the pod became ready (the Ready condition's last transition; the
/// epoch when the condition has no time), or `None` when not ready.
fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_deref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(
        cond.last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(Timestamp::UNIX_EPOCH),
    )
}

/// The instant `min_ready_seconds` after `since`.
fn after(since: Timestamp, min_ready_seconds: i32) -> Timestamp {
    since
        .checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
        .unwrap_or(Timestamp::MAX)
}

/// Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) => after(since, min_ready_seconds) <= now,
    }
}

/// How long until a ready pod becomes available, if it is not yet.
pub fn until_available(
    pod: &Pod,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<std::time::Duration> {
    let at = after(ready_since(pod)?, min_ready_seconds);
    (at > now).then(|| std::time::Duration::try_from(at.duration_since(now)).unwrap_or_default())
}

/// The current time as the API's timestamp type, in whole seconds like the
/// timestamps the API stores (so a re-read status compares equal).
pub fn now() -> Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(0);
    Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH)
}
