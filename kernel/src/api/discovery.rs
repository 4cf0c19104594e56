//! API discovery documents: `/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`
//! in their legacy form, and the aggregated form (`apidiscovery.k8s.io` v2 and
//! v2beta1) that kubectl asks for first.
//!
//! Everything here is a pure function of the [`Registry`]; the REST layer picks
//! a representation with [`negotiate`] and serves the returned JSON with
//! [`DiscoveryFormat::content_type`].

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};

/// Media type of aggregated discovery, v2 (Kubernetes 1.30+).
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// Media type of aggregated discovery, v2beta1 (Kubernetes 1.26–1.32 clients).
pub const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which representation of `/api` or `/apis` a client gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiscoveryFormat {
    /// `APIVersions` for `/api`, `APIGroupList` for `/apis`.
    Legacy,
    /// `APIGroupDiscoveryList` of `apidiscovery.k8s.io/v2`.
    AggregatedV2,
    /// `APIGroupDiscoveryList` of `apidiscovery.k8s.io/v2beta1`.
    AggregatedV2Beta1,
}

impl DiscoveryFormat {
    /// The `Content-Type` of the response. client-go decides how to decode the
    /// body from exactly these parameters, so aggregated answers must echo them.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Legacy => "application/json",
            Self::AggregatedV2 => AGGREGATED_V2,
            Self::AggregatedV2Beta1 => AGGREGATED_V2BETA1,
        }
    }

    /// The `apidiscovery.k8s.io` version, `None` for the legacy format.
    pub fn aggregated_version(self) -> Option<&'static str> {
        match self {
            Self::Legacy => None,
            Self::AggregatedV2 => Some("v2"),
            Self::AggregatedV2Beta1 => Some("v2beta1"),
        }
    }
}

/// Picks the representation for an `Accept` header value (`None` when the
/// header is absent). Media ranges are tried by descending `q`, in header
/// order among equals; the first aggregated one we serve wins, otherwise the
/// legacy JSON form.
pub fn negotiate(accept: Option<&str>) -> DiscoveryFormat {
    let Some(accept) = accept else {
        return DiscoveryFormat::Legacy;
    };
    let mut ranges: Vec<(f32, DiscoveryFormat)> = accept
        .split(',')
        .filter_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next()?.to_ascii_lowercase();
            let (mut g, mut v, mut as_, mut q) = (None, None, None, 1.0f32);
            for param in parts {
                let Some((k, val)) = param.split_once('=') else {
                    continue;
                };
                let val = val.trim().trim_matches('"');
                match k.trim() {
                    "g" => g = Some(val),
                    "v" => v = Some(val),
                    "as" => as_ = Some(val),
                    "q" => q = val.parse().unwrap_or(0.0),
                    _ => {}
                }
            }
            if q <= 0.0 {
                return None;
            }
            let format = match (media.as_str(), g, v, as_) {
                (
                    "application/json",
                    Some("apidiscovery.k8s.io"),
                    Some(v),
                    Some("APIGroupDiscoveryList"),
                ) => match v {
                    "v2" => DiscoveryFormat::AggregatedV2,
                    "v2beta1" => DiscoveryFormat::AggregatedV2Beta1,
                    _ => return None,
                },
                // Any other acceptable range (plain JSON, */*, protobuf...) means
                // the client can take the legacy form.
                _ => DiscoveryFormat::Legacy,
            };
            Some((q, format))
        })
        .collect();
    // Stable sort keeps header order among equal q values.
    ranges.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(Ordering::Equal));
    ranges
        .first()
        .map(|(_, f)| *f)
        .unwrap_or(DiscoveryFormat::Legacy)
}

/// `/api` in the legacy form: `APIVersions` with the one core version.
/// `server_address` is what clients should dial, e.g. `127.0.0.1:6443`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            { "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }
        ],
    })
}

/// `/api/v1`: the `APIResourceList` of the core group.
pub fn core_resource_list(registry: &Registry) -> Value {
    resource_list(registry, "", "v1")
}

/// `/apis/<group>/<version>`: the `APIResourceList`, `None` when the group
/// version serves nothing (a 404).
pub fn group_resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let any = registry
        .all()
        .iter()
        .any(|rt| rt.group == group && rt.version == version);
    any.then(|| resource_list(registry, group, version))
}

/// `/apis`: the `APIGroupList` of every named group, in registration order.
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = named_groups(registry)
        .iter()
        .map(|g| api_group(&g.name, &g.versions))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/apis/<group>`: one `APIGroup`, `None` when the group is not served.
pub fn group(registry: &Registry, group: &str) -> Option<Value> {
    named_groups(registry)
        .into_iter()
        .find(|g| g.name == group)
        .map(|g| {
            let mut v = api_group(&g.name, &g.versions);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("kind".into(), "APIGroup".into());
                obj.insert("apiVersion".into(), "v1".into());
            }
            v
        })
}

/// `/api` (`core == true`) or `/apis` as an aggregated `APIGroupDiscoveryList`
/// of the given `apidiscovery.k8s.io` version (`v2` or `v2beta1`; both share
/// one JSON shape).
pub fn aggregated(registry: &Registry, core: bool, version: &str) -> Value {
    let types = registry.all();
    let items: Vec<Value> = if core {
        vec![aggregated_group(&types, "", &["v1".to_owned()])]
    } else {
        named_groups(registry)
            .iter()
            .map(|g| aggregated_group(&types, &g.name, &g.versions))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

/// A named group and its versions, preferred version first.
struct GroupVersions {
    name: String,
    versions: Vec<String>,
}

/// Every named group in registration order, versions sorted by Kubernetes
/// version priority (the first one is the preferred version).
fn named_groups(registry: &Registry) -> Vec<GroupVersions> {
    let mut groups: Vec<GroupVersions> = Vec::new();
    for rt in registry.all().iter().filter(|rt| !rt.group.is_empty()) {
        match groups.iter_mut().find(|g| g.name == rt.group) {
            Some(g) if !g.versions.contains(&rt.version) => g.versions.push(rt.version.clone()),
            Some(_) => {}
            None => groups.push(GroupVersions {
                name: rt.group.clone(),
                versions: vec![rt.version.clone()],
            }),
        }
    }
    for g in &mut groups {
        g.versions.sort_by(|a, b| compare_versions(a, b));
    }
    groups
}

fn api_group(name: &str, versions: &[String]) -> Value {
    let gv = |v: &String| json!({ "groupVersion": format!("{name}/{v}"), "version": v });
    json!({
        "name": name,
        "versions": versions.iter().map(gv).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map(gv).unwrap_or(Value::Null),
    })
}

/// Orders versions as Kubernetes does: GA before beta before alpha, higher
/// numbers first, then anything else alphabetically.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn key(v: &str) -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((0, major, 0));
        }
        let (rank, minor) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (2, n)
        } else {
            return None;
        };
        Some((rank, major, minor.parse().ok()?))
    }
    match (key(a), key(b)) {
        (Some((ra, ma, na)), Some((rb, mb, nb))) => ra.cmp(&rb).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// A subresource as discovery shows it.
struct Subresource {
    name: &'static str,
    /// (group, version, kind) of what the subresource returns.
    kind: (String, String, String),
    verbs: &'static [&'static str],
}

/// The subresources of a type: `status`, `scale`, and the pod-only ones the
/// kernel proxies or handles itself.
fn subresources(rt: &ResourceType) -> Vec<Subresource> {
    let own = || (rt.group.clone(), rt.version.clone(), rt.kind.clone());
    let core = |kind: &str| (String::new(), "v1".to_owned(), kind.to_owned());
    let mut out = Vec::new();
    if rt.status_subresource {
        out.push(Subresource {
            name: "status",
            kind: own(),
            verbs: &["get", "patch", "update"],
        });
    }
    if rt.scale.is_some() {
        out.push(Subresource {
            name: "scale",
            kind: ("autoscaling".into(), "v1".into(), "Scale".into()),
            verbs: &["get", "patch", "update"],
        });
    }
    if rt.group.is_empty() && rt.plural == "pods" {
        out.extend([
            Subresource {
                name: "binding",
                kind: core("Binding"),
                verbs: &["create"],
            },
            Subresource {
                name: "eviction",
                kind: ("policy".into(), "v1".into(), "Eviction".into()),
                verbs: &["create"],
            },
            Subresource {
                name: "exec",
                kind: core("PodExecOptions"),
                verbs: &["create", "get"],
            },
            Subresource {
                name: "log",
                kind: core("Pod"),
                verbs: &["get"],
            },
            Subresource {
                name: "portforward",
                kind: core("PodPortForwardOptions"),
                verbs: &["create", "get"],
            },
        ]);
    }
    out
}

/// The legacy `APIResourceList` of one group version: each resource followed
/// by its subresources as `<plural>/<sub>` entries.
fn resource_list(registry: &Registry, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for rt in registry
        .all()
        .iter()
        .filter(|rt| rt.group == group && rt.version == version)
    {
        let mut r = json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": rt.verbs,
        });
        if let Some(obj) = r.as_object_mut() {
            if !rt.short_names.is_empty() {
                obj.insert("shortNames".into(), json!(rt.short_names));
            }
            if !rt.categories.is_empty() {
                obj.insert("categories".into(), json!(rt.categories));
            }
        }
        resources.push(r);
        for sub in subresources(rt) {
            let (g, v, kind) = sub.kind;
            let mut s = json!({
                "name": format!("{}/{}", rt.plural, sub.name),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": kind,
                "verbs": sub.verbs,
            });
            // Only entries whose kind lives elsewhere name their group/version.
            if (g.as_str(), v.as_str()) != (group, version)
                && let Some(obj) = s.as_object_mut()
            {
                obj.insert("group".into(), g.into());
                obj.insert("version".into(), v.into());
            }
            resources.push(s);
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

/// One `APIGroupDiscovery` item: the group with every version and resource.
fn aggregated_group(
    types: &[std::sync::Arc<ResourceType>],
    group: &str,
    versions: &[String],
) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| {
            let resources: Vec<Value> = types
                .iter()
                .filter(|rt| rt.group == group && &rt.version == version)
                .map(|rt| aggregated_resource(rt))
                .collect();
            json!({ "version": version, "resources": resources, "freshness": "Current" })
        })
        .collect();
    let metadata = if group.is_empty() {
        json!({ "creationTimestamp": null })
    } else {
        json!({ "name": group, "creationTimestamp": null })
    };
    json!({ "metadata": metadata, "versions": versions })
}

fn aggregated_resource(rt: &ResourceType) -> Value {
    let subs: Vec<Value> = subresources(rt)
        .into_iter()
        .map(|sub| {
            let (g, v, kind) = sub.kind;
            json!({
                "subresource": sub.name,
                "responseKind": { "group": g, "version": v, "kind": kind },
                "verbs": sub.verbs,
            })
        })
        .collect();
    let mut r = json!({
        "resource": rt.plural,
        "responseKind": { "group": rt.group, "version": rt.version, "kind": rt.kind },
        "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": rt.singular,
        "verbs": rt.verbs,
    });
    if let Some(obj) = r.as_object_mut() {
        if !rt.short_names.is_empty() {
            obj.insert("shortNames".into(), json!(rt.short_names));
        }
        if !rt.categories.is_empty() {
            obj.insert("categories".into(), json!(rt.categories));
        }
        if !subs.is_empty() {
            obj.insert("subresources".into(), subs.into());
        }
    }
    r
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::registry::{Column, ScalePaths, Strategy};

    /// A strategy that knows nothing beyond the required methods.
    pub(crate) struct Plain;

    impl Strategy for Plain {
        fn check_schema(&self, _obj: &Value) -> Result<Vec<String>, String> {
            Ok(Vec::new())
        }
        fn validate(&self, _obj: &Value, _old: Option<&Value>) -> Vec<crate::error::FieldError> {
            Vec::new()
        }
        fn columns(&self) -> Vec<Column> {
            vec![Column::new("Name", "string", 0)]
        }
        fn row(&self, _obj: &Value) -> Vec<Value> {
            Vec::new()
        }
    }

    /// A resource type with default verbs and the given strategy.
    pub(crate) fn rt(
        group: &str,
        version: &str,
        kind: &str,
        namespaced: bool,
        short: &[&str],
        strategy: Arc<dyn Strategy>,
    ) -> ResourceType {
        let plural = format!("{}s", kind.to_ascii_lowercase());
        ResourceType {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            singular: kind.to_ascii_lowercase(),
            plural,
            namespaced,
            short_names: short.iter().map(|s| s.to_string()).collect(),
            categories: vec!["all".into()],
            verbs: ResourceType::default_verbs(),
            status_subresource: true,
            scale: None,
            strategy,
        }
    }

    fn registry() -> Registry {
        let reg = Registry::new();
        reg.register(rt("", "v1", "Pod", true, &["po"], Arc::new(Plain)));
        let mut ns = rt("", "v1", "Namespace", false, &["ns"], Arc::new(Plain));
        ns.categories.clear();
        reg.register(ns);
        let mut deploy = rt(
            "apps",
            "v1",
            "Deployment",
            true,
            &["deploy"],
            Arc::new(Plain),
        );
        deploy.scale = Some(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".status.selector".into()),
        });
        reg.register(deploy);
        reg.register(rt(
            "stable.example.com",
            "v1beta1",
            "CronTab",
            true,
            &["ct"],
            Arc::new(Plain),
        ));
        reg.register(rt(
            "stable.example.com",
            "v1",
            "CronTab",
            true,
            &["ct"],
            Arc::new(Plain),
        ));
        reg
    }

    fn find<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
        list["resources"]
            .as_array()?
            .iter()
            .find(|r| r["name"] == name)
    }

    #[test]
    fn negotiates_aggregated_v2_from_kubectl_accept() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(Some(kubectl)), DiscoveryFormat::AggregatedV2);
        assert_eq!(
            negotiate(Some(kubectl)).content_type(),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
    }

    #[test]
    fn negotiates_v2beta1_legacy_and_q_values() {
        let beta = "application/json; as=APIGroupDiscoveryList; v=v2beta1; g=apidiscovery.k8s.io";
        assert_eq!(negotiate(Some(beta)), DiscoveryFormat::AggregatedV2Beta1);
        assert_eq!(negotiate(Some("application/json")), DiscoveryFormat::Legacy);
        assert_eq!(negotiate(None), DiscoveryFormat::Legacy);
        let low_q = "application/json;q=0.9,application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
        assert_eq!(negotiate(Some(low_q)), DiscoveryFormat::AggregatedV2);
        let unknown = "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList";
        assert_eq!(negotiate(Some(unknown)), DiscoveryFormat::Legacy);
    }

    #[test]
    fn core_list_has_short_names_and_pod_subresources() {
        let list = core_resource_list(&registry());
        assert_eq!(list["groupVersion"], "v1");
        let pods = find(&list, "pods").expect("pods listed");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["kind"], "Pod");
        for sub in [
            "status",
            "log",
            "exec",
            "portforward",
            "binding",
            "eviction",
        ] {
            assert!(find(&list, &format!("pods/{sub}")).is_some(), "pods/{sub}");
        }
        let eviction = find(&list, "pods/eviction").expect("eviction");
        assert_eq!(eviction["group"], "policy");
        assert_eq!(eviction["verbs"], json!(["create"]));
        let ns = find(&list, "namespaces").expect("namespaces");
        assert_eq!(ns["namespaced"], false);
        assert!(ns.get("categories").is_none());
        assert!(find(&list, "namespaces/exec").is_none());
    }

    #[test]
    fn group_list_prefers_ga_and_lists_scale() {
        let reg = registry();
        let groups = group_list(&reg);
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .filter_map(|g| g["name"].as_str())
            .collect();
        assert_eq!(names, ["apps", "stable.example.com"]);
        assert_eq!(
            groups["groups"][1]["preferredVersion"]["groupVersion"],
            "stable.example.com/v1"
        );
        assert_eq!(groups["groups"][1]["versions"][1]["version"], "v1beta1");

        let apps = group_resource_list(&reg, "apps", "v1").expect("apps/v1");
        let scale = find(&apps, "deployments/scale").expect("scale");
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["group"], "autoscaling");
        let status = find(&apps, "deployments/status").expect("status");
        assert!(status.get("group").is_none());
        assert!(group_resource_list(&reg, "apps", "v2").is_none());
        assert_eq!(group(&reg, "apps").expect("apps")["kind"], "APIGroup");
        assert!(group(&reg, "batch").is_none());
    }

    #[test]
    fn aggregated_documents_carry_kinds_scope_and_subresources() {
        let reg = registry();
        let core = aggregated(&reg, true, "v2");
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2");
        let v1 = &core["items"][0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let pods = &v1["resources"][0];
        assert_eq!(pods["resource"], "pods");
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["responseKind"]["kind"], "Pod");
        let subs = pods["subresources"].as_array().expect("subresources");
        assert!(subs.iter().all(|s| {
            s["responseKind"]["kind"]
                .as_str()
                .is_some_and(|k| !k.is_empty())
        }));
        assert_eq!(v1["resources"][1]["scope"], "Cluster");

        let apis = aggregated(&reg, false, "v2beta1");
        assert_eq!(apis["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert_eq!(apis["items"][0]["metadata"]["name"], "apps");
        let deploy = &apis["items"][0]["versions"][0]["resources"][0];
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        let scale = deploy["subresources"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["subresource"] == "scale"))
            .expect("scale");
        assert_eq!(scale["responseKind"]["group"], "autoscaling");
        assert_eq!(apis["items"][1]["versions"][0]["version"], "v1");
    }

    #[test]
    fn version_priority_matches_kubernetes() {
        let mut v = vec![
            "v1alpha1", "v2beta1", "foo", "v1", "v2", "v1beta2", "v1beta1",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            [
                "v2", "v1", "v2beta1", "v1beta2", "v1beta1", "v1alpha1", "foo"
            ]
        );
    }

    #[test]
    fn api_versions_names_v1_and_address() {
        let v = api_versions("127.0.0.1:6443");
        assert_eq!(v["versions"], json!(["v1"]));
        assert_eq!(
            v["serverAddressByClientCIDRs"][0]["serverAddress"],
            "127.0.0.1:6443"
        );
    }
}
