//! What one RBAC policy rule allows: Kubernetes' matching of verbs, API
//! groups, resources (with `resource/subresource` and `*`), resource names
//! and non-resource URLs (with a trailing `*` as prefix match).

use k8s_openapi::api::rbac::v1::PolicyRule;

/// What a request wants to do, as RBAC sees it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, or another verb (`bind`, `escalate`, `impersonate`…).
    pub verb: String,
    /// Whether this is a request for an API resource (else a non-resource URL).
    pub resource_request: bool,
    /// The API group (`""` for core).
    pub api_group: String,
    /// The plural resource, e.g. `pods`.
    pub resource: String,
    /// The subresource, e.g. `log`, `status`; empty for the main resource.
    pub subresource: String,
    /// The namespace; empty for cluster-scoped requests and all-namespace lists.
    pub namespace: String,
    /// The object name; empty for collections.
    pub name: String,
    /// The URL path, for non-resource requests (`/healthz`, `/version`…).
    pub path: String,
}

impl Attributes {
    /// A resource request.
    pub fn resource(
        verb: &str,
        api_group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Self {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        Self {
            verb: verb.to_owned(),
            resource_request: true,
            api_group: api_group.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            path: String::new(),
        }
    }

    /// A non-resource request (`get` of `/version`, say).
    pub fn non_resource(verb: &str, path: &str) -> Self {
        Self {
            verb: verb.to_owned(),
            resource_request: false,
            path: path.to_owned(),
            ..Self::default()
        }
    }
}

/// Whether `rule` allows the request.
pub fn rule_allows(rule: &PolicyRule, req: &Attributes) -> bool {
    if !matches(&rule.verbs, &req.verb) {
        return false;
    }
    if !req.resource_request {
        return rule
            .non_resource_urls
            .iter()
            .flatten()
            .any(|url| url == "*" || url == &req.path || prefix_match(url, &req.path));
    }
    let groups = rule.api_groups.as_deref().unwrap_or_default();
    if !groups.iter().any(|g| g == "*" || g == &req.api_group) {
        return false;
    }
    let resources = rule.resources.as_deref().unwrap_or_default();
    if !resources
        .iter()
        .any(|r| resource_matches(r, &req.resource, &req.subresource))
    {
        return false;
    }
    match rule.resource_names.as_deref() {
        None | Some([]) => true,
        Some(names) => !req.name.is_empty() && names.iter().any(|n| n == &req.name),
    }
}

fn matches(allowed: &[String], value: &str) -> bool {
    allowed.iter().any(|a| a == "*" || a == value)
}

fn prefix_match(pattern: &str, path: &str) -> bool {
    pattern
        .strip_suffix('*')
        .is_some_and(|prefix| path.starts_with(prefix))
}

/// `pods` matches only the main resource, `pods/log` only that subresource,
/// `*` everything, `*/scale` a subresource of any resource, `pods/*` any
/// subresource of pods.
fn resource_matches(pattern: &str, resource: &str, subresource: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (p_res, p_sub) = match pattern.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (pattern, None),
    };
    let resource_ok = p_res == "*" || p_res == resource;
    match (p_sub, subresource.is_empty()) {
        (None, true) => resource_ok,
        (None, false) => false,
        (Some(_), true) => false,
        (Some(s), false) => resource_ok && (s == "*" || s == subresource),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        PolicyRule {
            verbs: strings(verbs),
            api_groups: Some(strings(groups)),
            resources: Some(strings(resources)),
            resource_names: (!names.is_empty()).then(|| strings(names)),
            non_resource_urls: None,
        }
    }

    #[test]
    fn verbs_groups_and_resources_must_all_match() {
        let r = rule(&["get", "list"], &[""], &["pods"], &[]);
        assert!(rule_allows(
            &r,
            &Attributes::resource("get", "", "pods", "ns", "p")
        ));
        assert!(!rule_allows(
            &r,
            &Attributes::resource("delete", "", "pods", "ns", "p")
        ));
        assert!(!rule_allows(
            &r,
            &Attributes::resource("get", "apps", "pods", "ns", "p")
        ));
        assert!(!rule_allows(
            &r,
            &Attributes::resource("get", "", "secrets", "ns", "s")
        ));
    }

    #[test]
    fn subresources_need_their_own_rules() {
        let pods = rule(&["get"], &[""], &["pods"], &[]);
        assert!(!rule_allows(
            &pods,
            &Attributes::resource("get", "", "pods/log", "ns", "p")
        ));
        let logs = rule(&["get"], &[""], &["pods/log"], &[]);
        assert!(rule_allows(
            &logs,
            &Attributes::resource("get", "", "pods/log", "ns", "p")
        ));
        assert!(!rule_allows(
            &logs,
            &Attributes::resource("get", "", "pods", "ns", "p")
        ));
        let any_scale = rule(&["update"], &["*"], &["*/scale"], &[]);
        assert!(rule_allows(
            &any_scale,
            &Attributes::resource("update", "apps", "deployments/scale", "ns", "d")
        ));
        let star = rule(&["*"], &["*"], &["*"], &[]);
        assert!(rule_allows(
            &star,
            &Attributes::resource("create", "", "pods/exec", "ns", "p")
        ));
    }

    #[test]
    fn resource_names_restrict_to_named_objects() {
        let r = rule(
            &["get", "update"],
            &["coordination.k8s.io"],
            &["leases"],
            &["mine"],
        );
        let mine = Attributes::resource("update", "coordination.k8s.io", "leases", "ns", "mine");
        let other = Attributes::resource("update", "coordination.k8s.io", "leases", "ns", "other");
        let list = Attributes::resource("get", "coordination.k8s.io", "leases", "ns", "");
        assert!(rule_allows(&r, &mine));
        assert!(!rule_allows(&r, &other));
        assert!(!rule_allows(&r, &list));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_prefix() {
        let r = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: Some(vec!["/healthz".into(), "/apis/*".into()]),
            ..PolicyRule::default()
        };
        assert!(rule_allows(
            &r,
            &Attributes::non_resource("get", "/healthz")
        ));
        assert!(rule_allows(
            &r,
            &Attributes::non_resource("get", "/apis/apps/v1")
        ));
        assert!(!rule_allows(
            &r,
            &Attributes::non_resource("get", "/metrics")
        ));
        assert!(!rule_allows(
            &r,
            &Attributes::non_resource("post", "/healthz")
        ));
        // A resource rule never allows a non-resource URL.
        let res = rule(&["*"], &["*"], &["*"], &[]);
        assert!(!rule_allows(
            &res,
            &Attributes::non_resource("get", "/healthz")
        ));
    }
}
