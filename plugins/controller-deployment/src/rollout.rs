//! The arithmetic of a rolling update, as pure functions over replica counts.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `maxSurge`/`maxUnavailable` as pod counts: a percentage of `total`,
/// surge rounded up and unavailability rounded down (as Kubernetes).
pub fn resolve(value: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    let value = value.cloned().unwrap_or(IntOrString::String("25%".into()));
    match value {
        IntOrString::Int(n) => n.max(0),
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let scaled = pct.max(0) * i64::from(total.max(0));
            let n = if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            };
            i32::try_from(n).unwrap_or(i32::MAX)
        }
    }
}

/// `(maxSurge, maxUnavailable)` of a RollingUpdate deployment; both zero
/// would make no progress, so unavailability is then 1.
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let spec = d.spec.as_ref();
    let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
    let ru = spec
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let surge = resolve(ru.and_then(|r| r.max_surge.as_ref()), replicas, true);
    let unavailable = resolve(ru.and_then(|r| r.max_unavailable.as_ref()), replicas, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable.min(replicas))
    }
}

/// The new ReplicaSet's next size: grow toward `desired` without the pods of
/// all ReplicaSets (`current_total`) exceeding `desired + max_surge`.
pub fn new_rs_target(desired: i32, new_rs: i32, current_total: i32, max_surge: i32) -> i32 {
    if new_rs >= desired {
        return desired;
    }
    let room = (desired + max_surge - current_total).max(0);
    new_rs + room.min(desired - new_rs)
}

/// How many old pods may go now so that at least `desired - max_unavailable`
/// stay available: `available_total` counts available pods of all ReplicaSets.
pub fn old_scale_down_budget(desired: i32, max_unavailable: i32, available_total: i32) -> i32 {
    (available_total - (desired - max_unavailable)).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_like_kubernetes() {
        let pct = IntOrString::String("25%".into());
        assert_eq!(resolve(Some(&pct), 5, true), 2);
        assert_eq!(resolve(Some(&pct), 5, false), 1);
        assert_eq!(resolve(Some(&pct), 4, true), 1);
        assert_eq!(resolve(Some(&IntOrString::Int(3)), 5, true), 3);
        assert_eq!(resolve(None, 10, true), 3);
        assert_eq!(resolve(None, 10, false), 2);
    }

    #[test]
    fn surge_caps_the_new_replicaset() {
        // 4 desired, surge 1: old 4 + new 0 → new may grow to 1.
        assert_eq!(new_rs_target(4, 0, 4, 1), 1);
        // Already at 5 pods: no room.
        assert_eq!(new_rs_target(4, 1, 5, 1), 1);
        // Plenty of room, but never past desired.
        assert_eq!(new_rs_target(4, 2, 2, 10), 4);
        // Scaling down a new ReplicaSet that is too big.
        assert_eq!(new_rs_target(3, 5, 5, 1), 3);
    }

    #[test]
    fn unavailability_caps_old_scale_down() {
        assert_eq!(old_scale_down_budget(4, 1, 5), 2);
        assert_eq!(old_scale_down_budget(4, 1, 3), 0);
        assert_eq!(old_scale_down_budget(4, 0, 4), 0);
    }
}
