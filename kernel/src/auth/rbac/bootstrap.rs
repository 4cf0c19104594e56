//! The RBAC objects a new cluster starts with, as Kubernetes installs them:
//! `cluster-admin` (bound to `system:masters`), the user-facing aggregated
//! roles `admin` ⊇ `edit` ⊇ `view`, discovery and self-review for every
//! authenticated user, and one least-privilege ClusterRole per known plugin
//! (`kerno:plugin:<name>`, bound to its user `system:plugin:<name>`).

use serde_json::{Value, json};

/// The label that marks bootstrap objects, as in Kubernetes.
const BOOTSTRAP_LABEL: &str = "kubernetes.io/bootstrapping";

/// The user a plugin's token authenticates as.
pub fn plugin_user(plugin: &str) -> String {
    format!("system:plugin:{plugin}")
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn cluster_role(name: &str, labels: Value, rules: Vec<Value>) -> Value {
    let mut labels = labels;
    labels[BOOTSTRAP_LABEL] = json!("rbac-defaults");
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": labels},
        "rules": rules,
    })
}

fn aggregated(name: &str, to: &str, labels: Value) -> Value {
    let mut role = cluster_role(name, labels, vec![]);
    role["aggregationRule"] = json!({"clusterRoleSelectors": [
        {"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"}}
    ]});
    role
}

fn binding(name: &str, role: &str, subject: Value) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": {BOOTSTRAP_LABEL: "rbac-defaults"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [subject],
    })
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const ALL: &[&str] = &["*"];

/// The workload and configuration resources users manage, by group.
const USER_RESOURCES: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "pods",
            "pods/log",
            "pods/status",
            "services",
            "services/status",
            "endpoints",
            "configmaps",
            "persistentvolumeclaims",
            "persistentvolumeclaims/status",
            "serviceaccounts",
            "events",
            "limitranges",
            "resourcequotas",
            "resourcequotas/status",
            "replicationcontrollers",
            "replicationcontrollers/scale",
            "replicationcontrollers/status",
        ],
    ),
    (
        "apps",
        &[
            "deployments",
            "deployments/scale",
            "deployments/status",
            "replicasets",
            "replicasets/scale",
            "replicasets/status",
            "statefulsets",
            "statefulsets/scale",
            "statefulsets/status",
            "daemonsets",
            "daemonsets/status",
            "controllerrevisions",
        ],
    ),
    (
        "batch",
        &["jobs", "jobs/status", "cronjobs", "cronjobs/status"],
    ),
    (
        "networking.k8s.io",
        &["ingresses", "ingresses/status", "networkpolicies"],
    ),
    ("discovery.k8s.io", &["endpointslices"]),
    ("coordination.k8s.io", &["leases"]),
    (
        "policy",
        &["poddisruptionbudgets", "poddisruptionbudgets/status"],
    ),
    ("autoscaling", &["horizontalpodautoscalers"]),
];

fn user_rules(verbs: &[&str]) -> Vec<Value> {
    USER_RESOURCES
        .iter()
        .map(|(group, resources)| rule(&[group], resources, verbs))
        .collect()
}

/// The default ClusterRoles and ClusterRoleBindings.
pub fn default_objects() -> Vec<Value> {
    let to = |levels: &[&str]| {
        let mut labels = json!({});
        for level in levels {
            labels[format!("rbac.authorization.k8s.io/aggregate-to-{level}")] = json!("true");
        }
        labels
    };
    let mut edit_rules = user_rules(WRITE);
    edit_rules.push(rule(
        &[""],
        &["secrets"],
        &[
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
        ],
    ));
    edit_rules.push(rule(
        &[""],
        &[
            "pods/exec",
            "pods/attach",
            "pods/portforward",
            "pods/eviction",
        ],
        &["create", "get"],
    ));
    edit_rules.push(rule(&[""], &["namespaces"], &["get", "list", "watch"]));
    let mut objects = vec![
        cluster_role(
            "cluster-admin",
            json!({}),
            vec![
                rule(&["*"], &["*"], ALL),
                json!({"nonResourceURLs": ["*"], "verbs": ["*"]}),
            ],
        ),
        aggregated("admin", "admin", json!({})),
        aggregated("edit", "edit", to(&["admin"])),
        aggregated("view", "view", to(&["edit", "admin"])),
        cluster_role(
            "system:aggregate-to-view",
            to(&["view", "edit", "admin"]),
            {
                // As Kubernetes' view: namespaces too (read-only).
                let mut rules = user_rules(READ);
                rules.push(rule(&[""], &["namespaces"], READ));
                rules
            },
        ),
        cluster_role(
            "system:aggregate-to-edit",
            to(&["edit", "admin"]),
            edit_rules,
        ),
        cluster_role(
            "system:aggregate-to-admin",
            to(&["admin"]),
            vec![
                rule(
                    &["rbac.authorization.k8s.io"],
                    &["roles", "rolebindings"],
                    &["*"],
                ),
                rule(
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                    &["create"],
                ),
            ],
        ),
        cluster_role(
            "system:basic-user",
            json!({}),
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &["create"],
                ),
            ],
        ),
        cluster_role(
            "system:discovery",
            json!({}),
            vec![json!({"nonResourceURLs": [
                "/api", "/api/*", "/apis", "/apis/*", "/version", "/version/",
                "/openapi", "/openapi/*", "/healthz", "/livez", "/readyz"
            ], "verbs": ["get"]})],
        ),
        binding(
            "cluster-admin",
            "cluster-admin",
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}),
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}),
        ),
        binding(
            "system:discovery",
            "system:discovery",
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}),
        ),
    ];
    for (plugin, rules) in plugin_roles() {
        let role = format!("kerno:plugin:{plugin}");
        objects.push(cluster_role(&role, json!({}), rules));
        objects.push(binding(
            &role,
            &role,
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": plugin_user(plugin)}),
        ));
    }
    objects
}

/// Least-privilege rules of the plugins kerno ships.
fn plugin_roles() -> Vec<(&'static str, Vec<Value>)> {
    let events = rule(
        &["", "events.k8s.io"],
        &["events"],
        &["create", "patch", "update"],
    );
    let leases = rule(
        &["coordination.k8s.io"],
        &["leases"],
        &["get", "list", "watch", "create", "update", "patch"],
    );
    let controller = |mut rules: Vec<Value>| {
        rules.push(events.clone());
        rules.push(leases.clone());
        rules
    };
    vec![
        (
            "scheduler-default",
            controller(vec![
                rule(
                    &[""],
                    &[
                        "pods",
                        "nodes",
                        "namespaces",
                        "persistentvolumeclaims",
                        "persistentvolumes",
                        "services",
                    ],
                    READ,
                ),
                rule(&[""], &["pods/binding"], &["create"]),
                rule(&[""], &["pods/status"], &["patch", "update"]),
                rule(&[""], &["pods"], &["delete"]),
                rule(&["scheduling.k8s.io"], &["priorityclasses"], READ),
                rule(&["apps"], &["replicasets", "statefulsets"], READ),
            ]),
        ),
        (
            "controller-replicaset",
            controller(vec![
                rule(
                    &["apps"],
                    &["replicasets"],
                    &["get", "list", "watch", "update", "patch"],
                ),
                rule(&["apps"], &["replicasets/status"], &["update", "patch"]),
                rule(
                    &[""],
                    &["pods"],
                    &[
                        "get", "list", "watch", "create", "update", "patch", "delete",
                    ],
                ),
            ]),
        ),
        (
            "controller-deployment",
            controller(vec![
                rule(
                    &["apps"],
                    &["deployments"],
                    &["get", "list", "watch", "update", "patch"],
                ),
                rule(&["apps"], &["deployments/status"], &["update", "patch"]),
                rule(
                    &["apps"],
                    &["replicasets"],
                    &[
                        "get", "list", "watch", "create", "update", "patch", "delete",
                    ],
                ),
                rule(&[""], &["pods"], READ),
            ]),
        ),
        (
            "controller-endpoints",
            controller(vec![
                rule(&[""], &["services", "pods"], READ),
                rule(
                    &[""],
                    &["endpoints"],
                    &[
                        "get", "list", "watch", "create", "update", "patch", "delete",
                    ],
                ),
                rule(
                    &["discovery.k8s.io"],
                    &["endpointslices"],
                    &[
                        "get", "list", "watch", "create", "update", "patch", "delete",
                    ],
                ),
            ]),
        ),
        (
            "proxy-ipvs",
            vec![
                rule(&[""], &["services"], READ),
                rule(&["discovery.k8s.io"], &["endpointslices"], READ),
            ],
        ),
        (
            "controller-gc",
            controller(vec![rule(
                &["*"],
                &["*"],
                &["get", "list", "watch", "update", "patch", "delete"],
            )]),
        ),
        (
            "controller-namespace",
            controller(vec![
                rule(
                    &["*"],
                    &["*"],
                    &["get", "list", "watch", "delete", "deletecollection"],
                ),
                rule(
                    &[""],
                    &["namespaces", "namespaces/finalize", "namespaces/status"],
                    &["update", "patch"],
                ),
            ]),
        ),
        (
            "controller-node",
            controller(vec![
                rule(
                    &[""],
                    &["nodes"],
                    &["get", "list", "watch", "update", "patch"],
                ),
                rule(
                    &[""],
                    &["nodes/status", "pods/status"],
                    &["update", "patch"],
                ),
                rule(&[""], &["pods"], &["get", "list", "watch", "delete"]),
            ]),
        ),
        (
            "controller-serviceaccount",
            controller(vec![
                rule(&[""], &["namespaces"], READ),
                rule(
                    &[""],
                    &["serviceaccounts"],
                    &["get", "list", "watch", "create"],
                ),
            ]),
        ),
        (
            "kubelet",
            controller(vec![
                rule(
                    &[""],
                    &["nodes"],
                    &["get", "list", "watch", "create", "update", "patch"],
                ),
                rule(
                    &[""],
                    &["nodes/status", "pods/status"],
                    &["update", "patch"],
                ),
                rule(&[""], &["pods"], &["get", "list", "watch", "delete"]),
                rule(
                    &[""],
                    &["configmaps", "secrets", "services", "endpoints"],
                    READ,
                ),
                rule(&["discovery.k8s.io"], &["endpointslices"], READ),
                rule(&[""], &["serviceaccounts/token"], &["create"]),
            ]),
        ),
        (
            "node-sim",
            controller(vec![
                rule(
                    &[""],
                    &["nodes"],
                    &["get", "list", "watch", "create", "update", "patch"],
                ),
                rule(
                    &[""],
                    &["nodes/status", "pods/status"],
                    &["update", "patch"],
                ),
                rule(&[""], &["pods"], &["get", "list", "watch", "delete"]),
            ]),
        ),
        (
            // Reads what it answers from; creates only its own Service.
            "dns",
            vec![
                rule(&[""], &["services"], &["get", "list", "watch", "create"]),
                rule(&["discovery.k8s.io"], &["endpointslices"], READ),
            ],
        ),
    ]
}

/// Creates the default objects that are missing (an administrator's edits
/// to existing ones are kept, as Kubernetes does without auto-reconcile).
pub async fn ensure_default_objects(
    service: &crate::service::Service,
) -> Result<(), crate::error::ApiError> {
    use crate::error::ApiError;
    use crate::service::{Target, WriteOptions};
    let opts = WriteOptions {
        field_manager: "kerno".into(),
        ..Default::default()
    };
    for obj in default_objects() {
        let plural = match obj["kind"].as_str() {
            Some("ClusterRole") => "clusterroles",
            _ => "clusterrolebindings",
        };
        let rt = service
            .registry()
            .get("rbac.authorization.k8s.io", "v1", plural)
            .ok_or_else(|| ApiError::Internal(format!("{plural} are not registered")))?;
        let target = Target {
            rt,
            namespace: None,
            name: None,
        };
        match service.create(&target, obj, &opts).await {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::rbac::{Attributes, Policy};
    use crate::auth::user::UserInfo;

    fn policy() -> Policy {
        let objects = default_objects();
        let of = |kind: &str| -> Vec<Value> {
            objects
                .iter()
                .filter(|o| o["kind"] == kind)
                .cloned()
                .collect()
        };
        Policy::compile(&of("ClusterRole"), &[], &of("ClusterRoleBinding"), &[])
    }

    #[test]
    fn masters_may_do_anything() {
        let root = UserInfo::new("kerno-admin", ["system:masters".to_owned()]);
        let p = policy();
        assert!(
            p.authorize(&root, &Attributes::resource("delete", "", "nodes", "", "n"))
                .allowed()
        );
        assert!(
            p.authorize(&root, &Attributes::non_resource("get", "/metrics"))
                .allowed()
        );
    }

    #[test]
    fn authenticated_users_get_discovery_and_self_review_only() {
        let alice = UserInfo::new("alice", []);
        let p = policy();
        assert!(
            p.authorize(&alice, &Attributes::non_resource("get", "/apis/apps/v1"))
                .allowed()
        );
        let review = Attributes::resource(
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
            "",
        );
        assert!(p.authorize(&alice, &review).allowed());
        assert!(
            !p.authorize(
                &alice,
                &Attributes::resource("list", "", "pods", "default", "")
            )
            .allowed()
        );
    }

    #[test]
    fn plugin_roles_are_least_privilege() {
        let p = policy();
        let scheduler = UserInfo::new(plugin_user("scheduler-default"), []);
        assert!(
            p.authorize(
                &scheduler,
                &Attributes::resource("create", "", "pods/binding", "ns", "p")
            )
            .allowed()
        );
        assert!(
            !p.authorize(
                &scheduler,
                &Attributes::resource("create", "", "secrets", "ns", "")
            )
            .allowed()
        );
        assert!(
            !p.authorize(
                &scheduler,
                &Attributes::resource("get", "", "secrets", "ns", "s")
            )
            .allowed()
        );
        let kubelet = UserInfo::new(plugin_user("kubelet"), []);
        assert!(
            p.authorize(
                &kubelet,
                &Attributes::resource("patch", "", "pods/status", "ns", "p")
            )
            .allowed()
        );
        assert!(
            !p.authorize(
                &kubelet,
                &Attributes::resource("create", "", "pods", "ns", "")
            )
            .allowed()
        );
        let endpoints = UserInfo::new(plugin_user("controller-endpoints"), []);
        assert!(
            p.authorize(
                &endpoints,
                &Attributes::resource("create", "discovery.k8s.io", "endpointslices", "ns", "")
            )
            .allowed()
        );
        assert!(
            !p.authorize(
                &endpoints,
                &Attributes::resource("create", "", "pods", "ns", "")
            )
            .allowed()
        );
        let proxy = UserInfo::new(plugin_user("proxy-ipvs"), []);
        assert!(
            p.authorize(
                &proxy,
                &Attributes::resource("watch", "discovery.k8s.io", "endpointslices", "", "")
            )
            .allowed()
        );
        assert!(
            !p.authorize(
                &proxy,
                &Attributes::resource("update", "", "services", "ns", "s")
            )
            .allowed()
        );
        let rs = UserInfo::new(plugin_user("controller-replicaset"), []);
        assert!(
            p.authorize(&rs, &Attributes::resource("create", "", "pods", "ns", ""))
                .allowed()
        );
        assert!(
            !p.authorize(&rs, &Attributes::resource("delete", "", "nodes", "", "n"))
                .allowed()
        );
    }

    #[test]
    fn view_is_in_edit_is_in_admin_and_view_cannot_read_secrets() {
        let roles = default_objects();
        let bind = |role: &str| {
            json!({"metadata": {"name": format!("u-{role}"), "namespace": "team"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "User", "name": role}]})
        };
        let crs: Vec<Value> = roles
            .iter()
            .filter(|o| o["kind"] == "ClusterRole")
            .cloned()
            .collect();
        let p = Policy::compile(&crs, &[], &[], &[bind("view"), bind("edit"), bind("admin")]);
        let get_pods = Attributes::resource("get", "", "pods", "team", "p");
        let create_deploy = Attributes::resource("create", "apps", "deployments", "team", "");
        let get_secret = Attributes::resource("get", "", "secrets", "team", "s");
        let create_role =
            Attributes::resource("create", "rbac.authorization.k8s.io", "roles", "team", "");
        for (user, pods, deploy, secret, role) in [
            ("view", true, false, false, false),
            ("edit", true, true, true, false),
            ("admin", true, true, true, true),
        ] {
            let u = UserInfo::new(user, []);
            assert_eq!(
                p.authorize(&u, &get_pods).allowed(),
                pods,
                "{user} get pods"
            );
            assert_eq!(
                p.authorize(&u, &create_deploy).allowed(),
                deploy,
                "{user} create deployments"
            );
            assert_eq!(
                p.authorize(&u, &get_secret).allowed(),
                secret,
                "{user} get secrets"
            );
            assert_eq!(
                p.authorize(&u, &create_role).allowed(),
                role,
                "{user} create roles"
            );
        }
    }
}
