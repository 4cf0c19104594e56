//! One scheduling decision: filter nodes (in parallel), score the feasible
//! ones, pick the best; and the "0/N nodes are available" diagnosis.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Pod;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, FilterPlugin, ScorePlugin, Verdict, par_map};

/// The filters and scores, and where the last search stopped.
pub struct Framework {
    /// Filter plugins.
    pub filters: Vec<Box<dyn FilterPlugin>>,
    /// Score plugins.
    pub scores: Vec<Box<dyn ScorePlugin>>,
    /// Round-robin start of the next node search.
    next_start: AtomicUsize,
}

/// Why no node fits: per node, the first failing filter's verdict.
#[derive(Debug, Default)]
pub struct Diagnosis {
    /// Total nodes considered.
    pub nodes: usize,
    /// Node name → verdict.
    pub failures: Vec<(String, Verdict)>,
}

impl Diagnosis {
    /// Kubernetes' message: `0/3 nodes are available: 1 Insufficient cpu,
    /// 2 node(s) didn't match Pod's node affinity/selector.`
    pub fn message(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, v) in &self.failures {
            if let Some(r) = v.reason() {
                *counts.entry(r).or_insert(0) += 1;
            }
        }
        let reasons: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
        if reasons.is_empty() {
            format!("0/{} nodes are available.", self.nodes)
        } else {
            format!(
                "0/{} nodes are available: {}.",
                self.nodes,
                reasons.join(", ")
            )
        }
    }
}

/// Where to put a pod.
pub enum Decision {
    /// On this node.
    Node(String),
    /// Nowhere now.
    Unschedulable(Diagnosis),
}

/// How many feasible nodes to find before scoring (Kubernetes'
/// adaptive percentageOfNodesToScore: 50% minus 1% per 125 nodes, at least
/// 5%, at least 100 nodes).
pub fn nodes_to_find(total: usize) -> usize {
    if total <= 100 {
        return total;
    }
    let percent = 50usize.saturating_sub(total / 125).max(5);
    (total * percent / 100).max(100)
}

impl Default for Framework {
    fn default() -> Self {
        Self {
            filters: crate::filters::default_filters(),
            scores: crate::scores::default_scores(),
            next_start: AtomicUsize::new(0),
        }
    }
}

impl Framework {
    /// Runs every filter on one node; the first failure decides.
    pub fn run_filters(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Verdict {
        if node.node.is_none() {
            return Verdict::Unresolvable("node(s) not found".into());
        }
        for f in &self.filters {
            let v = f.filter(state, pod, node);
            if v != Verdict::Fits {
                return v;
            }
        }
        Verdict::Fits
    }

    /// Chooses a node for `pod`.
    pub fn schedule(&self, pod: &Pod, cache: &Cache) -> Decision {
        let state = CycleState::prepare(pod, cache);
        let nodes: Vec<&NodeInfo> = cache
            .order
            .iter()
            .filter_map(|n| cache.nodes.get(n))
            .filter(|n| n.node.is_some())
            .collect();
        let total = nodes.len();
        if total == 0 {
            return Decision::Unschedulable(Diagnosis::default());
        }
        let want = nodes_to_find(total);
        let start = self.next_start.load(Ordering::Relaxed) % total;
        let mut feasible: Vec<&NodeInfo> = Vec::new();
        let mut diagnosis = Diagnosis {
            nodes: total,
            failures: Vec::new(),
        };
        // Search in batches from the rotating start until enough fit.
        let batch = want.max(256);
        let mut examined = 0;
        while examined < total && feasible.len() < want {
            let count = batch.min(total - examined);
            let chunk: Vec<&NodeInfo> = (examined..examined + count)
                .map(|i| nodes[(start + i) % total])
                .collect();
            let verdicts = par_map(&chunk, |n| self.run_filters(&state, pod, n));
            for (node, verdict) in chunk.into_iter().zip(verdicts) {
                if verdict == Verdict::Fits {
                    feasible.push(node);
                } else {
                    diagnosis.failures.push((node.name.clone(), verdict));
                }
            }
            examined += count;
        }
        self.next_start
            .store((start + examined) % total, Ordering::Relaxed);
        if feasible.is_empty() {
            return Decision::Unschedulable(diagnosis);
        }
        if feasible.len() == 1 {
            return Decision::Node(feasible[0].name.clone());
        }
        let mut totals = vec![0i64; feasible.len()];
        for plugin in &self.scores {
            let mut scores = par_map(&feasible, |n| plugin.score(&state, pod, n));
            plugin.normalize(&mut scores);
            for (t, s) in totals.iter_mut().zip(scores) {
                *t += s * plugin.weight();
            }
        }
        // The first best in search order (which rotates) breaks ties.
        let best = totals
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(&a.0)))
            .map_or(0, |(i, _)| i);
        Decision::Node(feasible[best].name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::{node, pod};
    use std::sync::Arc;

    #[test]
    fn diagnosis_message_counts_reasons_like_kubernetes() {
        let d = Diagnosis {
            nodes: 3,
            failures: vec![
                (
                    "a".into(),
                    Verdict::Unschedulable("Insufficient cpu".into()),
                ),
                (
                    "b".into(),
                    Verdict::Unresolvable(
                        "node(s) didn't match Pod's node affinity/selector".into(),
                    ),
                ),
                (
                    "c".into(),
                    Verdict::Unresolvable(
                        "node(s) didn't match Pod's node affinity/selector".into(),
                    ),
                ),
            ],
        };
        assert_eq!(
            d.message(),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
        );
    }

    #[test]
    fn adaptive_search_size() {
        assert_eq!(nodes_to_find(50), 50);
        assert_eq!(nodes_to_find(5000), 500);
        assert_eq!(nodes_to_find(200), 100);
    }

    #[test]
    fn picks_a_fitting_node_and_explains_when_none() {
        let mut cache = Cache::default();
        cache.upsert_node(node("small", "1", "1Gi", &[]));
        cache.upsert_node(node("big", "8", "16Gi", &[]));
        let fw = Framework::default();
        match fw.schedule(&pod("p", "2", &[], None), &cache) {
            Decision::Node(n) => assert_eq!(n, "big"),
            Decision::Unschedulable(d) => panic!("{}", d.message()),
        }
        match fw.schedule(&pod("huge", "64", &[], None), &cache) {
            Decision::Node(n) => panic!("huge pod placed on {n}"),
            Decision::Unschedulable(d) => {
                assert_eq!(d.message(), "0/2 nodes are available: 2 Insufficient cpu.")
            }
        }
        cache.assume(Arc::new(pod("a", "7", &[], None)), "big");
        assert!(matches!(
            fw.schedule(&pod("p2", "2", &[], None), &cache),
            Decision::Unschedulable(_)
        ));
    }
}
