//! A snapshot of the cluster's RBAC objects, compiled for fast decisions:
//! which rules apply to a user, in a namespace or cluster-wide, with
//! aggregated ClusterRoles resolved.

use std::collections::HashMap;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};
use serde_json::Value;

use super::rules::{Attributes, rule_allows};
use crate::auth::user::UserInfo;
use crate::selector::LabelSelector;

/// The outcome of an authorization check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, by the named binding and role (for audit).
    Allow(String),
    /// No rule allows it.
    Deny,
}

impl Decision {
    /// Whether the request may go ahead.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// One binding's subjects and the rules of the role it grants.
#[derive(Debug)]
struct Grant {
    /// `RoleBinding ns/name of Role x`, for audit and reviews.
    reason: String,
    subjects: Vec<Subject>,
    /// The binding's namespace (ServiceAccount subjects default to it).
    namespace: String,
    rules: Vec<PolicyRule>,
}

/// The compiled RBAC state at one moment.
#[derive(Debug, Default)]
pub struct Policy {
    cluster: Vec<Grant>,
    namespaced: HashMap<String, Vec<Grant>>,
}

impl Policy {
    /// Compiles the four kinds of RBAC objects (as stored JSON). Objects that
    /// do not decode are skipped: validation keeps them out of the store.
    pub fn compile(
        cluster_roles: &[Value],
        roles: &[Value],
        cluster_bindings: &[Value],
        bindings: &[Value],
    ) -> Self {
        let cluster_roles: Vec<ClusterRole> = decode_all(cluster_roles);
        let effective = effective_cluster_rules(&cluster_roles);
        let roles: HashMap<(String, String), Vec<PolicyRule>> = decode_all::<Role>(roles)
            .into_iter()
            .map(|r| {
                let key = (
                    r.metadata.namespace.clone().unwrap_or_default(),
                    r.metadata.name.clone().unwrap_or_default(),
                );
                (key, r.rules.unwrap_or_default())
            })
            .collect();

        let cluster = decode_all::<ClusterRoleBinding>(cluster_bindings)
            .into_iter()
            .filter(|b| b.role_ref.kind == "ClusterRole")
            .map(|b| Grant {
                reason: format!(
                    "ClusterRoleBinding {:?} of ClusterRole {:?}",
                    b.metadata.name.as_deref().unwrap_or_default(),
                    b.role_ref.name
                ),
                subjects: b.subjects.unwrap_or_default(),
                namespace: String::new(),
                rules: effective.get(&b.role_ref.name).cloned().unwrap_or_default(),
            })
            .collect();

        let mut namespaced: HashMap<String, Vec<Grant>> = HashMap::new();
        for b in decode_all::<RoleBinding>(bindings) {
            let ns = b.metadata.namespace.clone().unwrap_or_default();
            let rules = match b.role_ref.kind.as_str() {
                "ClusterRole" => effective.get(&b.role_ref.name).cloned(),
                "Role" => roles.get(&(ns.clone(), b.role_ref.name.clone())).cloned(),
                _ => None,
            }
            .unwrap_or_default();
            namespaced.entry(ns.clone()).or_default().push(Grant {
                reason: format!(
                    "RoleBinding {:?} of {} {:?} in namespace {:?}",
                    b.metadata.name.as_deref().unwrap_or_default(),
                    b.role_ref.kind,
                    b.role_ref.name,
                    ns
                ),
                subjects: b.subjects.unwrap_or_default(),
                namespace: ns,
                rules,
            });
        }
        Self {
            cluster,
            namespaced,
        }
    }

    /// Whether `user` may do `req`: cluster-wide grants first, then the
    /// grants of the request's namespace. Deny by default.
    pub fn authorize(&self, user: &UserInfo, req: &Attributes) -> Decision {
        let namespaced = (!req.namespace.is_empty())
            .then(|| self.namespaced.get(&req.namespace))
            .flatten();
        self.cluster
            .iter()
            .chain(namespaced.into_iter().flatten())
            .find(|g| {
                g.subjects
                    .iter()
                    .any(|s| subject_matches(s, user, &g.namespace))
                    && g.rules.iter().any(|r| rule_allows(r, req))
            })
            .map_or(Decision::Deny, |g| Decision::Allow(g.reason.clone()))
    }

    /// Every rule that applies to `user` in `namespace` (cluster-wide ones
    /// included), for SelfSubjectRulesReview (`kubectl auth can-i --list`).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<PolicyRule> {
        let namespaced = (!namespace.is_empty())
            .then(|| self.namespaced.get(namespace))
            .flatten();
        self.cluster
            .iter()
            .chain(namespaced.into_iter().flatten())
            .filter(|g| {
                g.subjects
                    .iter()
                    .any(|s| subject_matches(s, user, &g.namespace))
            })
            .flat_map(|g| g.rules.iter().cloned())
            .collect()
    }
}

fn decode_all<T: serde::de::DeserializeOwned>(values: &[Value]) -> Vec<T> {
    values
        .iter()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect()
}

fn subject_matches(subject: &Subject, user: &UserInfo, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => subject.name == user.name,
        "Group" => user.in_group(&subject.name),
        "ServiceAccount" => {
            let ns = subject
                .namespace
                .as_deref()
                .filter(|ns| !ns.is_empty())
                .unwrap_or(binding_namespace);
            user.service_account() == Some((ns, subject.name.as_str()))
        }
        _ => false,
    }
}

/// Each ClusterRole's rules, with aggregated roles given the union of the
/// rules of the roles their selectors pick (as the Kubernetes aggregation
/// controller would write them).
fn effective_cluster_rules(roles: &[ClusterRole]) -> HashMap<String, Vec<PolicyRule>> {
    let mut out = HashMap::new();
    for role in roles {
        let name = role.metadata.name.clone().unwrap_or_default();
        let mut rules = role.rules.clone().unwrap_or_default();
        let selectors = role
            .aggregation_rule
            .as_ref()
            .and_then(|a| a.cluster_role_selectors.clone())
            .unwrap_or_default();
        for selector in selectors {
            let Ok(selector) = serde_json::to_value(&selector)
                .map_err(|_| ())
                .and_then(|v| LabelSelector::from_json(&v).map_err(|_| ()))
            else {
                continue;
            };
            for other in roles {
                let labels = other.metadata.labels.clone().unwrap_or_default();
                if other.metadata.name != role.metadata.name
                    && !selector.is_empty()
                    && selector.matches_map(&labels)
                {
                    rules.extend(other.rules.clone().unwrap_or_default());
                }
            }
        }
        out.insert(name, rules);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn alice() -> UserInfo {
        UserInfo::new("alice", ["dev".to_owned()])
    }

    fn view_role() -> Value {
        json!({"metadata": {"name": "view"},
               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})
    }

    #[test]
    fn a_rolebinding_grants_only_in_its_namespace() {
        let binding = json!({"metadata": {"name": "alice-view", "namespace": "team"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}]});
        let policy = Policy::compile(&[view_role()], &[], &[], &[binding]);
        let get = |ns: &str| Attributes::resource("get", "", "pods", ns, "p");
        assert!(policy.authorize(&alice(), &get("team")).allowed());
        assert_eq!(policy.authorize(&alice(), &get("other")), Decision::Deny);
        let delete = Attributes::resource("delete", "", "pods", "team", "p");
        assert_eq!(policy.authorize(&alice(), &delete), Decision::Deny);
        let bob = UserInfo::new("bob", []);
        assert_eq!(policy.authorize(&bob, &get("team")), Decision::Deny);
    }

    #[test]
    fn groups_and_service_accounts_are_subjects() {
        let admin = json!({"metadata": {"name": "cluster-admin"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
        let masters = json!({"metadata": {"name": "masters"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "name": "system:masters"}]});
        let role = json!({"metadata": {"name": "lease", "namespace": "kube-system"},
            "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["update"]}]});
        let sa_binding = json!({"metadata": {"name": "b", "namespace": "kube-system"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "lease"},
            "subjects": [{"kind": "ServiceAccount", "name": "builder"}]});
        let policy = Policy::compile(&[admin], &[role], &[masters], &[sa_binding]);
        let root = UserInfo::new("root", ["system:masters".to_owned()]);
        let any = Attributes::resource("delete", "apps", "deployments", "x", "y");
        assert!(policy.authorize(&root, &any).allowed());
        assert_eq!(policy.authorize(&alice(), &any), Decision::Deny);
        let sa = UserInfo::new("system:serviceaccount:kube-system:builder", []);
        let update = Attributes::resource(
            "update",
            "coordination.k8s.io",
            "leases",
            "kube-system",
            "l",
        );
        assert!(policy.authorize(&sa, &update).allowed());
        let other_sa = UserInfo::new("system:serviceaccount:default:builder", []);
        assert_eq!(policy.authorize(&other_sa, &update), Decision::Deny);
    }

    #[test]
    fn aggregated_cluster_roles_take_the_rules_of_the_roles_they_select() {
        let edit = json!({"metadata": {"name": "edit"},
            "aggregationRule": {"clusterRoleSelectors": [
                {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}}]},
            "rules": []});
        let crd_edit = json!({"metadata": {"name": "greetings-edit",
                "labels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}},
            "rules": [{"apiGroups": ["example.kerno.dev"], "resources": ["greetings"], "verbs": ["create"]}]});
        let binding = json!({"metadata": {"name": "alice-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "User", "name": "alice"}]});
        let policy = Policy::compile(&[edit, crd_edit], &[], &[binding], &[]);
        let create = Attributes::resource("create", "example.kerno.dev", "greetings", "ns", "");
        assert!(policy.authorize(&alice(), &create).allowed());
        assert_eq!(policy.rules_for(&alice(), "ns").len(), 1);
    }
}
