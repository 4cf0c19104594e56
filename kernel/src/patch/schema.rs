//! Merge semantics of the fields of built-in types: which lists are merged by
//! key (`patchMergeKey` / `listMapKey`), which primitive lists are sets, which
//! maps are atomic. Taken from the struct tags of `k8s.io/api`.
//!
//! Paths are the field names from the object root joined by `.`, list
//! elements skipped: `spec.template.spec.containers.ports`.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// How a list field merges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole (no patch strategy; `listType=atomic`).
    Atomic,
    /// A primitive list merged as a set (`patchStrategy=merge`, `listType=set`).
    Set,
    /// A list of objects merged by key (`patchStrategy=merge`, `listType=map`).
    Map {
        /// The strategic merge patch key (`patchMergeKey`).
        merge_key: &'static str,
        /// The server-side apply keys (`listMapKey`) with their defaults, used
        /// when an element omits a key field.
        keys: &'static [(&'static str, Option<&'static str>)],
    },
}

/// The merge semantics of one type's fields.
#[derive(Clone, Debug, Default)]
pub struct Schema {
    lists: HashMap<String, ListKind>,
    atomic_maps: HashSet<String>,
}

impl Schema {
    /// The schema of a built-in type, or `None` for types kerno does not know
    /// (custom resources), for which Kubernetes refuses strategic merge patch
    /// with 415 Unsupported Media Type.
    pub fn builtin(group: &str, kind: &str) -> Option<&'static Schema> {
        if !BUILTIN_GROUPS.contains(&group) {
            return None;
        }
        Some(
            SCHEMAS
                .get(format!("{group}/{kind}").as_str())
                .unwrap_or_else(|| LazyLock::force(&METADATA_ONLY)),
        )
    }

    /// The schema for types without type information (custom resources) in
    /// server-side apply: metadata is known, every other list is atomic and
    /// every map granular, as Kubernetes does for schemaless CRDs.
    pub fn generic() -> &'static Schema {
        &METADATA_ONLY
    }

    /// How the list at `path` merges; lists not described are atomic.
    pub fn list_kind(&self, path: &str) -> &ListKind {
        self.lists.get(path).unwrap_or(&ListKind::Atomic)
    }

    /// Whether the map at `path` is atomic (replaced and owned as a whole).
    pub fn is_atomic_map(&self, path: &str) -> bool {
        self.atomic_maps.contains(path)
    }

    /// Adds a list rule (for callers describing custom types).
    pub fn with_list(mut self, path: &str, kind: ListKind) -> Self {
        self.lists.insert(path.to_string(), kind);
        self
    }

    /// Marks a map as atomic (for callers describing custom types).
    pub fn with_atomic_map(mut self, path: &str) -> Self {
        self.atomic_maps.insert(path.to_string());
        self
    }

    fn lists(mut self, prefix: &str, rules: &[(&str, ListKind)]) -> Self {
        for (rel, kind) in rules {
            self.lists.insert(join(prefix, rel), kind.clone());
        }
        self
    }

    fn atomic(mut self, prefix: &str, rels: &[&str]) -> Self {
        for rel in rels {
            self.atomic_maps.insert(join(prefix, rel));
        }
        self
    }

    fn metadata(self, prefix: &str) -> Self {
        self.lists(
            prefix,
            &[
                ("metadata.finalizers", ListKind::Set),
                ("metadata.ownerReferences", map("uid", &[("uid", None)])),
            ],
        )
    }

    fn pod_spec(self, prefix: &str) -> Self {
        let mut s = self.metadata(prefix).lists(
            &join(prefix, "spec"),
            &[
                ("volumes", map("name", &[("name", None)])),
                ("imagePullSecrets", map("name", &[("name", None)])),
                ("hostAliases", map("ip", &[("ip", None)])),
                (
                    "topologySpreadConstraints",
                    map(
                        "topologyKey",
                        &[("topologyKey", None), ("whenUnsatisfiable", None)],
                    ),
                ),
                ("resourceClaims", map("name", &[("name", None)])),
                ("schedulingGates", map("name", &[("name", None)])),
            ],
        );
        for containers in ["containers", "initContainers", "ephemeralContainers"] {
            let at = join(prefix, &format!("spec.{containers}"));
            s = s
                .lists(
                    &join(prefix, "spec"),
                    &[(containers, map("name", &[("name", None)]))],
                )
                .lists(
                    &at,
                    &[
                        (
                            "ports",
                            map(
                                "containerPort",
                                &[("containerPort", None), ("protocol", Some("TCP"))],
                            ),
                        ),
                        ("env", map("name", &[("name", None)])),
                        ("volumeMounts", map("mountPath", &[("mountPath", None)])),
                        ("volumeDevices", map("devicePath", &[("devicePath", None)])),
                    ],
                );
        }
        s
    }

    fn conditions(self, prefix: &str) -> Self {
        self.lists(prefix, &[("conditions", map("type", &[("type", None)]))])
    }
}

/// API groups whose types are built in (everything else is a custom resource).
const BUILTIN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "scheduling.k8s.io",
    "node.k8s.io",
    "certificates.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "resource.k8s.io",
];

const fn map(
    merge_key: &'static str,
    keys: &'static [(&'static str, Option<&'static str>)],
) -> ListKind {
    ListKind::Map { merge_key, keys }
}

fn join(prefix: &str, rel: &str) -> String {
    if prefix.is_empty() {
        rel.to_string()
    } else {
        format!("{prefix}.{rel}")
    }
}

static METADATA_ONLY: LazyLock<Schema> = LazyLock::new(|| Schema::default().metadata(""));

/// Schema of a workload whose pod template is at `template` (relative path).
fn workload(template: &str) -> Schema {
    Schema::default()
        .metadata("")
        .pod_spec(template)
        .atomic("", &["spec.selector"])
        .conditions("status")
}

/// Schemas by `group/kind`.
static SCHEMAS: LazyLock<HashMap<String, Schema>> = LazyLock::new(|| {
    let mut m = HashMap::new();
    let pod = Schema::default().pod_spec("").conditions("status").lists(
        "status",
        &[
            ("podIPs", map("ip", &[("ip", None)])),
            ("hostIPs", map("ip", &[("ip", None)])),
            ("resourceClaimStatuses", map("name", &[("name", None)])),
        ],
    );
    m.insert("/Pod".to_string(), pod);
    m.insert(
        "/PodTemplate".to_string(),
        Schema::default().metadata("").pod_spec("template"),
    );
    m.insert(
        "/ReplicationController".to_string(),
        Schema::default()
            .metadata("")
            .pod_spec("spec.template")
            .atomic("", &["spec.selector"])
            .conditions("status"),
    );
    for kind in ["Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"] {
        m.insert(format!("apps/{kind}"), workload("spec.template"));
    }
    m.insert("batch/Job".to_string(), workload("spec.template"));
    m.insert(
        "batch/CronJob".to_string(),
        Schema::default()
            .metadata("")
            .metadata("spec.jobTemplate")
            .pod_spec("spec.jobTemplate.spec.template")
            .atomic("", &["spec.jobTemplate.spec.selector"]),
    );
    m.insert(
        "/Service".to_string(),
        Schema::default()
            .metadata("")
            .lists(
                "spec",
                &[(
                    "ports",
                    map("port", &[("port", None), ("protocol", Some("TCP"))]),
                )],
            )
            .atomic("", &["spec.selector"])
            .conditions("status"),
    );
    m.insert(
        "/Node".to_string(),
        Schema::default()
            .metadata("")
            .lists("spec", &[("podCIDRs", ListKind::Set)])
            .conditions("status")
            .lists("status", &[("addresses", map("type", &[("type", None)]))]),
    );
    m.insert(
        "/ServiceAccount".to_string(),
        Schema::default()
            .metadata("")
            .lists("", &[("secrets", map("name", &[("name", None)]))]),
    );
    m.insert(
        "/Namespace".to_string(),
        Schema::default().metadata("").conditions("status"),
    );
    m.insert(
        "/PersistentVolumeClaim".to_string(),
        Schema::default().metadata("").conditions("status"),
    );
    m
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_containers_are_keyed_by_name() {
        let s = Schema::builtin("apps", "Deployment").expect("built-in");
        assert_eq!(
            s.list_kind("spec.template.spec.containers"),
            &map("name", &[("name", None)])
        );
        match s.list_kind("spec.template.spec.containers.ports") {
            ListKind::Map { merge_key, keys } => {
                assert_eq!(*merge_key, "containerPort");
                assert_eq!(keys.len(), 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            s.list_kind("spec.template.spec.tolerations"),
            &ListKind::Atomic
        );
        assert_eq!(s.list_kind("metadata.finalizers"), &ListKind::Set);
        assert_eq!(
            s.list_kind("spec.template.metadata.finalizers"),
            &ListKind::Set
        );
        assert!(s.is_atomic_map("spec.selector"));
        assert!(!s.is_atomic_map("metadata.labels"));
    }

    #[test]
    fn cronjob_pod_template_is_deep() {
        let s = Schema::builtin("batch", "CronJob").expect("built-in");
        assert_eq!(
            s.list_kind("spec.jobTemplate.spec.template.spec.initContainers.env"),
            &map("name", &[("name", None)])
        );
    }

    #[test]
    fn service_ports_are_keyed_by_port() {
        let s = Schema::builtin("", "Service").expect("built-in");
        match s.list_kind("spec.ports") {
            ListKind::Map { merge_key, .. } => assert_eq!(*merge_key, "port"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn custom_resources_have_no_builtin_schema() {
        assert!(Schema::builtin("example.com", "Widget").is_none());
        // A built-in group's kind without special lists still knows metadata.
        let cm = Schema::builtin("", "ConfigMap").expect("built-in group");
        assert_eq!(
            cm.list_kind("metadata.ownerReferences"),
            &map("uid", &[("uid", None)])
        );
        assert_eq!(Schema::generic().list_kind("spec.items"), &ListKind::Atomic);
    }
}
