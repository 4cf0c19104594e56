//! Parses Kubernetes resource paths:
//! `/api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]` and the
//! same under `/apis/{group}/{version}`.

/// A parsed resource path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group, empty for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Namespace, for namespaced paths.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub resource: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, `log`, ...).
    pub subresource: Option<String>,
}

/// Parses `path`; `None` when it is not a resource path (discovery, unknown).
pub fn parse(path: &str) -> Option<ResourcePath> {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let (group, version, rest) = match segments.first().map(String::as_str) {
        Some("api") if segments.len() >= 3 => (String::new(), segments[1].clone(), &segments[2..]),
        Some("apis") if segments.len() >= 4 => {
            (segments[1].clone(), segments[2].clone(), &segments[3..])
        }
        _ => return None,
    };
    let namespaced_path = rest.len() >= 3
        && rest[0] == "namespaces"
        && !(group.is_empty() && matches!(rest[2].as_str(), "status" | "finalize"));
    let (namespace, rest) = if namespaced_path {
        (Some(rest[1].clone()), &rest[2..])
    } else {
        (None, rest)
    };
    if rest.is_empty() || rest.len() > 3 {
        return None;
    }
    Some(ResourcePath {
        group,
        version,
        namespace,
        resource: rest[0].clone(),
        name: rest.get(1).cloned(),
        subresource: rest.get(2).cloned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(
        path: &str,
    ) -> (
        String,
        Option<String>,
        String,
        Option<String>,
        Option<String>,
    ) {
        let r = parse(path).expect("parses");
        (r.group, r.namespace, r.resource, r.name, r.subresource)
    }

    #[test]
    fn core_paths() {
        assert_eq!(
            p("/api/v1/pods"),
            ("".into(), None, "pods".into(), None, None)
        );
        assert_eq!(
            p("/api/v1/namespaces/default"),
            (
                "".into(),
                None,
                "namespaces".into(),
                Some("default".into()),
                None
            )
        );
        assert_eq!(
            p("/api/v1/namespaces/default/status"),
            (
                "".into(),
                None,
                "namespaces".into(),
                Some("default".into()),
                Some("status".into())
            )
        );
        assert_eq!(
            p("/api/v1/namespaces/ns1/pods/web/log"),
            (
                "".into(),
                Some("ns1".into()),
                "pods".into(),
                Some("web".into()),
                Some("log".into())
            )
        );
        assert_eq!(
            p("/api/v1/namespaces/ns1/pods"),
            ("".into(), Some("ns1".into()), "pods".into(), None, None)
        );
    }

    #[test]
    fn group_paths() {
        assert_eq!(
            p("/apis/apps/v1/namespaces/a/deployments/web/scale"),
            (
                "apps".into(),
                Some("a".into()),
                "deployments".into(),
                Some("web".into()),
                Some("scale".into())
            )
        );
        assert_eq!(
            p("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/x.example.com"),
            (
                "apiextensions.k8s.io".into(),
                None,
                "customresourcedefinitions".into(),
                Some("x.example.com".into()),
                None
            )
        );
        assert!(parse("/apis/apps/v1").is_none());
        assert!(parse("/api/v1/a/b/c/d/e/f").is_none());
        assert!(parse("/healthz").is_none());
    }
}
