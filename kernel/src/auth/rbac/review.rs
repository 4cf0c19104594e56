//! What the API needs around RBAC: the attributes of an HTTP request,
//! Kubernetes' 403 message, and the access reviews behind `kubectl auth
//! can-i` (SelfSubjectAccessReview, SubjectAccessReview,
//! SelfSubjectRulesReview) and `kubectl auth whoami` (SelfSubjectReview).

use serde_json::{Value, json};

use super::policy::{Decision, Policy};
use super::rules::Attributes;
use crate::api::rest::path::ResourcePath;
use crate::auth::user::UserInfo;
use crate::error::ApiError;

/// The RBAC attributes of a REST request (`path` parsed, or `None` for a
/// non-resource path such as `/version`).
pub fn request_attributes(
    method: &http::Method,
    raw_path: &str,
    path: Option<&ResourcePath>,
    query: &str,
) -> Attributes {
    let watch = query
        .split('&')
        .any(|kv| matches!(kv, "watch=true" | "watch=1" | "watch"));
    let Some(p) = path else {
        let verb = match *method {
            http::Method::GET | http::Method::HEAD => "get",
            http::Method::POST => "post",
            http::Method::PUT => "put",
            http::Method::PATCH => "patch",
            http::Method::DELETE => "delete",
            _ => "unknown",
        };
        return Attributes::non_resource(verb, raw_path);
    };
    let named = p.name.is_some();
    let verb = match (method.as_str(), named) {
        ("GET" | "HEAD", _) if watch => "watch",
        ("GET" | "HEAD", true) => "get",
        ("GET" | "HEAD", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    };
    // A namespace's own path (`/api/v1/namespaces/x`) names the namespace.
    let namespace = match (p.group.as_str(), p.resource.as_str(), &p.name) {
        ("", "namespaces", Some(name)) => name.clone(),
        _ => p.namespace.clone().unwrap_or_default(),
    };
    let mut attrs = Attributes::resource(
        verb,
        &p.group,
        &p.resource,
        &namespace,
        p.name.as_deref().unwrap_or_default(),
    );
    attrs.subresource = p.subresource.clone().unwrap_or_default();
    attrs
}

/// Kubernetes' 403 for a denied request, word for word.
pub fn forbidden(user: &UserInfo, req: &Attributes) -> ApiError {
    if !req.resource_request {
        return ApiError::Forbidden(format!(
            "forbidden: User {:?} cannot {} path {:?}",
            user.name, req.verb, req.path
        ));
    }
    let resource = if req.subresource.is_empty() {
        req.resource.clone()
    } else {
        format!("{}/{}", req.resource, req.subresource)
    };
    let qualified = if req.api_group.is_empty() {
        req.resource.clone()
    } else {
        format!("{}.{}", req.resource, req.api_group)
    };
    let subject = if req.name.is_empty() {
        qualified
    } else {
        format!("{qualified} {:?}", req.name)
    };
    let scope = if req.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace {:?}", req.namespace)
    };
    ApiError::Forbidden(format!(
        "{subject} is forbidden: User {:?} cannot {} resource {resource:?} in API group {:?} {scope}",
        user.name, req.verb, req.api_group
    ))
}

/// Answers a SelfSubjectAccessReview (for the requesting `user`) or a
/// SubjectAccessReview (for the user in its spec): the review with
/// `status.allowed` (and `status.reason`) filled in.
pub fn access_review(
    policy: &Policy,
    requester: &UserInfo,
    mut review: Value,
) -> Result<Value, ApiError> {
    let kind = review["kind"]
        .as_str()
        .unwrap_or("SelfSubjectAccessReview")
        .to_owned();
    let spec = review.get("spec").cloned().unwrap_or(Value::Null);
    let user = if kind == "SubjectAccessReview" {
        let name = spec["user"].as_str().unwrap_or_default();
        let groups = spec["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if name.is_empty() && groups.is_empty() {
            return Err(ApiError::BadRequest(
                "spec.user or spec.groups is required in a SubjectAccessReview".into(),
            ));
        }
        UserInfo::new(name, groups)
    } else {
        requester.clone()
    };
    let attrs = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let s = |k: &str| ra[k].as_str().unwrap_or_default();
        let mut attrs = Attributes::resource(
            s("verb"),
            s("group"),
            s("resource"),
            s("namespace"),
            s("name"),
        );
        attrs.subresource = s("subresource").to_owned();
        attrs
    } else if let Some(nra) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
        Attributes::non_resource(
            nra["verb"].as_str().unwrap_or_default(),
            nra["path"].as_str().unwrap_or_default(),
        )
    } else {
        return Err(ApiError::BadRequest(
            "exactly one of spec.resourceAttributes and spec.nonResourceAttributes must be set"
                .into(),
        ));
    };
    if attrs.verb.is_empty() {
        return Err(ApiError::BadRequest(
            "the verb of the review is required".into(),
        ));
    }
    let status = match policy.authorize(&user, &attrs) {
        Decision::Allow(reason) => {
            json!({"allowed": true, "reason": format!("RBAC: allowed by {reason}")})
        }
        Decision::Deny => json!({"allowed": false}),
    };
    review["status"] = status;
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!(kind);
    if review.get("metadata").is_none() {
        review["metadata"] = json!({});
    }
    Ok(review)
}

/// Answers a SelfSubjectRulesReview (`kubectl auth can-i --list`).
pub fn rules_review(
    policy: &Policy,
    user: &UserInfo,
    mut review: Value,
) -> Result<Value, ApiError> {
    let namespace = review["spec"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in policy.rules_for(user, &namespace) {
        if rule
            .non_resource_urls
            .as_ref()
            .is_some_and(|u| !u.is_empty())
        {
            non_resource_rules
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        } else {
            resource_rules.push(json!({
                "verbs": rule.verbs,
                "apiGroups": rule.api_groups.unwrap_or_default(),
                "resources": rule.resources.unwrap_or_default(),
                "resourceNames": rule.resource_names.unwrap_or_default(),
            }));
        }
    }
    review["apiVersion"] = json!("authorization.k8s.io/v1");
    review["kind"] = json!("SelfSubjectRulesReview");
    review["status"] = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    });
    Ok(review)
}

/// Answers a SelfSubjectReview (`kubectl auth whoami`).
pub fn self_subject_review(user: &UserInfo) -> Value {
    json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
        "metadata": {},
        "status": {"userInfo": {"username": user.name, "groups": user.groups}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::rest::path;

    fn attrs(method: http::Method, p: &str) -> Attributes {
        let (raw, query) = p.split_once('?').unwrap_or((p, ""));
        request_attributes(&method, raw, path::parse(raw).as_ref(), query)
    }

    #[test]
    fn http_requests_map_to_kubernetes_verbs() {
        let a = attrs(http::Method::GET, "/api/v1/namespaces/default/pods");
        assert_eq!(
            (a.verb.as_str(), a.namespace.as_str(), a.resource.as_str()),
            ("list", "default", "pods")
        );
        assert_eq!(
            attrs(http::Method::GET, "/api/v1/pods?watch=true").verb,
            "watch"
        );
        let get = attrs(
            http::Method::GET,
            "/apis/apps/v1/namespaces/ns/deployments/web/scale",
        );
        assert_eq!(
            (
                get.verb.as_str(),
                get.api_group.as_str(),
                get.subresource.as_str(),
                get.name.as_str()
            ),
            ("get", "apps", "scale", "web")
        );
        assert_eq!(
            attrs(http::Method::DELETE, "/api/v1/namespaces/ns/pods").verb,
            "deletecollection"
        );
        assert_eq!(
            attrs(http::Method::DELETE, "/api/v1/namespaces/ns/pods/p").verb,
            "delete"
        );
        assert_eq!(attrs(http::Method::PATCH, "/api/v1/nodes/n1").verb, "patch");
        let ns = attrs(http::Method::DELETE, "/api/v1/namespaces/team");
        assert_eq!(
            (
                ns.resource.as_str(),
                ns.namespace.as_str(),
                ns.name.as_str()
            ),
            ("namespaces", "team", "team")
        );
        let version = attrs(http::Method::GET, "/version");
        assert!(!version.resource_request);
        assert_eq!(
            (version.verb.as_str(), version.path.as_str()),
            ("get", "/version")
        );
    }

    #[test]
    fn forbidden_messages_read_like_kubernetes() {
        let alice = UserInfo::new("alice", []);
        let delete = Attributes::resource("delete", "", "pods", "default", "web");
        assert_eq!(
            forbidden(&alice, &delete).to_string(),
            r#"pods "web" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "default""#
        );
        let list = Attributes::resource("list", "apps", "deployments", "", "");
        assert_eq!(
            forbidden(&alice, &list).to_string(),
            r#"deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope"#
        );
    }

    #[test]
    fn access_reviews_answer_for_the_right_user() {
        let admin_role = json!({"metadata": {"name": "cluster-admin"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
        let masters = json!({"metadata": {"name": "m"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "Group", "name": "system:masters"}]});
        let policy = Policy::compile(&[admin_role], &[], &[masters], &[]);
        let root = UserInfo::new("root", ["system:masters".to_owned()]);
        let alice = UserInfo::new("alice", []);
        let review = json!({"kind": "SelfSubjectAccessReview", "spec": {"resourceAttributes":
            {"verb": "delete", "resource": "pods", "namespace": "default"}}});
        assert_eq!(
            access_review(&policy, &root, review.clone()).unwrap()["status"]["allowed"],
            true
        );
        assert_eq!(
            access_review(&policy, &alice, review).unwrap()["status"]["allowed"],
            false
        );
        // A SubjectAccessReview asks about the user in its spec, not the requester.
        let sar = json!({"kind": "SubjectAccessReview", "spec": {"user": "alice",
            "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "default"}}});
        assert_eq!(
            access_review(&policy, &root, sar).unwrap()["status"]["allowed"],
            false
        );
        let empty = json!({"kind": "SelfSubjectAccessReview", "spec": {}});
        assert!(matches!(
            access_review(&policy, &root, empty),
            Err(ApiError::BadRequest(_))
        ));
        let rules =
            rules_review(&policy, &root, json!({"spec": {"namespace": "default"}})).unwrap();
        assert_eq!(rules["status"]["resourceRules"][0]["verbs"][0], "*");
        assert_eq!(
            self_subject_review(&alice)["status"]["userInfo"]["username"],
            "alice"
        );
    }
}
