//! The status a ReplicaSet reports, computed from its active pods.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kerno_controller_common::{is_available, is_ready, until_available};
use serde_json::{Value, json};

/// The counters of `ReplicaSetStatus` the controller owns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Active pods owned.
    pub replicas: i32,
    /// Of those, pods carrying every label of the template.
    pub fully_labeled: i32,
    /// Of those, ready pods.
    pub ready: i32,
    /// Of those, pods ready for `minReadySeconds`.
    pub available: i32,
    /// The generation these counts answer.
    pub observed_generation: i64,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Counts {
    /// Counts `pods` (the active pods `rs` owns) at `now`.
    pub fn of(rs: &ReplicaSet, pods: &[Arc<Pod>], now: Timestamp) -> Self {
        let spec = rs.spec.as_ref();
        let min_ready = spec.and_then(|s| s.min_ready_seconds).unwrap_or(0);
        let template_labels = spec
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let fully_labeled = pods
            .iter()
            .filter(|p| {
                let labels = p.metadata.labels.as_ref();
                template_labels
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
            })
            .count();
        Self {
            replicas: count(pods.len()),
            fully_labeled: count(fully_labeled),
            ready: count(pods.iter().filter(|p| is_ready(p)).count()),
            available: count(
                pods.iter()
                    .filter(|p| is_available(p, min_ready, now))
                    .count(),
            ),
            observed_generation: rs.metadata.generation.unwrap_or(0),
        }
    }

    /// The counts `rs.status` reports now.
    pub fn reported(rs: &ReplicaSet) -> Self {
        let s = rs.status.clone().unwrap_or_default();
        Self {
            replicas: s.replicas,
            fully_labeled: s.fully_labeled_replicas.unwrap_or(0),
            ready: s.ready_replicas.unwrap_or(0),
            available: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
        }
    }

    /// A merge patch writing these counts.
    pub fn patch(&self) -> Value {
        json!({"status": {
            "replicas": self.replicas,
            "fullyLabeledReplicas": self.fully_labeled,
            "readyReplicas": self.ready,
            "availableReplicas": self.available,
            "observedGeneration": self.observed_generation,
        }})
    }
}

/// When the next ready-but-not-yet-available pod becomes available.
pub fn next_availability(
    rs: &ReplicaSet,
    pods: &[Arc<Pod>],
    now: Timestamp,
) -> Option<std::time::Duration> {
    let min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds)?;
    pods.iter()
        .filter_map(|p| until_available(p, min_ready, now))
        .min()
}
