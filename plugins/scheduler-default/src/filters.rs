//! Filter plugins, with Kubernetes' reason strings.

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};

use crate::cache::NodeInfo;
use crate::framework::{CycleState, FilterPlugin, Verdict, node_matches_pod_selectors};

/// Every filter, in the order they run.
pub fn default_filters() -> Vec<Box<dyn FilterPlugin>> {
    vec![
        Box::new(NodeName),
        Box::new(NodeUnschedulable),
        Box::new(TaintToleration),
        Box::new(NodeAffinity),
        Box::new(NodePorts),
        Box::new(NodeResourcesFit),
        Box::new(InterPodAffinity),
        Box::new(PodTopologySpread),
    ]
}

/// `spec.nodeName`, when a pod names its node but is not bound yet.
pub struct NodeName;
impl FilterPlugin for NodeName {
    fn name(&self) -> &'static str {
        "NodeName"
    }
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Verdict {
        match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            Some(n) if !n.is_empty() && n != node.name => {
                Verdict::Unresolvable("node(s) didn't match the requested node name".into())
            }
            _ => Verdict::Fits,
        }
    }
}

/// Cordoned nodes, unless the pod tolerates the unschedulable taint.
pub struct NodeUnschedulable;
impl FilterPlugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        "NodeUnschedulable"
    }
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Verdict {
        let cordoned = node
            .node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.unschedulable)
            .unwrap_or(false);
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        if cordoned && !tolerations(pod).iter().any(|t| tolerates(t, &taint)) {
            return Verdict::Unresolvable("node(s) were unschedulable".into());
        }
        Verdict::Fits
    }
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

/// Whether toleration `t` tolerates `taint`.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    let effect_ok = t
        .effect
        .as_deref()
        .is_none_or(|e| e.is_empty() || e == taint.effect);
    let key = t.key.as_deref().unwrap_or("");
    let key_ok = key.is_empty() || key == taint.key;
    let value_ok = match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    };
    // An empty key with Exists tolerates everything.
    effect_ok && key_ok && value_ok
}

/// NoSchedule and NoExecute taints the pod does not tolerate.
pub struct TaintToleration;
impl FilterPlugin for TaintToleration {
    fn name(&self) -> &'static str {
        "TaintToleration"
    }
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Verdict {
        let taints = node
            .node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[]);
        let tols = tolerations(pod);
        for taint in taints {
            if taint.effect == "PreferNoSchedule" {
                continue;
            }
            if !tols.iter().any(|t| tolerates(t, taint)) {
                let shown = match taint.value.as_deref() {
                    Some(v) if !v.is_empty() => format!("{{{}: {v}}}", taint.key),
                    _ => format!("{{{}: }}", taint.key),
                };
                return Verdict::Unresolvable(format!("node(s) had untolerated taint {shown}"));
            }
        }
        Verdict::Fits
    }
}

/// `nodeSelector` and required node affinity.
pub struct NodeAffinity;
impl FilterPlugin for NodeAffinity {
    fn name(&self) -> &'static str {
        "NodeAffinity"
    }
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Verdict {
        if node_matches_pod_selectors(pod, &node.labels, &node.name) {
            Verdict::Fits
        } else {
            Verdict::Unresolvable("node(s) didn't match Pod's node affinity/selector".into())
        }
    }
}

fn host_ports(pod: &Pod) -> Vec<(String, i32, String)> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let host_port = p.host_port.filter(|hp| *hp > 0)?;
            Some((
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                host_port,
                p.host_ip.clone().unwrap_or_default(),
            ))
        })
        .collect()
}

fn ports_conflict(a: &(String, i32, String), b: &(String, i32, String)) -> bool {
    let wildcard = |ip: &str| ip.is_empty() || ip == "0.0.0.0";
    a.0 == b.0 && a.1 == b.1 && (wildcard(&a.2) || wildcard(&b.2) || a.2 == b.2)
}

/// Host ports already taken on the node.
pub struct NodePorts;
impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }
    fn filter(&self, _: &CycleState, pod: &Pod, node: &NodeInfo) -> Verdict {
        let wanted = host_ports(pod);
        if wanted.is_empty() {
            return Verdict::Fits;
        }
        let conflict = node.pods.values().any(|p| {
            host_ports(&p.pod)
                .iter()
                .any(|used| wanted.iter().any(|w| ports_conflict(w, used)))
        });
        if conflict {
            Verdict::Unschedulable(
                "node(s) didn't have free ports for the requested pod ports".into(),
            )
        } else {
            Verdict::Fits
        }
    }
}

/// Requests against allocatable minus what the node's pods request.
pub struct NodeResourcesFit;
impl FilterPlugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        "NodeResourcesFit"
    }
    fn filter(&self, state: &CycleState, _: &Pod, node: &NodeInfo) -> Verdict {
        let (req, used, alloc) = (&state.requests, &node.requested, &node.allocatable);
        let mut missing = Vec::new();
        if used.pods + 1 > alloc.pods {
            return Verdict::Unschedulable("Too many pods".into());
        }
        if req.milli_cpu > 0 && used.milli_cpu + req.milli_cpu > alloc.milli_cpu {
            missing.push("cpu".to_owned());
        }
        if req.memory > 0 && used.memory + req.memory > alloc.memory {
            missing.push("memory".to_owned());
        }
        if req.ephemeral_storage > 0
            && used.ephemeral_storage + req.ephemeral_storage > alloc.ephemeral_storage
        {
            missing.push("ephemeral-storage".to_owned());
        }
        for (name, amount) in &req.scalar {
            let have = alloc.scalar.get(name).copied().unwrap_or(0);
            let taken = used.scalar.get(name).copied().unwrap_or(0);
            if *amount > 0 && taken + amount > have {
                missing.push(name.clone());
            }
        }
        match missing.first() {
            None => Verdict::Fits,
            // One reason per filter, like Kubernetes' first insufficient resource.
            Some(first) => Verdict::Unschedulable(format!("Insufficient {first}")),
        }
    }
}

/// Required pod affinity and anti-affinity, both ways.
pub struct InterPodAffinity;
impl FilterPlugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        "InterPodAffinity"
    }
    fn filter(&self, state: &CycleState, pod: &Pod, node: &NodeInfo) -> Verdict {
        let in_domain = |key: &str, domains: &std::collections::HashSet<(String, String)>| {
            node.labels
                .get(key)
                .is_some_and(|v| domains.contains(&(key.to_owned(), v.clone())))
        };
        if node.labels.iter().any(|(k, v)| {
            state
                .existing_anti_affinity
                .contains(&(k.clone(), v.clone()))
        }) {
            return Verdict::Unschedulable(
                "node(s) didn't satisfy existing pods anti-affinity rules".into(),
            );
        }
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let anti_terms = affinity
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or(&[]);
        for (term, domains) in anti_terms.iter().zip(&state.anti_affinity_domains) {
            if in_domain(&term.topology_key, domains) {
                return Verdict::Unschedulable(
                    "node(s) didn't match pod anti-affinity rules".into(),
                );
            }
        }
        let terms = affinity
            .and_then(|a| a.pod_affinity.as_ref())
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_deref()
            })
            .unwrap_or(&[]);
        let nobody_matches = state.affinity_any_match.iter().all(|m| !m);
        let own = pod.metadata.labels.clone().unwrap_or_default();
        for (term, domains) in terms.iter().zip(&state.affinity_domains) {
            if in_domain(&term.topology_key, domains) {
                continue;
            }
            // The first pod of a group that matches its own affinity may go
            // anywhere with the topology key.
            let self_match = term
                .label_selector
                .as_ref()
                .is_some_and(|s| crate::labels::matches_selector(s, &own));
            if nobody_matches && self_match && node.labels.contains_key(&term.topology_key) {
                continue;
            }
            return Verdict::Unresolvable("node(s) didn't match pod affinity rules".into());
        }
        Verdict::Fits
    }
}

/// `whenUnsatisfiable: DoNotSchedule` spread constraints.
pub struct PodTopologySpread;
impl FilterPlugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        "PodTopologySpread"
    }
    fn filter(&self, state: &CycleState, _: &Pod, node: &NodeInfo) -> Verdict {
        for (c, counts) in &state.hard_spread {
            let Some(value) = node.labels.get(&c.topology_key) else {
                return Verdict::Unresolvable(
                    "node(s) didn't match pod topology spread constraints (missing required label)"
                        .into(),
                );
            };
            let here = counts.per_value.get(value).copied().unwrap_or(0);
            if here + counts.self_match - counts.min > i64::from(c.max_skew) {
                return Verdict::Unschedulable(
                    "node(s) didn't match pod topology spread constraints".into(),
                );
            }
        }
        Verdict::Fits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;
    use crate::cache::tests::{node, pod};
    use k8s_openapi::api::core::v1::{
        Affinity, ContainerPort, NodeAffinity as NodeAffinitySpec, NodeSelector,
        NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm, PodAntiAffinity,
        TopologySpreadConstraint,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn check(f: &dyn FilterPlugin, p: &Pod, cache: &Cache, node: &str) -> Verdict {
        let state = CycleState::prepare(p, cache);
        f.filter(&state, p, &cache.nodes[node])
    }

    fn cluster(nodes: &[(&str, &[(&str, &str)])]) -> Cache {
        let mut cache = Cache::default();
        for (name, labels) in nodes {
            cache.upsert_node(node(name, "4", "8Gi", labels));
        }
        cache
    }

    fn spec(p: &mut Pod) -> &mut k8s_openapi::api::core::v1::PodSpec {
        p.spec.get_or_insert_with(Default::default)
    }

    #[test]
    fn node_name_and_unschedulable() {
        let mut cache = cluster(&[("a", &[]), ("b", &[])]);
        let mut p = pod("p", "0", &[], None);
        spec(&mut p).node_name = Some("a".into());
        assert_eq!(check(&NodeName, &p, &cache, "a"), Verdict::Fits);
        assert!(matches!(
            check(&NodeName, &p, &cache, "b"),
            Verdict::Unresolvable(_)
        ));
        let mut cordoned = (*node("b", "4", "8Gi", &[])).clone();
        cordoned
            .spec
            .get_or_insert_with(Default::default)
            .unschedulable = Some(true);
        cache.upsert_node(Arc::new(cordoned));
        let p = pod("p", "0", &[], None);
        assert_eq!(
            check(&NodeUnschedulable, &p, &cache, "b").reason(),
            Some("node(s) were unschedulable")
        );
    }

    #[test]
    fn resources_fit_counts_assumed_pods_and_extended_resources() {
        let mut cache = cluster(&[("a", &[])]);
        let p = pod("p", "3", &[], None);
        assert_eq!(check(&NodeResourcesFit, &p, &cache, "a"), Verdict::Fits);
        cache.assume(Arc::new(pod("q", "2", &[], None)), "a");
        assert_eq!(
            check(&NodeResourcesFit, &p, &cache, "a").reason(),
            Some("Insufficient cpu")
        );
        let mut gpu = pod("g", "0", &[], None);
        if let Some(r) = spec(&mut gpu).containers[0].resources.as_mut() {
            r.requests.get_or_insert_with(BTreeMap::new).insert(
                "example.com/gpu".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("1".into()),
            );
        }
        assert_eq!(
            check(&NodeResourcesFit, &gpu, &cache, "a").reason(),
            Some("Insufficient example.com/gpu")
        );
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let cache = cluster(&[("ssd", &[("disk", "ssd")]), ("hdd", &[("disk", "hdd")])]);
        let mut p = pod("p", "0", &[], None);
        spec(&mut p).node_selector = Some(BTreeMap::from([("disk".into(), "ssd".into())]));
        assert_eq!(check(&NodeAffinity, &p, &cache, "ssd"), Verdict::Fits);
        assert!(matches!(
            check(&NodeAffinity, &p, &cache, "hdd"),
            Verdict::Unresolvable(_)
        ));
        let mut q = pod("q", "0", &[], None);
        spec(&mut q).affinity = Some(Affinity {
            node_affinity: Some(NodeAffinitySpec {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "disk".into(),
                            operator: "In".into(),
                            values: Some(vec!["hdd".into()]),
                        }]),
                        match_fields: None,
                    }],
                }),
                ..NodeAffinitySpec::default()
            }),
            ..Affinity::default()
        });
        assert_eq!(check(&NodeAffinity, &q, &cache, "hdd"), Verdict::Fits);
        assert!(matches!(
            check(&NodeAffinity, &q, &cache, "ssd"),
            Verdict::Unresolvable(_)
        ));
    }

    #[test]
    fn taints_need_tolerations() {
        let mut cache = Cache::default();
        let mut tainted = (*node("t", "4", "8Gi", &[])).clone();
        tainted.spec.get_or_insert_with(Default::default).taints = Some(vec![Taint {
            key: "dedicated".into(),
            value: Some("gpu".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        }]);
        cache.upsert_node(Arc::new(tainted));
        let mut p = pod("p", "0", &[], None);
        assert_eq!(
            check(&TaintToleration, &p, &cache, "t").reason(),
            Some("node(s) had untolerated taint {dedicated: gpu}")
        );
        spec(&mut p).tolerations = Some(vec![Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Toleration::default()
        }]);
        assert_eq!(check(&TaintToleration, &p, &cache, "t"), Verdict::Fits);
    }

    #[test]
    fn host_ports_conflict() {
        let mut cache = cluster(&[("a", &[])]);
        let with_port = |name: &str, node: Option<&str>| {
            let mut p = pod(name, "0", &[], node);
            spec(&mut p).containers[0].ports = Some(vec![ContainerPort {
                container_port: 80,
                host_port: Some(8080),
                ..ContainerPort::default()
            }]);
            p
        };
        let p = with_port("p", None);
        assert_eq!(check(&NodePorts, &p, &cache, "a"), Verdict::Fits);
        cache.update_pod(Arc::new(with_port("q", Some("a"))));
        assert!(matches!(
            check(&NodePorts, &p, &cache, "a"),
            Verdict::Unschedulable(_)
        ));
    }

    fn term(app: &str, key: &str) -> PodAffinityTerm {
        PodAffinityTerm {
            label_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), app.into())])),
                match_expressions: None,
            }),
            topology_key: key.into(),
            ..PodAffinityTerm::default()
        }
    }

    #[test]
    fn pod_anti_affinity_both_ways() {
        let mut cache = cluster(&[
            ("a", &[("kubernetes.io/hostname", "a")]),
            ("b", &[("kubernetes.io/hostname", "b")]),
        ]);
        let mut web = pod("w1", "0", &[("app", "web")], Some("a"));
        spec(&mut web).affinity = Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![term(
                    "web",
                    "kubernetes.io/hostname",
                )]),
                ..PodAntiAffinity::default()
            }),
            ..Affinity::default()
        });
        cache.update_pod(Arc::new(web.clone()));
        // The new pod has the same anti-affinity: not next to w1.
        let mut w2 = web.clone();
        w2.metadata.name = Some("w2".into());
        spec(&mut w2).node_name = None;
        assert!(matches!(
            check(&InterPodAffinity, &w2, &cache, "a"),
            Verdict::Unschedulable(_)
        ));
        assert_eq!(check(&InterPodAffinity, &w2, &cache, "b"), Verdict::Fits);
        // A plain pod labelled web is rejected by w1's own rule (symmetry).
        let plain = pod("x", "0", &[("app", "web")], None);
        assert_eq!(
            check(&InterPodAffinity, &plain, &cache, "a").reason(),
            Some("node(s) didn't satisfy existing pods anti-affinity rules")
        );
    }

    #[test]
    fn pod_affinity_requires_a_matching_pod_in_the_domain() {
        let mut cache = cluster(&[("a", &[("zone", "z1")]), ("b", &[("zone", "z2")])]);
        cache.update_pod(Arc::new(pod("db", "0", &[("app", "db")], Some("a"))));
        let mut p = pod("p", "0", &[], None);
        spec(&mut p).affinity = Some(Affinity {
            pod_affinity: Some(k8s_openapi::api::core::v1::PodAffinity {
                required_during_scheduling_ignored_during_execution: Some(vec![term("db", "zone")]),
                ..Default::default()
            }),
            ..Affinity::default()
        });
        assert_eq!(check(&InterPodAffinity, &p, &cache, "a"), Verdict::Fits);
        assert!(matches!(
            check(&InterPodAffinity, &p, &cache, "b"),
            Verdict::Unresolvable(_)
        ));
    }

    #[test]
    fn topology_spread_max_skew() {
        let mut cache = cluster(&[("a", &[("zone", "z1")]), ("b", &[("zone", "z2")])]);
        cache.update_pod(Arc::new(pod("s1", "0", &[("app", "s")], Some("a"))));
        let mut p = pod("p", "0", &[("app", "s")], None);
        spec(&mut p).topology_spread_constraints = Some(vec![TopologySpreadConstraint {
            max_skew: 1,
            topology_key: "zone".into(),
            when_unsatisfiable: "DoNotSchedule".into(),
            label_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("app".into(), "s".into())])),
                match_expressions: None,
            }),
            ..TopologySpreadConstraint::default()
        }]);
        assert!(matches!(
            check(&PodTopologySpread, &p, &cache, "a"),
            Verdict::Unschedulable(_)
        ));
        assert_eq!(check(&PodTopologySpread, &p, &cache, "b"), Verdict::Fits);
    }
}
