//! Round trips through `k8s-pb` (prost types generated from Kubernetes'
//! own `generated.proto` files): encode an object as client-go would, decode
//! it with the table, compare with the JSON kubectl would have sent.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::policy::v1 as policy;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::json;

use super::*;

mod full;

/// Wraps an object's protobuf in the `k8s\0` + `runtime.Unknown` envelope,
/// with the empty content fields gogo always writes.
pub(super) fn envelope(api_version: &str, kind: &str, object: &impl prost::Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

pub(super) fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The metadata of a fresh object as client-go encodes it: non-pointer
/// fields written even when empty, the zero creationTimestamp as `{}`.
fn fresh_meta(name: &str, labels: &[(&str, &str)]) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name.into()),
        generate_name: Some(String::new()),
        namespace: Some(String::new()),
        self_link: Some(String::new()),
        uid: Some(String::new()),
        resource_version: Some(String::new()),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels: string_map(labels),
        ..Default::default()
    }
}

#[test]
fn deployment_as_kubectl_create_deployment_sends_it() {
    let labels = [("app", "web")];
    let container = core::Container {
        name: Some("busybox".into()),
        image: Some("busybox".into()),
        working_dir: Some(String::new()),
        resources: Some(core::ResourceRequirements::default()),
        termination_message_path: Some(String::new()),
        image_pull_policy: Some(String::new()),
        stdin: Some(false),
        tty: Some(false),
        ..Default::default()
    };
    let deployment = apps::Deployment {
        metadata: Some(fresh_meta("web", &labels)),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: string_map(&labels),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(fresh_meta("", &labels)),
                spec: Some(core::PodSpec {
                    containers: vec![container],
                    restart_policy: Some(String::new()),
                    dns_policy: Some(String::new()),
                    host_network: Some(false),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy::default()),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            replicas: Some(0),
            ..Default::default()
        }),
    };
    let decoded = decode(&envelope("apps/v1", "Deployment", &deployment)).ok();
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "busybox", "image": "busybox", "resources": {}}]},
            },
            "strategy": {},
        },
        "status": {},
    });
    assert_eq!(decoded, Some(expected));
}

#[test]
fn secret_bytes_become_base64_and_config_map_strings_stay() {
    let secret = core::Secret {
        metadata: Some(meta::ObjectMeta {
            name: Some("s".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        }),
        data: [
            ("password".to_owned(), b"hunter2\xff".to_vec()),
            ("empty".to_owned(), Vec::new()),
        ]
        .into(),
        r#type: Some("Opaque".into()),
        immutable: Some(false),
        ..Default::default()
    };
    let decoded = decode(&envelope("v1", "Secret", &secret)).ok();
    assert_eq!(
        decoded,
        Some(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns"},
            // `immutable` is a pointer: an explicit false is kept.
            "immutable": false,
            "data": {"empty": "", "password": "aHVudGVyMv8="},
            "type": "Opaque",
        }))
    );
    let config_map = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: Some("c".into()),
            ..Default::default()
        }),
        data: string_map(&[("k", "v"), ("blank", "")]),
        ..Default::default()
    };
    let decoded = decode(&envelope("v1", "ConfigMap", &config_map)).ok();
    assert_eq!(
        decoded,
        Some(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"blank": "", "k": "v"}})
        )
    );
}

#[test]
fn service_ports_keep_port_and_render_int_or_string() {
    let port = |name: &str, port: i32, target: IntOrString| core::ServicePort {
        name: Some(name.into()),
        protocol: Some("TCP".into()),
        port: Some(port),
        target_port: Some(target),
        node_port: Some(0),
        ..Default::default()
    };
    let service = core::Service {
        metadata: Some(meta::ObjectMeta {
            name: Some("web".into()),
            ..Default::default()
        }),
        spec: Some(core::ServiceSpec {
            ports: vec![
                port(
                    "80-8080",
                    80,
                    IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: Some(String::new()),
                    },
                ),
                port(
                    "named",
                    0,
                    IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("http".into()),
                    },
                ),
                port(
                    "default",
                    81,
                    IntOrString {
                        r#type: Some(0),
                        int_val: Some(0),
                        str_val: Some(String::new()),
                    },
                ),
            ],
            selector: string_map(&[("app", "web")]),
            cluster_ip: Some(String::new()),
            r#type: Some("ClusterIP".into()),
            health_check_node_port: Some(0),
            publish_not_ready_addresses: Some(false),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            ..Default::default()
        }),
    };
    let decoded = decode(&envelope("v1", "Service", &service)).ok();
    assert_eq!(
        decoded,
        Some(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {
                "ports": [
                    {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "named", "protocol": "TCP", "port": 0, "targetPort": "http"},
                    {"name": "default", "protocol": "TCP", "port": 81},
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP",
            },
            "status": {},
        }))
    );
}

#[test]
fn pod_spec_inlines_handlers_volume_sources_and_references() {
    let quantities = |pairs: &[(&str, &str)]| -> BTreeMap<String, Quantity> {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    (*k).to_owned(),
                    Quantity {
                        string: Some((*v).to_owned()),
                    },
                )
            })
            .collect()
    };
    let container = core::Container {
        name: Some("app".into()),
        image: Some("busybox:1.36".into()),
        command: vec!["sh".into(), "-c".into()],
        args: vec!["sleep 3600".into()],
        ports: vec![core::ContainerPort {
            container_port: Some(8080),
            protocol: Some("TCP".into()),
            host_port: Some(0),
            ..Default::default()
        }],
        env: vec![
            core::EnvVar {
                name: Some("PLAIN".into()),
                value: Some("1".into()),
                value_from: None,
            },
            core::EnvVar {
                name: Some("PASSWORD".into()),
                value: Some(String::new()),
                value_from: Some(core::EnvVarSource {
                    secret_key_ref: Some(core::SecretKeySelector {
                        local_object_reference: Some(core::LocalObjectReference {
                            name: Some("s".into()),
                        }),
                        key: Some("password".into()),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            },
        ],
        resources: Some(core::ResourceRequirements {
            limits: quantities(&[("cpu", "500m"), ("memory", "128Mi")]),
            requests: quantities(&[("cpu", "100m")]),
            ..Default::default()
        }),
        volume_mounts: vec![core::VolumeMount {
            name: Some("data".into()),
            mount_path: Some("/data".into()),
            read_only: Some(true),
            ..Default::default()
        }],
        liveness_probe: Some(core::Probe {
            handler: Some(core::ProbeHandler {
                http_get: Some(core::HttpGetAction {
                    path: Some("/healthz".into()),
                    port: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("http".into()),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            initial_delay_seconds: Some(0),
            period_seconds: Some(10),
            ..Default::default()
        }),
        security_context: Some(core::SecurityContext {
            run_as_user: Some(0),
            privileged: Some(false),
            ..Default::default()
        }),
        image_pull_policy: Some("IfNotPresent".into()),
        ..Default::default()
    };
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: Some("p".into()),
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            volumes: vec![
                core::Volume {
                    name: Some("data".into()),
                    volume_source: Some(core::VolumeSource {
                        empty_dir: Some(core::EmptyDirVolumeSource {
                            medium: Some(String::new()),
                            size_limit: None,
                        }),
                        ..Default::default()
                    }),
                },
                core::Volume {
                    name: Some("cfg".into()),
                    volume_source: Some(core::VolumeSource {
                        config_map: Some(core::ConfigMapVolumeSource {
                            local_object_reference: Some(core::LocalObjectReference {
                                name: Some("c".into()),
                            }),
                            default_mode: Some(0o644),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                },
            ],
            containers: vec![container],
            restart_policy: Some("Never".into()),
            priority: Some(-5),
            termination_grace_period_seconds: Some(0),
            security_context: Some(core::PodSecurityContext {
                supplemental_groups: vec![1000, 2000],
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    let decoded = decode(&envelope("v1", "Pod", &pod)).ok();
    assert_eq!(
        decoded,
        Some(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {
                "volumes": [
                    {"name": "data", "emptyDir": {}},
                    {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
                ],
                "containers": [{
                    "name": "app",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c"],
                    "args": ["sleep 3600"],
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [
                        {"name": "PLAIN", "value": "1"},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
                    ],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                    "volumeMounts": [{"name": "data", "readOnly": true, "mountPath": "/data"}],
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                    "imagePullPolicy": "IfNotPresent",
                    "securityContext": {"privileged": false, "runAsUser": 0},
                }],
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 0,
                "securityContext": {"supplementalGroups": [1000, 2000]},
                "priority": -5,
            },
        }))
    );
}

#[test]
fn times_and_managed_fields_render_as_json() {
    let meta = meta::ObjectMeta {
        name: Some("t".into()),
        creation_timestamp: Some(meta::Time {
            seconds: Some(1_700_000_000),
            nanos: Some(0),
        }),
        deletion_timestamp: Some(meta::Time {
            seconds: Some(1_700_000_001),
            nanos: Some(500),
        }),
        managed_fields: vec![meta::ManagedFieldsEntry {
            manager: Some("kubectl".into()),
            operation: Some("Update".into()),
            time: Some(meta::Time {
                seconds: Some(0),
                nanos: Some(0),
            }),
            fields_type: Some("FieldsV1".into()),
            fields_v1: Some(meta::FieldsV1 {
                raw: Some(br#"{"f:data":{}}"#.to_vec()),
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let ns = core::Namespace {
        metadata: Some(meta),
        spec: None,
        status: None,
    };
    let decoded = decode(&envelope("v1", "Namespace", &ns)).ok();
    assert_eq!(
        decoded,
        Some(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {
                "name": "t",
                "creationTimestamp": "2023-11-14T22:13:20Z",
                "deletionTimestamp": "2023-11-14T22:13:21Z",
                "managedFields": [{
                    "manager": "kubectl", "operation": "Update",
                    "time": "1970-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}},
                }],
            },
        }))
    );
}

#[test]
fn rbac_and_disruption_budgets_decode() {
    let role = rbac::Role {
        metadata: Some(meta::ObjectMeta {
            name: Some("reader".into()),
            ..Default::default()
        }),
        rules: vec![rbac::PolicyRule {
            verbs: vec!["get".into(), "list".into()],
            api_groups: vec![String::new()],
            resources: vec!["pods".into()],
            ..Default::default()
        }],
    };
    assert_eq!(
        decode(&envelope("rbac.authorization.k8s.io/v1", "Role", &role)).ok(),
        Some(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "reader"},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}],
        }))
    );
    let binding = rbac::RoleBinding {
        metadata: Some(meta::ObjectMeta {
            name: Some("rb".into()),
            ..Default::default()
        }),
        subjects: vec![rbac::Subject {
            kind: Some("ServiceAccount".into()),
            api_group: Some(String::new()),
            name: Some("sa".into()),
            namespace: Some("ns".into()),
        }],
        role_ref: Some(rbac::RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: Some("Role".into()),
            name: Some("reader".into()),
        }),
    };
    assert_eq!(
        decode(&envelope(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            &binding
        ))
        .ok(),
        Some(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "rb"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
        }))
    );
    let pdb = policy::PodDisruptionBudget {
        metadata: Some(meta::ObjectMeta {
            name: Some("pdb".into()),
            ..Default::default()
        }),
        spec: Some(policy::PodDisruptionBudgetSpec {
            min_available: Some(IntOrString {
                r#type: Some(1),
                int_val: Some(0),
                str_val: Some("50%".into()),
            }),
            // A pointer: an explicit 0 must survive.
            max_unavailable: Some(IntOrString {
                r#type: Some(0),
                int_val: Some(0),
                str_val: Some(String::new()),
            }),
            selector: Some(meta::LabelSelector {
                match_expressions: vec![meta::LabelSelectorRequirement {
                    key: Some("app".into()),
                    operator: Some("In".into()),
                    values: vec!["web".into()],
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    assert_eq!(
        decode(&envelope("policy/v1", "PodDisruptionBudget", &pdb)).ok(),
        Some(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "pdb"},
            "spec": {
                "minAvailable": "50%",
                "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                "maxUnavailable": 0,
            },
        }))
    );
}

#[test]
fn delete_options_decode_under_any_group_version() {
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: Some("u-1".into()),
            resource_version: None,
        }),
        propagation_policy: Some("Foreground".into()),
        dry_run: vec!["All".into()],
        ..Default::default()
    };
    let expected = |api_version: &str| {
        json!({
            "apiVersion": api_version, "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "u-1"},
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
        })
    };
    for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
        let decoded = decode(&envelope(api_version, "DeleteOptions", &opts)).ok();
        assert_eq!(decoded, Some(expected(api_version)));
    }
    let eviction = policy::Eviction {
        metadata: Some(meta::ObjectMeta {
            name: Some("p".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        }),
        delete_options: Some(opts),
    };
    let decoded = decode(&envelope("policy/v1", "Eviction", &eviction)).ok();
    assert_eq!(
        decoded
            .as_ref()
            .and_then(|v| v.pointer("/deleteOptions/gracePeriodSeconds")),
        Some(&json!(0))
    );
    assert_eq!(
        decoded
            .as_ref()
            .and_then(|v| v.pointer("/metadata/namespace")),
        Some(&json!("ns"))
    );
}

#[test]
fn unknown_fields_are_skipped() {
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: Some("c".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut raw = cm.encode_to_vec();
    // Field 99 as a varint, field 98 as bytes, field 97 as fixed64, field 96 as fixed32.
    raw.extend([0x98, 0x06, 0x2a]);
    raw.extend([0x92, 0x06, 0x03, 1, 2, 3]);
    raw.extend([0x89, 0x06, 0, 0, 0, 0, 0, 0, 0, 0]);
    raw.extend([0x85, 0x06, 0, 0, 0, 0]);
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    assert_eq!(
        decode(&body).ok(),
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}))
    );
}

#[test]
fn unsupported_kinds_and_encodings_are_415() {
    let body = envelope("example.com/v1", "Widget", &core::ConfigMap::default());
    let err = decode(&body).err();
    assert!(matches!(err, Some(Error::UnsupportedKind { ref kind, .. }) if kind == "Widget"));
    let api: Option<ApiError> = err.map(Into::into);
    assert!(
        matches!(api, Some(ApiError::UnsupportedMediaType(ref m)) if m.contains("example.com/v1") && m.contains("Widget"))
    );

    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
        }),
        raw: Some(Vec::new()),
        content_encoding: Some("gzip".into()),
        ..Default::default()
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    assert!(matches!(decode(&body), Err(Error::UnsupportedEncoding(ref e)) if e == "gzip"));
}

#[test]
fn malformed_bodies_are_400_and_never_panic() {
    let bad_request = |body: &[u8]| {
        matches!(
            decode(body).map_err(ApiError::from),
            Err(ApiError::BadRequest(_))
        )
    };
    assert!(bad_request(b""));
    assert!(bad_request(b"{\"kind\":\"Namespace\"}"));
    assert!(bad_request(b"k8s\x01\x0a\x00"));
    // A bad varint right after the magic.
    assert!(bad_request(&[
        b'k', b'8', b's', 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
    ]));
    // No kind in the envelope.
    assert!(bad_request(b"k8s\0"));

    // Every truncation of a real body either decodes (cut between envelope
    // fields) or fails cleanly; cuts inside the object fail.
    let deployment = apps::Deployment {
        metadata: Some(fresh_meta("web", &[("app", "web")])),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(3),
            ..Default::default()
        }),
        status: None,
    };
    let body = envelope("apps/v1", "Deployment", &deployment);
    let raw_len = deployment.encode_to_vec().len();
    let raw_end = body.len() - 4; // two empty string fields follow raw
    for cut in 0..body.len() {
        let result = decode(&body[..cut]);
        if cut > raw_end - raw_len && cut < raw_end {
            assert!(result.is_err(), "a cut at {cut} inside the object decoded");
        }
    }

    // A string field sent as a varint, invalid UTF-8, and a bad Time.
    let wrap = |raw: Vec<u8>| {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some("v1".into()),
                kind: Some("Namespace".into()),
            }),
            raw: Some(raw),
            ..Default::default()
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    };
    // metadata { name: varint 1 }
    let err = decode(&wrap(vec![0x0a, 0x02, 0x08, 0x01]))
        .err()
        .map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("ObjectMeta.name")));
    assert!(bad_request(&wrap(vec![0x0a, 0x03, 0x0a, 0x01, 0xff])));
    let time = meta::Time {
        seconds: Some(i64::MAX),
        nanos: Some(0),
    };
    let ns = core::Namespace {
        metadata: Some(meta::ObjectMeta {
            creation_timestamp: Some(time),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert!(bad_request(&wrap(ns.encode_to_vec())));
}

#[test]
fn media_type_matching_ignores_parameters_and_case() {
    assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(is_protobuf(
        "Application/VND.kubernetes.protobuf; charset=utf-8"
    ));
    assert!(!is_protobuf("application/json"));
}
