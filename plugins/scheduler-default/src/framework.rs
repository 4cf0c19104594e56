//! The plugin interfaces and the per-pod state computed once per
//! scheduling cycle (cluster-wide counts for affinity and spreading).

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Pod, PodAffinityTerm, TopologySpreadConstraint};

use crate::cache::{Cache, NodeInfo};
use crate::labels::{Labels, matches_node_term, matches_selector};
use crate::resources::{Resources, pod_requests};

/// Scores are between 0 and this.
pub const MAX_SCORE: i64 = 100;

/// What a filter says about a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The pod may run there.
    Fits,
    /// It may not; evicting pods could change that (the reason is shown to users).
    Unschedulable(String),
    /// It may not, and preemption cannot help.
    Unresolvable(String),
}

impl Verdict {
    /// The reason, if it does not fit.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Fits => None,
            Verdict::Unschedulable(r) | Verdict::Unresolvable(r) => Some(r),
        }
    }
}

/// A filter plugin: can the pod run on this node?
pub trait FilterPlugin: Send + Sync {
    /// The plugin's name.
    fn name(&self) -> &'static str;
    /// Judges one node.
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Verdict;
}

/// A score plugin: how good is this node for the pod?
pub trait ScorePlugin: Send + Sync {
    /// The plugin's name.
    fn name(&self) -> &'static str;
    /// Its weight in the sum.
    fn weight(&self) -> i64 {
        1
    }
    /// A raw score of one node.
    fn score(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> i64;
    /// Rescales the raw scores of all feasible nodes to 0..=[`MAX_SCORE`].
    fn normalize(&self, _scores: &mut [i64]) {}
}

/// A topology domain: a label key and value.
pub type Domain = (String, String);

/// Counts for one topology spread constraint.
#[derive(Debug, Default)]
pub struct SpreadCounts {
    /// Matching pods per value of the constraint's key, over eligible nodes.
    pub per_value: HashMap<String, i64>,
    /// The smallest count over all domains.
    pub min: i64,
    /// Whether the incoming pod matches its own selector (it counts itself).
    pub self_match: i64,
}

/// What is computed once per pod per cycle.
#[derive(Debug, Default)]
pub struct CycleState {
    /// The pod's requests.
    pub requests: Resources,
    /// Per required pod-affinity term: domains holding a matching pod.
    pub affinity_domains: Vec<HashSet<Domain>>,
    /// Whether any pod matches each required affinity term (a pod that matches
    /// its own term may go first anywhere).
    pub affinity_any_match: Vec<bool>,
    /// Per required anti-affinity term: domains holding a matching pod.
    pub anti_affinity_domains: Vec<HashSet<Domain>>,
    /// Domains where an existing pod's required anti-affinity rejects this pod.
    pub existing_anti_affinity: HashSet<Domain>,
    /// Preferred (anti-)affinity weight per domain.
    pub preferred_affinity: HashMap<Domain, i64>,
    /// Per hard (DoNotSchedule) spread constraint.
    pub hard_spread: Vec<(TopologySpreadConstraint, SpreadCounts)>,
    /// Per soft (ScheduleAnyway) spread constraint.
    pub soft_spread: Vec<(TopologySpreadConstraint, SpreadCounts)>,
}

fn term_matches(term: &PodAffinityTerm, owner_ns: &str, other: &Pod) -> bool {
    let other_ns = other.metadata.namespace.as_deref().unwrap_or("");
    let namespaces = term.namespaces.as_deref().unwrap_or(&[]);
    let ns_ok = if namespaces.is_empty() && term.namespace_selector.is_none() {
        other_ns == owner_ns
    } else {
        namespaces.iter().any(|n| n == other_ns) || term.namespace_selector.is_some()
    };
    let labels = other.metadata.labels.clone().unwrap_or_default();
    ns_ok
        && term
            .label_selector
            .as_ref()
            .is_some_and(|s| matches_selector(s, &labels))
}

fn domain_of(node: &NodeInfo, key: &str) -> Option<Domain> {
    node.labels.get(key).map(|v| (key.to_owned(), v.clone()))
}

/// Whether `node` passes the pod's nodeSelector and required node affinity.
pub fn node_matches_pod_selectors(pod: &Pod, labels: &Labels, name: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let affinity_ok = required.is_none_or(|r| {
        r.node_selector_terms
            .iter()
            .any(|t| matches_node_term(t, labels, name))
    });
    selector_ok && affinity_ok
}

fn spread_counts(pod: &Pod, c: &TopologySpreadConstraint, cache: &Cache) -> SpreadCounts {
    let mut counts = SpreadCounts::default();
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let own_labels = pod.metadata.labels.clone().unwrap_or_default();
    let matches = |p: &Pod| {
        p.metadata.namespace.as_deref().unwrap_or("") == ns
            && p.metadata.deletion_timestamp.is_none()
            && c.label_selector.as_ref().is_some_and(|s| {
                matches_selector(s, &p.metadata.labels.clone().unwrap_or_default())
            })
    };
    for node in cache.nodes.values() {
        if node.node.is_none() || !node_matches_pod_selectors(pod, &node.labels, &node.name) {
            continue;
        }
        let Some(value) = node.labels.get(&c.topology_key) else {
            continue;
        };
        let n = node.pods.values().filter(|p| matches(&p.pod)).count() as i64;
        *counts.per_value.entry(value.clone()).or_insert(0) += n;
    }
    counts.min = counts.per_value.values().copied().min().unwrap_or(0);
    counts.self_match = i64::from(
        c.label_selector
            .as_ref()
            .is_some_and(|s| matches_selector(s, &own_labels)),
    );
    counts
}

impl CycleState {
    /// Computes the state of `pod` against the cluster in `cache`.
    pub fn prepare(pod: &Pod, cache: &Cache) -> Self {
        let mut state = CycleState {
            requests: pod_requests(pod),
            ..CycleState::default()
        };
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let spec = pod.spec.as_ref();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pod_affinity = affinity.and_then(|a| a.pod_affinity.as_ref());
        let pod_anti = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let required_affinity = pod_affinity
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .clone()
            })
            .unwrap_or_default();
        let required_anti = pod_anti
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .clone()
            })
            .unwrap_or_default();
        let preferred_affinity = pod_affinity
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .clone()
            })
            .unwrap_or_default();
        let preferred_anti = pod_anti
            .and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .clone()
            })
            .unwrap_or_default();
        state.affinity_domains = vec![HashSet::new(); required_affinity.len()];
        state.affinity_any_match = vec![false; required_affinity.len()];
        state.anti_affinity_domains = vec![HashSet::new(); required_anti.len()];
        let own_labels = pod.metadata.labels.clone().unwrap_or_default();
        for (node, info) in cache.all_pods() {
            let other = &info.pod;
            if other.metadata.deletion_timestamp.is_some() {
                continue;
            }
            for (i, term) in required_affinity.iter().enumerate() {
                if term_matches(term, ns, other) {
                    state.affinity_any_match[i] = true;
                    if let Some(d) = domain_of(node, &term.topology_key) {
                        state.affinity_domains[i].insert(d);
                    }
                }
            }
            for (i, term) in required_anti.iter().enumerate() {
                if term_matches(term, ns, other)
                    && let Some(d) = domain_of(node, &term.topology_key)
                {
                    state.anti_affinity_domains[i].insert(d);
                }
            }
            for w in &preferred_affinity {
                if term_matches(&w.pod_affinity_term, ns, other)
                    && let Some(d) = domain_of(node, &w.pod_affinity_term.topology_key)
                {
                    *state.preferred_affinity.entry(d).or_insert(0) += i64::from(w.weight);
                }
            }
            for w in &preferred_anti {
                if term_matches(&w.pod_affinity_term, ns, other)
                    && let Some(d) = domain_of(node, &w.pod_affinity_term.topology_key)
                {
                    *state.preferred_affinity.entry(d).or_insert(0) -= i64::from(w.weight);
                }
            }
            // Symmetry: existing pods' required anti-affinity against us.
            let other_anti = other
                .spec
                .as_ref()
                .and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.pod_anti_affinity.as_ref())
                .and_then(|a| {
                    a.required_during_scheduling_ignored_during_execution
                        .as_ref()
                });
            for term in other_anti.into_iter().flatten() {
                let other_ns = other.metadata.namespace.as_deref().unwrap_or("");
                let probe = Pod {
                    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        namespace: Some(ns.to_owned()),
                        labels: Some(own_labels.clone()),
                        ..Default::default()
                    },
                    ..Pod::default()
                };
                if term_matches(term, other_ns, &probe)
                    && let Some(d) = domain_of(node, &term.topology_key)
                {
                    state.existing_anti_affinity.insert(d);
                }
            }
        }
        for c in spec
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .into_iter()
            .flatten()
        {
            let counts = spread_counts(pod, c, cache);
            if c.when_unsatisfiable == "DoNotSchedule" {
                state.hard_spread.push((c.clone(), counts));
            } else {
                state.soft_spread.push((c.clone(), counts));
            }
        }
        state
    }
}

/// Runs `f` over `items`, split across threads when there are many.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    const PARALLEL_ABOVE: usize = 256;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if items.len() <= PARALLEL_ABOVE || threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(part) => part,
                // A panicking plugin is a bug: surface it, don't misalign results.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}
