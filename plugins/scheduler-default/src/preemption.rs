//! Preemption: when no node fits, find the node where evicting the fewest,
//! lowest-priority pods makes the pod fit.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::algorithm::{Diagnosis, Framework};
use crate::cache::{Cache, NodeInfo, pod_key};
use crate::framework::{CycleState, Verdict};
use crate::resources::pod_priority;

/// The chosen node and the pods to evict there.
#[derive(Debug)]
pub struct Preemption {
    /// Where the pod will go once the victims are gone.
    pub node: String,
    /// The pods to delete (empty: pods already terminating there make room).
    pub victims: Vec<Arc<Pod>>,
}

/// Whether `pod` may preempt at all.
pub fn may_preempt(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.preemption_policy.as_deref())
        != Some("Never")
}

/// Victims on one node, fewest and lowest first; `None` if evicting every
/// lower-priority pod still does not make room.
fn victims_on(
    fw: &Framework,
    state: &CycleState,
    pod: &Pod,
    node: &NodeInfo,
) -> Option<Vec<Arc<Pod>>> {
    let priority = pod_priority(pod);
    let mut trial = node.clone();
    // Pods already terminating will leave anyway.
    let terminating: Vec<String> = trial
        .pods
        .iter()
        .filter(|(_, p)| p.pod.metadata.deletion_timestamp.is_some())
        .map(|(k, _)| k.clone())
        .collect();
    for key in &terminating {
        trial.remove_pod(key);
    }
    if fw.run_filters(state, pod, &trial) == Verdict::Fits {
        return Some(Vec::new());
    }
    let mut lower: Vec<Arc<Pod>> = trial
        .pods
        .values()
        .filter(|p| pod_priority(&p.pod) < priority)
        .map(|p| p.pod.clone())
        .collect();
    for p in &lower {
        trial.remove_pod(&pod_key(p));
    }
    if fw.run_filters(state, pod, &trial) != Verdict::Fits {
        return None;
    }
    // Reprieve the most important pods first, as long as the pod still fits.
    lower.sort_by_key(|p| std::cmp::Reverse(pod_priority(p)));
    let mut victims = Vec::new();
    for p in lower {
        trial.add_pod(p.clone(), false);
        if fw.run_filters(state, pod, &trial) != Verdict::Fits {
            trial.remove_pod(&pod_key(&p));
            victims.push(p);
        }
    }
    Some(victims)
}

/// Picks a node to preempt on, among those whose failure evicting pods
/// could resolve.
pub fn find(fw: &Framework, pod: &Pod, cache: &Cache, diagnosis: &Diagnosis) -> Option<Preemption> {
    if !may_preempt(pod) {
        return None;
    }
    let state = CycleState::prepare(pod, cache);
    let mut best: Option<(i32, usize, Preemption)> = None;
    for (name, verdict) in &diagnosis.failures {
        if !matches!(verdict, Verdict::Unschedulable(_)) {
            continue;
        }
        let Some(node) = cache.nodes.get(name) else {
            continue;
        };
        let Some(victims) = victims_on(fw, &state, pod, node) else {
            continue;
        };
        let top = victims
            .iter()
            .map(|v| pod_priority(v))
            .max()
            .unwrap_or(i32::MIN);
        let better = best
            .as_ref()
            .is_none_or(|(p, n, _)| (top, victims.len()) < (*p, *n));
        if better {
            best = Some((
                top,
                victims.len(),
                Preemption {
                    node: name.clone(),
                    victims,
                },
            ));
        }
    }
    best.map(|(_, _, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::algorithm::Decision;
    use crate::cache::tests::{node, pod};

    fn with_priority(mut p: Pod, priority: i32) -> Pod {
        if let Some(s) = p.spec.as_mut() {
            s.priority = Some(priority);
        }
        p
    }

    #[test]
    fn evicts_the_fewest_lowest_priority_pods() {
        let mut cache = Cache::default();
        cache.upsert_node(node("n1", "2", "4Gi", &[]));
        cache.upsert_node(node("n2", "2", "4Gi", &[]));
        // n1: two small low pods; n2: one big low pod.
        cache.update_pod(Arc::new(with_priority(pod("a", "1", &[], Some("n1")), 1)));
        cache.update_pod(Arc::new(with_priority(pod("b", "1", &[], Some("n1")), 1)));
        cache.update_pod(Arc::new(with_priority(pod("c", "2", &[], Some("n2")), 1)));
        let fw = Framework::default();
        let high = with_priority(pod("high", "2", &[], None), 100);
        let Decision::Unschedulable(d) = fw.schedule(&high, &cache) else {
            panic!("cluster is full");
        };
        let Some(p) = find(&fw, &high, &cache, &d) else {
            panic!("preemption possible")
        };
        assert_eq!(p.node, "n2");
        assert_eq!(p.victims.len(), 1);
    }

    #[test]
    fn equal_priority_is_never_evicted() {
        let mut cache = Cache::default();
        cache.upsert_node(node("n1", "1", "4Gi", &[]));
        cache.update_pod(Arc::new(with_priority(pod("a", "1", &[], Some("n1")), 5)));
        let fw = Framework::default();
        let p = with_priority(pod("p", "1", &[], None), 5);
        let Decision::Unschedulable(d) = fw.schedule(&p, &cache) else {
            panic!("full")
        };
        assert!(find(&fw, &p, &cache, &d).is_none());
    }
}
