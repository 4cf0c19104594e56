//! Field selectors each built-in type supports beyond `metadata.name` and
//! `metadata.namespace`, with the value Kubernetes uses when a field is unset.

use super::typed::SelectableField;

const fn f(name: &'static str, pointer: &'static str, absent: &'static str) -> SelectableField {
    SelectableField {
        name,
        pointer,
        absent,
    }
}

/// Pods.
pub static POD: &[SelectableField] = &[
    f("spec.nodeName", "/spec/nodeName", ""),
    f("spec.restartPolicy", "/spec/restartPolicy", ""),
    f("spec.schedulerName", "/spec/schedulerName", ""),
    f("spec.serviceAccountName", "/spec/serviceAccountName", ""),
    f("spec.hostNetwork", "/spec/hostNetwork", "false"),
    f("status.phase", "/status/phase", ""),
    f("status.podIP", "/status/podIP", ""),
    f("status.nominatedNodeName", "/status/nominatedNodeName", ""),
];

/// Events.
pub static EVENT: &[SelectableField] = &[
    f("involvedObject.kind", "/involvedObject/kind", ""),
    f("involvedObject.namespace", "/involvedObject/namespace", ""),
    f("involvedObject.name", "/involvedObject/name", ""),
    f("involvedObject.uid", "/involvedObject/uid", ""),
    f(
        "involvedObject.apiVersion",
        "/involvedObject/apiVersion",
        "",
    ),
    f(
        "involvedObject.resourceVersion",
        "/involvedObject/resourceVersion",
        "",
    ),
    f("involvedObject.fieldPath", "/involvedObject/fieldPath", ""),
    f("reason", "/reason", ""),
    f("reportingComponent", "/reportingComponent", ""),
    f("source", "/source/component", ""),
    f("type", "/type", ""),
];

/// Secrets.
pub static SECRET: &[SelectableField] = &[f("type", "/type", "")];

/// Namespaces.
pub static NAMESPACE: &[SelectableField] = &[f("status.phase", "/status/phase", "")];

/// Nodes.
pub static NODE: &[SelectableField] = &[f("spec.unschedulable", "/spec/unschedulable", "false")];

/// Jobs (`status.successful` is the number of succeeded pods).
pub static JOB: &[SelectableField] = &[f("status.successful", "/status/succeeded", "0")];

/// ReplicaSets.
pub static REPLICASET: &[SelectableField] = &[f("status.replicas", "/status/replicas", "0")];
