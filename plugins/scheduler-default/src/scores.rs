//! Score plugins.

use k8s_openapi::api::core::v1::Pod;

use crate::cache::{NodeInfo, controller_uid};
use crate::framework::{CycleState, MAX_SCORE, ScorePlugin};
use crate::labels::matches_node_term;

/// Every score plugin.
pub fn default_scores() -> Vec<Box<dyn ScorePlugin>> {
    vec![
        Box::new(LeastAllocated),
        Box::new(BalancedAllocation),
        Box::new(NodeAffinityPreferred),
        Box::new(InterPodAffinityPreferred),
        Box::new(Spreading),
    ]
}

/// Requests used for scoring: pods without requests count as 100m / 200Mi,
/// as in Kubernetes, so empty pods still spread.
fn scoring_requests(state: &CycleState) -> (i64, i64) {
    let cpu = if state.requests.milli_cpu == 0 {
        100
    } else {
        state.requests.milli_cpu
    };
    let mem = if state.requests.memory == 0 {
        200 << 20
    } else {
        state.requests.memory
    };
    (cpu, mem)
}

fn fractions(state: &CycleState, node: &NodeInfo) -> (f64, f64) {
    let (cpu, mem) = scoring_requests(state);
    let frac = |used: i64, alloc: i64| {
        if alloc <= 0 {
            1.0
        } else {
            ((used as f64) / (alloc as f64)).min(1.0)
        }
    };
    (
        frac(node.requested.milli_cpu + cpu, node.allocatable.milli_cpu),
        frac(node.requested.memory + mem, node.allocatable.memory),
    )
}

/// Prefers nodes with more room left.
pub struct LeastAllocated;
impl ScorePlugin for LeastAllocated {
    fn name(&self) -> &'static str {
        "NodeResourcesLeastAllocated"
    }
    fn score(&self, state: &CycleState, _: &Pod, node: &NodeInfo) -> i64 {
        let (cpu, mem) = fractions(state, node);
        (((1.0 - cpu) + (1.0 - mem)) / 2.0 * MAX_SCORE as f64) as i64
    }
}

/// Prefers nodes whose CPU and memory use stay alike.
pub struct BalancedAllocation;
impl ScorePlugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        "NodeResourcesBalancedAllocation"
    }
    fn score(&self, state: &CycleState, _: &Pod, node: &NodeInfo) -> i64 {
        let (cpu, mem) = fractions(state, node);
        let std_dev = (cpu - mem).abs() / 2.0;
        ((1.0 - std_dev) * MAX_SCORE as f64) as i64
    }
}

/// Scales scores so the best is [`MAX_SCORE`] (`reverse`: the lowest raw
/// score becomes the best).
fn normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    let min = scores.iter().copied().min().unwrap_or(0);
    if max == min {
        scores.iter_mut().for_each(|s| {
            // All equal: every node is as good (reverse) or as good as its raw score says.
            *s = if reverse || max > 0 { MAX_SCORE } else { 0 }
        });
        return;
    }
    for s in scores.iter_mut() {
        let scaled = (*s - min) * MAX_SCORE / (max - min);
        *s = if reverse { MAX_SCORE - scaled } else { scaled };
    }
}

/// Preferred node affinity: the sum of matching terms' weights.
pub struct NodeAffinityPreferred;
impl ScorePlugin for NodeAffinityPreferred {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }
    fn weight(&self) -> i64 {
        2
    }
    fn score(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> i64 {
        pod.spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|t| matches_node_term(&t.preference, &node.labels, &node.name))
            .map(|t| i64::from(t.weight))
            .sum()
    }
    fn normalize(&self, scores: &mut [i64]) {
        normalize(scores, false);
    }
}

/// Preferred pod affinity (plus) and anti-affinity (minus) per domain.
pub struct InterPodAffinityPreferred;
impl ScorePlugin for InterPodAffinityPreferred {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }
    fn weight(&self) -> i64 {
        2
    }
    fn score(&self, state: &CycleState, _: &Pod, node: &NodeInfo) -> i64 {
        if state.preferred_affinity.is_empty() {
            return 0;
        }
        node.labels
            .iter()
            .filter_map(|(k, v)| state.preferred_affinity.get(&(k.clone(), v.clone())))
            .sum()
    }
    fn normalize(&self, scores: &mut [i64]) {
        normalize(scores, false);
    }
}

/// Fewer pods of the same controller, and of soft spread constraints' domains.
pub struct Spreading;
impl ScorePlugin for Spreading {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }
    fn weight(&self) -> i64 {
        2
    }
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> i64 {
        let same_owner = controller_uid(pod)
            .and_then(|uid| node.owner_counts.get(uid))
            .copied()
            .unwrap_or(0);
        let soft: i64 = state
            .soft_spread
            .iter()
            .filter_map(|(c, counts)| {
                node.labels
                    .get(&c.topology_key)
                    .map(|v| counts.per_value.get(v).copied().unwrap_or(0))
            })
            .sum();
        same_owner + soft
    }
    fn normalize(&self, scores: &mut [i64]) {
        normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::cache::tests::{node, pod};
    use std::sync::Arc;

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let mut cache = Cache::default();
        cache.upsert_node(node("busy", "4", "8Gi", &[]));
        cache.upsert_node(node("idle", "4", "8Gi", &[]));
        cache.update_pod(Arc::new(pod("x", "3", &[], Some("busy"))));
        let p = pod("p", "500m", &[], None);
        let state = CycleState::prepare(&p, &cache);
        let busy = LeastAllocated.score(&state, &p, &cache.nodes["busy"]);
        let idle = LeastAllocated.score(&state, &p, &cache.nodes["idle"]);
        assert!(idle > busy, "{idle} > {busy}");
    }

    #[test]
    fn balanced_allocation_is_full_when_even() {
        let mut cache = Cache::default();
        cache.upsert_node(node("n", "4", "8Gi", &[]));
        let p = pod("p", "0", &[], None);
        let state = CycleState::prepare(&p, &cache);
        let s = BalancedAllocation.score(&state, &p, &cache.nodes["n"]);
        assert!(s > 90, "{s}");
    }

    #[test]
    fn normalize_scales_and_reverses() {
        let mut s = vec![0, 5, 10];
        normalize(&mut s, false);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 5, 10];
        normalize(&mut s, true);
        assert_eq!(s, vec![100, 50, 0]);
    }
}
