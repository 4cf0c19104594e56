//! The catalog of built-in types: every served Kubernetes type plus
//! `kerno.dev/v1` Plugin, with scope, names, subresources and strategy.

use std::sync::Arc;

use k8s_openapi::api::{apps, batch, coordination, core, discovery, networking, rbac, scheduling};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::tables::{self as t, created_at_columns, created_at_row};
use super::typed::{Hooks, TypedStrategy};
use super::validation::NameRule;
use super::{
    Registry, ResourceType, ScalePaths, crd, defaults as d, fields, plugin, pod_table,
    rbac as rbac_rules, rules, rules_core, tables_apps as ta, tables_more as tm,
};

/// Static description of one built-in type.
struct Def {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
}

const fn def(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Def {
    Def {
        group,
        kind,
        plural,
        namespaced,
        short: &[],
        all: false,
        status: false,
        scale: false,
    }
}

impl Def {
    const fn short(mut self, short: &'static [&'static str]) -> Self {
        self.short = short;
        self
    }
    const fn all(mut self) -> Self {
        self.all = true;
        self
    }
    const fn status(mut self) -> Self {
        self.status = true;
        self
    }
    const fn scale(mut self) -> Self {
        self.scale = true;
        self
    }

    fn build<T>(self, hooks: Hooks) -> ResourceType
    where
        T: serde::de::DeserializeOwned + serde::Serialize + schemars::JsonSchema + 'static,
    {
        ResourceType {
            group: self.group.into(),
            // Every built-in type here is served at v1 (kerno.dev included).
            version: "v1".into(),
            kind: self.kind.into(),
            plural: self.plural.into(),
            singular: self.kind.to_lowercase(),
            namespaced: self.namespaced,
            short_names: self.short.iter().map(|s| (*s).to_owned()).collect(),
            categories: if self.all {
                vec!["all".into()]
            } else {
                Vec::new()
            },
            verbs: ResourceType::default_verbs(),
            status_subresource: self.status,
            scale: self.scale.then(|| ScalePaths {
                spec_replicas: ".spec.replicas".into(),
                status_replicas: ".status.replicas".into(),
                label_selector: None,
            }),
            strategy: Arc::new(TypedStrategy::<T>::new(self.namespaced, hooks)),
        }
    }
}

fn sub() -> Hooks {
    Hooks::new(NameRule::Subdomain)
}

/// Every built-in type, in discovery order.
pub fn builtin_types() -> Vec<ResourceType> {
    use core::v1 as c;
    vec![
        def("", "Namespace", "namespaces", false)
            .short(&["ns"])
            .status()
            .build::<c::Namespace>(
                Hooks::new(NameRule::Label)
                    .default(d::namespace)
                    .table(t::namespace_columns, t::namespace_row)
                    .fields(fields::NAMESPACE),
            ),
        def("", "Pod", "pods", true)
            .short(&["po"])
            .all()
            .status()
            .build::<c::Pod>(
                sub()
                    .default(d::pod)
                    .validate(rules::pod)
                    .table(pod_table::pod_columns, pod_table::pod_row)
                    .fields(fields::POD),
            ),
        def("", "Node", "nodes", false)
            .short(&["no"])
            .status()
            .build::<c::Node>(
                sub()
                    .table(t::node_columns, t::node_row)
                    .fields(fields::NODE),
            ),
        def("", "Service", "services", true)
            .short(&["svc"])
            .all()
            .status()
            .build::<c::Service>(
                Hooks::new(NameRule::Dns1035)
                    .default(d::service)
                    .validate(rules_core::service)
                    .table(t::service_columns, t::service_row),
            ),
        def("", "Endpoints", "endpoints", true)
            .short(&["ep"])
            .build::<c::Endpoints>(sub().table(t::endpoints_columns, t::endpoints_row)),
        def("", "ConfigMap", "configmaps", true)
            .short(&["cm"])
            .build::<c::ConfigMap>(
                sub()
                    .validate(rules_core::configmap)
                    .table(t::configmap_columns, t::configmap_row),
            ),
        def("", "Secret", "secrets", true).build::<c::Secret>(
            sub()
                .default(d::secret)
                .validate(rules_core::secret)
                .table(t::secret_columns, t::secret_row)
                .fields(fields::SECRET),
        ),
        def("", "ServiceAccount", "serviceaccounts", true)
            .short(&["sa"])
            .build::<c::ServiceAccount>(
                sub().table(t::serviceaccount_columns, t::serviceaccount_row),
            ),
        def("", "Event", "events", true)
            .short(&["ev"])
            .build::<c::Event>(
                sub()
                    .table(t::event_columns, t::event_row)
                    .fields(fields::EVENT),
            ),
        def("", "PersistentVolume", "persistentvolumes", false)
            .short(&["pv"])
            .status()
            .build::<c::PersistentVolume>(sub().default(d::pv).table(tm::pv_columns, tm::pv_row)),
        def("", "PersistentVolumeClaim", "persistentvolumeclaims", true)
            .short(&["pvc"])
            .status()
            .build::<c::PersistentVolumeClaim>(
                sub().default(d::pvc).table(tm::pvc_columns, tm::pvc_row),
            ),
        def("", "LimitRange", "limitranges", true)
            .short(&["limits"])
            .build::<c::LimitRange>(sub().table(created_at_columns, created_at_row)),
        def("", "ResourceQuota", "resourcequotas", true)
            .short(&["quota"])
            .status()
            .build::<c::ResourceQuota>(sub().table(tm::quota_columns, tm::quota_row)),
        def("apps", "Deployment", "deployments", true)
            .short(&["deploy"])
            .all()
            .status()
            .scale()
            .build::<apps::v1::Deployment>(
                sub()
                    .default(d::deployment)
                    .validate(rules::deployment)
                    .table(ta::deployment_columns, ta::deployment_row),
            ),
        def("apps", "ReplicaSet", "replicasets", true)
            .short(&["rs"])
            .all()
            .status()
            .scale()
            .build::<apps::v1::ReplicaSet>(
                sub()
                    .default(d::replicaset)
                    .validate(rules::replicaset)
                    .table(ta::replicaset_columns, ta::replicaset_row)
                    .fields(fields::REPLICASET),
            ),
        def("apps", "DaemonSet", "daemonsets", true)
            .short(&["ds"])
            .all()
            .status()
            .build::<apps::v1::DaemonSet>(
                sub()
                    .default(d::daemonset)
                    .validate(rules::daemonset)
                    .table(ta::daemonset_columns, ta::daemonset_row),
            ),
        def("apps", "StatefulSet", "statefulsets", true)
            .short(&["sts"])
            .all()
            .status()
            .scale()
            .build::<apps::v1::StatefulSet>(
                sub()
                    .default(d::statefulset)
                    .validate(rules::statefulset)
                    .table(ta::statefulset_columns, ta::statefulset_row),
            ),
        def("apps", "ControllerRevision", "controllerrevisions", true)
            .build::<apps::v1::ControllerRevision>(
                sub().table(tm::controllerrevision_columns, tm::controllerrevision_row),
            ),
        def("batch", "Job", "jobs", true)
            .all()
            .status()
            .build::<batch::v1::Job>(
                sub()
                    .default(d::job)
                    .validate(rules::job)
                    .table(ta::job_columns, ta::job_row)
                    .fields(fields::JOB),
            ),
        def("batch", "CronJob", "cronjobs", true)
            .short(&["cj"])
            .all()
            .status()
            .build::<batch::v1::CronJob>(
                sub()
                    .default(d::cronjob)
                    .validate(rules::cronjob)
                    .table(ta::cronjob_columns, ta::cronjob_row),
            ),
        def("networking.k8s.io", "Ingress", "ingresses", true)
            .short(&["ing"])
            .status()
            .build::<networking::v1::Ingress>(sub().table(tm::ingress_columns, tm::ingress_row)),
        def("networking.k8s.io", "IngressClass", "ingressclasses", false)
            .build::<networking::v1::IngressClass>(
            sub().table(tm::ingressclass_columns, tm::ingressclass_row),
        ),
        def(
            "networking.k8s.io",
            "NetworkPolicy",
            "networkpolicies",
            true,
        )
        .short(&["netpol"])
        .build::<networking::v1::NetworkPolicy>(sub().table(tm::netpol_columns, tm::netpol_row)),
        def("discovery.k8s.io", "EndpointSlice", "endpointslices", true)
            .build::<discovery::v1::EndpointSlice>(
            sub().table(tm::endpointslice_columns, tm::endpointslice_row),
        ),
        def("coordination.k8s.io", "Lease", "leases", true)
            .build::<coordination::v1::Lease>(sub().table(tm::lease_columns, tm::lease_row)),
        def(
            "scheduling.k8s.io",
            "PriorityClass",
            "priorityclasses",
            false,
        )
        .short(&["pc"])
        .build::<scheduling::v1::PriorityClass>(sub().table(created_at_columns, created_at_row)),
        def("rbac.authorization.k8s.io", "Role", "roles", true).build::<rbac::v1::Role>(
            Hooks::new(NameRule::PathSegment)
                .validate(rbac_rules::role)
                .table(created_at_columns, created_at_row),
        ),
        def(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            "clusterroles",
            false,
        )
        .build::<rbac::v1::ClusterRole>(
            Hooks::new(NameRule::PathSegment)
                .validate(rbac_rules::cluster_role)
                .table(created_at_columns, created_at_row),
        ),
        def(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            "rolebindings",
            true,
        )
        .build::<rbac::v1::RoleBinding>(
            Hooks::new(NameRule::PathSegment)
                .default(d::binding_subjects)
                .validate(rbac_rules::role_binding)
                .table(tm::binding_columns, tm::binding_row),
        ),
        def(
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
        )
        .build::<rbac::v1::ClusterRoleBinding>(
            Hooks::new(NameRule::PathSegment)
                .default(d::binding_subjects)
                .validate(rbac_rules::cluster_role_binding)
                .table(tm::binding_columns, tm::binding_row),
        ),
        def(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        )
        .short(&["crd", "crds"])
        .status()
        .build::<CustomResourceDefinition>(
            sub()
                .default(crd::default_crd)
                .validate(crd::validate_crd)
                .table(created_at_columns, created_at_row),
        ),
        def("kerno.dev", "Plugin", "plugins", false)
            .status()
            .build::<plugin::Plugin>(
                sub()
                    .validate(plugin::validate)
                    .table(tm::plugin_columns, tm::plugin_row),
            ),
    ]
}

/// Registers every built-in type in `registry`.
pub fn register_builtins(registry: &Registry) {
    for rt in builtin_types() {
        registry.register(rt);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn catalog_is_complete_and_consistent() {
        let registry = Registry::new();
        register_builtins(&registry);
        assert_eq!(registry.all().len(), 32);
        let deploy = registry
            .get("apps", "v1", "deployments")
            .expect("deployments registered");
        assert_eq!(deploy.short_names, vec!["deploy"]);
        assert_eq!(deploy.categories, vec!["all"]);
        assert!(deploy.status_subresource);
        assert_eq!(
            deploy.scale.as_ref().map(|s| s.spec_replicas.as_str()),
            Some(".spec.replicas")
        );
        let ns = registry
            .get("", "v1", "namespaces")
            .expect("namespaces registered");
        assert!(!ns.namespaced);
        let crd = registry
            .by_kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition")
            .expect("crd");
        assert_eq!(crd.short_names, vec!["crd", "crds"]);
        let plugin = registry.get("kerno.dev", "v1", "plugins").expect("plugins");
        assert!(!plugin.namespaced);
        assert_eq!(
            plugin
                .strategy
                .columns()
                .iter()
                .map(|c| c.name.as_str())
                .take(6)
                .collect::<Vec<_>>(),
            ["Name", "Kind", "Version", "Phase", "Restarts", "Age"]
        );
        for rt in registry.all() {
            let cols = rt.strategy.columns();
            assert!(
                cols.iter().any(|c| c.format == "name"),
                "{rt:?} has a name column"
            );
            let row = rt.strategy.row(&json!({"metadata": {"name": "x"}}));
            assert_eq!(row.len(), cols.len(), "{rt:?} row width");
        }
    }

    /// Defaults only add fields the types know, and defaulted minimal
    /// objects pass validation.
    #[test]
    fn defaults_are_known_fields_and_valid() {
        let tmpl = json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                "readinessProbe": {"httpGet": {"port": 80}}}]}});
        let sel = json!({"matchLabels": {"app": "web"}});
        let mut job_tmpl = tmpl.clone();
        job_tmpl["spec"]["restartPolicy"] = json!("Never");
        let cases = [
            (
                "pods",
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d"}, "spec": tmpl["spec"]}),
            ),
            (
                "deployments",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w", "namespace": "d"},
                "spec": {"selector": sel, "template": tmpl}}),
            ),
            (
                "replicasets",
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "w", "namespace": "d"},
                "spec": {"selector": sel, "template": tmpl}}),
            ),
            (
                "statefulsets",
                json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "w", "namespace": "d"},
                "spec": {"selector": sel, "serviceName": "w", "template": tmpl,
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
            ),
            (
                "daemonsets",
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "w", "namespace": "d"},
                "spec": {"selector": sel, "template": tmpl}}),
            ),
            (
                "jobs",
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "d"},
                "spec": {"template": job_tmpl}}),
            ),
            (
                "cronjobs",
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "d"},
                "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": job_tmpl}}}}),
            ),
            (
                "services",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "d"},
                "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}}),
            ),
            (
                "namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
            ),
            (
                "secrets",
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"}, "data": {"k": "dg=="}}),
            ),
            (
                "persistentvolumes",
                json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
                "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/x"}}}),
            ),
            (
                "persistentvolumeclaims",
                json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c", "namespace": "d"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
            ),
            (
                "customresourcedefinitions",
                json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.com"},
                "spec": {"group": "example.com", "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}}),
            ),
        ];
        let types = builtin_types();
        for (plural, mut obj) in cases {
            let rt = types
                .iter()
                .find(|t| t.plural == plural)
                .expect("registered");
            rt.strategy.default(&mut obj);
            assert_eq!(
                rt.strategy.check_schema(&obj),
                Ok(vec![]),
                "{plural}: {obj}"
            );
            let errs = rt.strategy.validate(&obj, None);
            assert!(errs.is_empty(), "{plural}: {errs:?}");
            assert!(
                rt.strategy.validate(&obj, Some(&obj)).is_empty(),
                "{plural} update to itself"
            );
        }
    }

    #[test]
    fn strategies_run_end_to_end() {
        let types = builtin_types();
        let pods = types.iter().find(|t| t.plural == "pods").expect("pods");
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]}});
        assert_eq!(pods.strategy.check_schema(&pod), Ok(vec![]));
        pods.strategy.default(&mut pod);
        assert_eq!(pods.strategy.check_schema(&pod), Ok(vec![]));
        assert!(pods.strategy.validate(&pod, None).is_empty());
        assert_eq!(
            pods.strategy
                .field_value(&pod, "spec.restartPolicy")
                .as_deref(),
            Some("Always")
        );
        let svc = types
            .iter()
            .find(|t| t.plural == "services")
            .expect("services");
        let bad = json!({"metadata": {"name": "1web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}});
        let errs = svc.strategy.validate(&bad, None);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("a DNS-1035 label"));
        let ns = types
            .iter()
            .find(|t| t.plural == "namespaces")
            .expect("namespaces");
        let errs = ns
            .strategy
            .validate(&json!({"metadata": {"name": "a.b"}}), None);
        assert!(errs[0].message.contains("RFC 1123 label"));
    }
}
