//! Objects with every field of the table set, checked against k8s-openapi's
//! JSON model: no field is skipped, no name or JSON type is wrong.

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::batch::v1 as batch;
use k8s_pb::api::core::v1 as core;
use k8s_pb::api::networking::v1 as networking;
use k8s_pb::api::rbac::v1 as rbac;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::{envelope, string_map};
use crate::api::rest::protobuf::decode_reporting_skipped;

/// Decodes `body`, asserts the table knew every field, and that the JSON
/// reads back as the k8s-openapi type unchanged: every name is one
/// Kubernetes knows and every value has the right JSON type.
fn decode_checked<K: serde::de::DeserializeOwned + serde::Serialize>(body: &[u8]) -> Value {
    let (value, skipped) = match decode_reporting_skipped(body) {
        Ok(decoded) => decoded,
        Err(e) => panic!("decoding failed: {e}"),
    };
    assert!(skipped.is_empty(), "fields not in the table: {skipped:?}");
    let typed: K = match serde_json::from_value(value.clone()) {
        Ok(typed) => typed,
        Err(e) => panic!("{e}: {value:#}"),
    };
    let mut again = serde_json::to_value(&typed).ok();
    if let Some(Value::Object(top)) = &mut again {
        // k8s-openapi writes apiVersion/kind on embedded resources (the
        // claim templates of a StatefulSet); Go and kubectl do not.
        top.values_mut().for_each(strip_type_meta);
    }
    assert_eq!(again, Some(value.clone()));
    value
}

fn strip_type_meta(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("metadata") {
                map.remove("apiVersion");
                map.remove("kind");
            }
            map.values_mut().for_each(strip_type_meta);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_type_meta),
        _ => {}
    }
}

fn text(s: &str) -> Option<String> {
    Some(s.to_owned())
}

fn int_or_str(s: &str) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(1),
        int_val: None,
        str_val: text(s),
    })
}

fn int_or_num(n: i32) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(0),
        int_val: Some(n),
        str_val: None,
    })
}

fn selector() -> Option<meta::LabelSelector> {
    Some(meta::LabelSelector {
        match_labels: string_map(&[("app", "web")]),
        match_expressions: vec![meta::LabelSelectorRequirement {
            key: text("tier"),
            operator: text("NotIn"),
            values: vec!["db".into()],
        }],
    })
}

/// A container with every field the table knows set to a non-zero value.
fn full_container(name: &str) -> core::Container {
    let handler = core::ProbeHandler {
        exec: Some(core::ExecAction {
            command: vec!["true".into()],
        }),
        ..Default::default()
    };
    let probe = |handler: core::ProbeHandler| core::Probe {
        handler: Some(handler),
        initial_delay_seconds: Some(1),
        timeout_seconds: Some(2),
        period_seconds: Some(3),
        success_threshold: Some(1),
        failure_threshold: Some(4),
        termination_grace_period_seconds: Some(5),
    };
    let lifecycle_handler = core::LifecycleHandler {
        sleep: Some(core::SleepAction { seconds: Some(2) }),
        tcp_socket: Some(core::TcpSocketAction {
            port: int_or_num(81),
            host: text("h"),
        }),
        ..Default::default()
    };
    let quantity = |s: &str| Quantity { string: text(s) };
    core::Container {
        name: text(name),
        image: text("busybox:1.36"),
        command: vec!["sh".into()],
        args: vec!["-c".into(), "true".into()],
        working_dir: text("/w"),
        ports: vec![core::ContainerPort {
            name: text("http"),
            host_port: Some(8081),
            container_port: Some(8080),
            protocol: text("UDP"),
            host_ip: text("127.0.0.1"),
        }],
        env_from: vec![core::EnvFromSource {
            prefix: text("P_"),
            config_map_ref: Some(core::ConfigMapEnvSource {
                local_object_reference: Some(core::LocalObjectReference { name: text("cm") }),
                optional: Some(true),
            }),
            secret_ref: Some(core::SecretEnvSource {
                local_object_reference: Some(core::LocalObjectReference { name: text("sec") }),
                optional: Some(false),
            }),
        }],
        env: vec![core::EnvVar {
            name: text("X"),
            value: None,
            value_from: Some(core::EnvVarSource {
                field_ref: Some(core::ObjectFieldSelector {
                    api_version: text("v1"),
                    field_path: text("metadata.name"),
                }),
                resource_field_ref: Some(core::ResourceFieldSelector {
                    container_name: text(name),
                    resource: text("limits.cpu"),
                    divisor: Some(quantity("1m")),
                }),
                config_map_key_ref: Some(core::ConfigMapKeySelector {
                    local_object_reference: Some(core::LocalObjectReference { name: text("cm") }),
                    key: text("k"),
                    optional: Some(false),
                }),
                secret_key_ref: None,
                file_key_ref: None,
            }),
        }],
        resources: Some(core::ResourceRequirements {
            limits: [("memory".to_owned(), quantity("1Gi"))].into(),
            requests: [("cpu".to_owned(), quantity("250m"))].into(),
            claims: vec![core::ResourceClaim {
                name: text("gpu"),
                request: text("r"),
            }],
        }),
        resize_policy: vec![core::ContainerResizePolicy {
            resource_name: text("cpu"),
            restart_policy: text("NotRequired"),
        }],
        restart_policy: None,
        restart_policy_rules: Vec::new(),
        volume_mounts: vec![core::VolumeMount {
            name: text("data"),
            read_only: Some(true),
            recursive_read_only: text("Disabled"),
            mount_path: text("/data"),
            sub_path: text("sub"),
            mount_propagation: text("None"),
            sub_path_expr: None,
        }],
        volume_devices: vec![core::VolumeDevice {
            name: text("blk"),
            device_path: text("/dev/x"),
        }],
        liveness_probe: Some(probe(handler)),
        readiness_probe: Some(probe(core::ProbeHandler {
            http_get: Some(core::HttpGetAction {
                path: text("/ready"),
                port: int_or_str("http"),
                host: text("localhost"),
                scheme: text("HTTPS"),
                http_headers: vec![core::HttpHeader {
                    name: text("X-A"),
                    value: text("b"),
                }],
            }),
            ..Default::default()
        })),
        startup_probe: Some(probe(core::ProbeHandler {
            grpc: Some(core::GrpcAction {
                port: Some(9000),
                service: text("health"),
            }),
            ..Default::default()
        })),
        lifecycle: Some(core::Lifecycle {
            post_start: Some(lifecycle_handler.clone()),
            pre_stop: Some(lifecycle_handler),
            stop_signal: text("SIGTERM"),
        }),
        termination_message_path: text("/dev/termination-log"),
        termination_message_policy: text("FallbackToLogsOnError"),
        image_pull_policy: text("Never"),
        security_context: Some(core::SecurityContext {
            capabilities: Some(core::Capabilities {
                add: vec!["NET_ADMIN".into()],
                drop: vec!["ALL".into()],
            }),
            privileged: Some(true),
            se_linux_options: Some(core::SeLinuxOptions {
                user: text("u"),
                role: text("r"),
                r#type: text("t"),
                level: text("s0"),
            }),
            windows_options: None,
            run_as_user: Some(1000),
            run_as_group: Some(1000),
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            proc_mount: text("Default"),
            seccomp_profile: Some(core::SeccompProfile {
                r#type: text("RuntimeDefault"),
                localhost_profile: None,
            }),
            app_armor_profile: Some(core::AppArmorProfile {
                r#type: text("Localhost"),
                localhost_profile: text("p"),
            }),
        }),
        stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(true),
    }
}

#[test]
fn a_pod_with_every_field_of_the_table_decodes_without_loss() {
    let key_to_path = vec![core::KeyToPath {
        key: text("k"),
        path: text("p"),
        mode: Some(0o400),
    }];
    let volume = |name: &str, source: core::VolumeSource| core::Volume {
        name: text(name),
        volume_source: Some(source),
    };
    let term = core::PodAffinityTerm {
        label_selector: selector(),
        namespaces: vec!["a".into()],
        topology_key: text("kubernetes.io/hostname"),
        namespace_selector: selector(),
        match_label_keys: vec!["pod-template-hash".into()],
        mismatch_label_keys: vec!["x".into()],
    };
    let node_term = core::NodeSelectorTerm {
        match_expressions: vec![core::NodeSelectorRequirement {
            key: text("zone"),
            operator: text("In"),
            values: vec!["a".into()],
        }],
        match_fields: vec![core::NodeSelectorRequirement {
            key: text("metadata.name"),
            operator: text("In"),
            values: vec!["n1".into()],
        }],
    };
    let pod_affinity = core::PodAffinity {
        required_during_scheduling_ignored_during_execution: vec![term.clone()],
        preferred_during_scheduling_ignored_during_execution: vec![core::WeightedPodAffinityTerm {
            weight: Some(10),
            pod_affinity_term: Some(term.clone()),
        }],
    };
    let spec = core::PodSpec {
        volumes: vec![
            volume(
                "hp",
                core::VolumeSource {
                    host_path: Some(core::HostPathVolumeSource {
                        path: text("/tmp"),
                        r#type: text("Directory"),
                    }),
                    ..Default::default()
                },
            ),
            volume(
                "ed",
                core::VolumeSource {
                    empty_dir: Some(core::EmptyDirVolumeSource {
                        medium: text("Memory"),
                        size_limit: Some(Quantity {
                            string: text("1Gi"),
                        }),
                    }),
                    ..Default::default()
                },
            ),
            volume(
                "sec",
                core::VolumeSource {
                    secret: Some(core::SecretVolumeSource {
                        secret_name: text("s"),
                        items: key_to_path.clone(),
                        default_mode: Some(0o600),
                        optional: Some(true),
                    }),
                    ..Default::default()
                },
            ),
            volume(
                "pvc",
                core::VolumeSource {
                    persistent_volume_claim: Some(core::PersistentVolumeClaimVolumeSource {
                        claim_name: text("c"),
                        read_only: Some(true),
                    }),
                    nfs: Some(core::NfsVolumeSource {
                        server: text("srv"),
                        path: text("/e"),
                        read_only: Some(true),
                    }),
                    ..Default::default()
                },
            ),
            volume(
                "dapi",
                core::VolumeSource {
                    downward_api: Some(core::DownwardAPIVolumeSource {
                        items: vec![core::DownwardAPIVolumeFile {
                            path: text("labels"),
                            field_ref: Some(core::ObjectFieldSelector {
                                api_version: text("v1"),
                                field_path: text("metadata.labels"),
                            }),
                            resource_field_ref: None,
                            mode: Some(0o444),
                        }],
                        default_mode: Some(0o644),
                    }),
                    ..Default::default()
                },
            ),
            volume(
                "proj",
                core::VolumeSource {
                    projected: Some(core::ProjectedVolumeSource {
                        sources: vec![core::VolumeProjection {
                            secret: Some(core::SecretProjection {
                                local_object_reference: Some(core::LocalObjectReference {
                                    name: text("s"),
                                }),
                                items: key_to_path.clone(),
                                optional: Some(false),
                            }),
                            config_map: Some(core::ConfigMapProjection {
                                local_object_reference: Some(core::LocalObjectReference {
                                    name: text("c"),
                                }),
                                items: Vec::new(),
                                optional: None,
                            }),
                            service_account_token: Some(core::ServiceAccountTokenProjection {
                                audience: text("api"),
                                expiration_seconds: Some(3600),
                                path: text("token"),
                            }),
                            ..Default::default()
                        }],
                        default_mode: Some(0o640),
                    }),
                    ..Default::default()
                },
            ),
            volume(
                "cm",
                core::VolumeSource {
                    config_map: Some(core::ConfigMapVolumeSource {
                        local_object_reference: Some(core::LocalObjectReference {
                            name: text("c"),
                        }),
                        items: key_to_path,
                        default_mode: Some(0o644),
                        optional: Some(false),
                    }),
                    csi: Some(core::CSIVolumeSource {
                        driver: text("d"),
                        read_only: Some(true),
                        fs_type: text("ext4"),
                        volume_attributes: string_map(&[("a", "b")]),
                        node_publish_secret_ref: Some(core::LocalObjectReference {
                            name: text("s"),
                        }),
                    }),
                    image: Some(core::ImageVolumeSource {
                        reference: text("img"),
                        pull_policy: text("Always"),
                    }),
                    ..Default::default()
                },
            ),
        ],
        init_containers: vec![full_container("init")],
        containers: vec![full_container("main")],
        restart_policy: text("OnFailure"),
        termination_grace_period_seconds: Some(0),
        active_deadline_seconds: Some(60),
        dns_policy: text("None"),
        node_selector: string_map(&[("disk", "ssd")]),
        service_account_name: text("sa"),
        service_account: text("sa"),
        automount_service_account_token: Some(false),
        node_name: text("n1"),
        host_network: Some(true),
        host_pid: Some(true),
        host_ipc: Some(true),
        share_process_namespace: Some(true),
        security_context: Some(core::PodSecurityContext {
            run_as_user: Some(0),
            run_as_group: Some(0),
            run_as_non_root: Some(false),
            supplemental_groups: vec![5, 6],
            supplemental_groups_policy: text("Strict"),
            fs_group: Some(2000),
            sysctls: vec![core::Sysctl {
                name: text("net.ipv4.ip_forward"),
                value: text("1"),
            }],
            fs_group_change_policy: text("OnRootMismatch"),
            seccomp_profile: Some(core::SeccompProfile {
                r#type: text("Unconfined"),
                localhost_profile: None,
            }),
            se_linux_change_policy: text("Recursive"),
            ..Default::default()
        }),
        image_pull_secrets: vec![core::LocalObjectReference {
            name: text("regcred"),
        }],
        hostname: text("h"),
        subdomain: text("sub"),
        affinity: Some(core::Affinity {
            node_affinity: Some(core::NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(core::NodeSelector {
                    node_selector_terms: vec![node_term.clone()],
                }),
                preferred_during_scheduling_ignored_during_execution: vec![
                    core::PreferredSchedulingTerm {
                        weight: Some(1),
                        preference: Some(node_term),
                    },
                ],
            }),
            pod_affinity: Some(pod_affinity.clone()),
            pod_anti_affinity: Some(core::PodAntiAffinity {
                required_during_scheduling_ignored_during_execution: pod_affinity
                    .required_during_scheduling_ignored_during_execution,
                preferred_during_scheduling_ignored_during_execution: pod_affinity
                    .preferred_during_scheduling_ignored_during_execution,
            }),
        }),
        scheduler_name: text("custom"),
        tolerations: vec![core::Toleration {
            key: text("k"),
            operator: text("Equal"),
            value: text("v"),
            effect: text("NoExecute"),
            toleration_seconds: Some(0),
        }],
        host_aliases: vec![core::HostAlias {
            ip: text("10.0.0.1"),
            hostnames: vec!["a".into()],
        }],
        priority_class_name: text("high"),
        priority: Some(-1),
        dns_config: Some(core::PodDnsConfig {
            nameservers: vec!["1.1.1.1".into()],
            searches: vec!["svc".into()],
            options: vec![core::PodDnsConfigOption {
                name: text("ndots"),
                value: text("2"),
            }],
        }),
        readiness_gates: vec![core::PodReadinessGate {
            condition_type: text("Ready2"),
        }],
        runtime_class_name: text("runc"),
        enable_service_links: Some(false),
        preemption_policy: text("Never"),
        overhead: [(
            "cpu".to_owned(),
            Quantity {
                string: text("10m"),
            },
        )]
        .into(),
        topology_spread_constraints: vec![core::TopologySpreadConstraint {
            max_skew: Some(1),
            topology_key: text("zone"),
            when_unsatisfiable: text("DoNotSchedule"),
            label_selector: selector(),
            min_domains: Some(2),
            node_affinity_policy: text("Honor"),
            node_taints_policy: text("Ignore"),
            match_label_keys: vec!["k".into()],
        }],
        set_hostname_as_fqdn: Some(false),
        os: Some(core::PodOs {
            name: text("linux"),
        }),
        host_users: Some(false),
        scheduling_gates: vec![core::PodSchedulingGate { name: text("gate") }],
        resource_claims: vec![core::PodResourceClaim {
            name: text("gpu"),
            resource_claim_name: text("claim"),
            resource_claim_template_name: None,
        }],
        resources: Some(core::ResourceRequirements {
            limits: [("cpu".to_owned(), Quantity { string: text("2") })].into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: text("full"),
            namespace: text("ns"),
            annotations: string_map(&[("a", "b")]),
            owner_references: vec![meta::OwnerReference {
                api_version: text("apps/v1"),
                kind: text("ReplicaSet"),
                name: text("rs"),
                uid: text("u"),
                controller: Some(true),
                block_owner_deletion: Some(false),
            }],
            finalizers: vec!["f".into()],
            deletion_grace_period_seconds: Some(0),
            ..Default::default()
        }),
        spec: Some(spec),
        status: None,
    };
    let value = decode_checked::<k8s_openapi::api::core::v1::Pod>(&envelope("v1", "Pod", &pod));
    // Spot checks on fields whose encoding is special.
    let at = |p: &str| value.pointer(p).cloned();
    assert_eq!(
        at("/spec/containers/0/readinessProbe/httpGet/port"),
        Some(json!("http"))
    );
    assert_eq!(
        at("/spec/containers/0/livenessProbe/exec/command"),
        Some(json!(["true"]))
    );
    assert_eq!(
        at("/spec/containers/0/lifecycle/preStop/tcpSocket/port"),
        Some(json!(81))
    );
    assert_eq!(
        at("/spec/containers/0/envFrom/0/configMapRef/name"),
        Some(json!("cm"))
    );
    assert_eq!(at("/spec/volumes/6/configMap/name"), Some(json!("c")));
    assert_eq!(
        at("/spec/volumes/5/projected/sources/0/secret/name"),
        Some(json!("s"))
    );
    assert_eq!(at("/spec/tolerations/0/tolerationSeconds"), Some(json!(0)));
    assert_eq!(at("/spec/securityContext/runAsUser"), Some(json!(0)));
    assert_eq!(
        at(
            "/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution/0/weight"
        ),
        Some(json!(10))
    );
    assert_eq!(at("/metadata/deletionGracePeriodSeconds"), Some(json!(0)));
    assert_eq!(
        at("/metadata/ownerReferences/0/blockOwnerDeletion"),
        Some(json!(false))
    );
}

fn template() -> Option<core::PodTemplateSpec> {
    Some(core::PodTemplateSpec {
        metadata: Some(meta::ObjectMeta {
            labels: string_map(&[("app", "web")]),
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            containers: vec![full_container("c")],
            ..Default::default()
        }),
    })
}

fn named(name: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: text(name),
        ..Default::default()
    })
}

#[test]
fn workloads_with_every_field_of_the_table_decode_without_loss() {
    let job_spec = batch::JobSpec {
        parallelism: Some(0),
        completions: Some(2),
        active_deadline_seconds: Some(100),
        pod_failure_policy: Some(batch::PodFailurePolicy {
            rules: vec![batch::PodFailurePolicyRule {
                action: text("FailJob"),
                on_exit_codes: Some(batch::PodFailurePolicyOnExitCodesRequirement {
                    container_name: text("c"),
                    operator: text("In"),
                    values: vec![1, 42],
                }),
                on_pod_conditions: vec![batch::PodFailurePolicyOnPodConditionsPattern {
                    r#type: text("DisruptionTarget"),
                    status: text("True"),
                }],
            }],
        }),
        success_policy: Some(batch::SuccessPolicy {
            rules: vec![batch::SuccessPolicyRule {
                succeeded_indexes: text("0-1"),
                succeeded_count: Some(1),
            }],
        }),
        backoff_limit: Some(0),
        backoff_limit_per_index: Some(1),
        max_failed_indexes: Some(1),
        selector: selector(),
        manual_selector: Some(true),
        template: template(),
        ttl_seconds_after_finished: Some(0),
        completion_mode: text("Indexed"),
        suspend: Some(false),
        pod_replacement_policy: text("Failed"),
        managed_by: text("kerno.dev/ctl"),
    };
    let cron = batch::CronJob {
        metadata: named("cj"),
        spec: Some(batch::CronJobSpec {
            schedule: text("*/5 * * * *"),
            time_zone: text("Etc/UTC"),
            starting_deadline_seconds: Some(10),
            concurrency_policy: text("Forbid"),
            suspend: Some(true),
            job_template: Some(batch::JobTemplateSpec {
                metadata: named("t"),
                spec: Some(job_spec),
            }),
            successful_jobs_history_limit: Some(0),
            failed_jobs_history_limit: Some(0),
        }),
        status: None,
    };
    let value = decode_checked::<k8s_openapi::api::batch::v1::CronJob>(&envelope(
        "batch/v1", "CronJob", &cron,
    ));
    assert_eq!(
        value.pointer("/spec/jobTemplate/spec/parallelism"),
        Some(&json!(0))
    );
    assert_eq!(
        value.pointer("/spec/jobTemplate/spec/podFailurePolicy/rules/0/onExitCodes/values"),
        Some(&json!([1, 42]))
    );

    let rolling = apps::RollingUpdateDeployment {
        max_unavailable: int_or_num(0),
        max_surge: int_or_str("50%"),
    };
    let deployment = apps::Deployment {
        metadata: named("d"),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(2),
            selector: selector(),
            template: template(),
            strategy: Some(apps::DeploymentStrategy {
                r#type: text("RollingUpdate"),
                rolling_update: Some(rolling),
            }),
            min_ready_seconds: Some(5),
            revision_history_limit: Some(0),
            paused: Some(true),
            progress_deadline_seconds: Some(60),
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    let value = decode_checked::<k8s_openapi::api::apps::v1::Deployment>(&envelope(
        "apps/v1",
        "Deployment",
        &deployment,
    ));
    assert_eq!(
        value.pointer("/spec/strategy/rollingUpdate"),
        Some(&json!({"maxUnavailable": 0, "maxSurge": "50%"}))
    );

    let pvc_spec = core::PersistentVolumeClaimSpec {
        access_modes: vec!["ReadWriteOnce".into()],
        selector: selector(),
        resources: Some(core::VolumeResourceRequirements {
            limits: [(
                "storage".to_owned(),
                Quantity {
                    string: text("2Gi"),
                },
            )]
            .into(),
            requests: [(
                "storage".to_owned(),
                Quantity {
                    string: text("1Gi"),
                },
            )]
            .into(),
        }),
        volume_name: text("pv"),
        storage_class_name: text(""),
        volume_mode: text("Filesystem"),
        data_source: Some(core::TypedLocalObjectReference {
            api_group: None,
            kind: text("PersistentVolumeClaim"),
            name: text("src"),
        }),
        data_source_ref: Some(core::TypedObjectReference {
            api_group: text("snapshot.storage.k8s.io"),
            kind: text("VolumeSnapshot"),
            name: text("snap"),
            namespace: text("ns"),
        }),
        volume_attributes_class_name: text("gold"),
    };
    let stateful_set = apps::StatefulSet {
        metadata: named("ss"),
        spec: Some(apps::StatefulSetSpec {
            replicas: Some(1),
            selector: selector(),
            template: template(),
            volume_claim_templates: vec![core::PersistentVolumeClaim {
                metadata: named("data"),
                spec: Some(pvc_spec),
                status: None,
            }],
            service_name: text("svc"),
            pod_management_policy: text("Parallel"),
            update_strategy: Some(apps::StatefulSetUpdateStrategy {
                r#type: text("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateStatefulSetStrategy {
                    partition: Some(0),
                    max_unavailable: int_or_num(1),
                }),
            }),
            revision_history_limit: Some(3),
            min_ready_seconds: Some(1),
            persistent_volume_claim_retention_policy: Some(
                apps::StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: text("Delete"),
                    when_scaled: text("Retain"),
                },
            ),
            ordinals: Some(apps::StatefulSetOrdinals { start: Some(1) }),
        }),
        status: None,
    };
    let value = decode_checked::<k8s_openapi::api::apps::v1::StatefulSet>(&envelope(
        "apps/v1",
        "StatefulSet",
        &stateful_set,
    ));
    // storageClassName is a pointer: the empty string means "no class".
    assert_eq!(
        value.pointer("/spec/volumeClaimTemplates/0/spec/storageClassName"),
        Some(&json!(""))
    );

    let daemon_set = apps::DaemonSet {
        metadata: named("ds"),
        spec: Some(apps::DaemonSetSpec {
            selector: selector(),
            template: template(),
            update_strategy: Some(apps::DaemonSetUpdateStrategy {
                r#type: text("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDaemonSet {
                    max_unavailable: int_or_num(1),
                    max_surge: int_or_num(0),
                }),
            }),
            min_ready_seconds: Some(2),
            revision_history_limit: Some(4),
        }),
        status: None,
    };
    decode_checked::<k8s_openapi::api::apps::v1::DaemonSet>(&envelope(
        "apps/v1",
        "DaemonSet",
        &daemon_set,
    ));
}

#[test]
fn services_ingresses_and_rbac_with_every_field_decode_without_loss() {
    let service = core::Service {
        metadata: named("s"),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: text("http"),
                protocol: text("TCP"),
                app_protocol: text("http"),
                port: Some(80),
                target_port: int_or_str("web"),
                node_port: Some(30080),
            }],
            selector: string_map(&[("app", "web")]),
            cluster_ip: text("10.0.0.10"),
            cluster_ips: vec!["10.0.0.10".into()],
            r#type: text("LoadBalancer"),
            external_ips: vec!["1.2.3.4".into()],
            session_affinity: text("ClientIP"),
            load_balancer_ip: text("5.6.7.8"),
            load_balancer_source_ranges: vec!["0.0.0.0/0".into()],
            external_name: text("x.example"),
            external_traffic_policy: text("Local"),
            health_check_node_port: Some(31000),
            publish_not_ready_addresses: Some(true),
            session_affinity_config: Some(core::SessionAffinityConfig {
                client_ip: Some(core::ClientIpConfig {
                    timeout_seconds: Some(60),
                }),
            }),
            ip_families: vec!["IPv4".into()],
            ip_family_policy: text("SingleStack"),
            allocate_load_balancer_node_ports: Some(false),
            load_balancer_class: text("lb"),
            internal_traffic_policy: text("Local"),
            traffic_distribution: text("PreferClose"),
        }),
        status: None,
    };
    decode_checked::<k8s_openapi::api::core::v1::Service>(&envelope("v1", "Service", &service));

    let backend = |port: networking::ServiceBackendPort| networking::IngressBackend {
        service: Some(networking::IngressServiceBackend {
            name: text("web"),
            port: Some(port),
        }),
        resource: None,
    };
    let ingress = networking::Ingress {
        metadata: named("i"),
        spec: Some(networking::IngressSpec {
            ingress_class_name: text("nginx"),
            default_backend: Some(backend(networking::ServiceBackendPort {
                name: text("http"),
                number: None,
            })),
            tls: vec![networking::IngressTls {
                hosts: vec!["a.example".into()],
                secret_name: text("tls"),
            }],
            rules: vec![networking::IngressRule {
                host: text("a.example"),
                ingress_rule_value: Some(networking::IngressRuleValue {
                    http: Some(networking::HttpIngressRuleValue {
                        paths: vec![networking::HttpIngressPath {
                            path: text("/"),
                            path_type: text("Prefix"),
                            backend: Some(backend(networking::ServiceBackendPort {
                                name: None,
                                number: Some(80),
                            })),
                        }],
                    }),
                }),
            }],
        }),
        status: None,
    };
    let value = decode_checked::<k8s_openapi::api::networking::v1::Ingress>(&envelope(
        "networking.k8s.io/v1",
        "Ingress",
        &ingress,
    ));
    assert_eq!(
        value.pointer("/spec/rules/0/http/paths/0/backend/service/port/number"),
        Some(&json!(80))
    );

    let cluster_role = rbac::ClusterRole {
        metadata: named("cr"),
        rules: vec![rbac::PolicyRule {
            verbs: vec!["get".into()],
            api_groups: vec!["".into()],
            resources: vec!["pods".into()],
            resource_names: vec!["p".into()],
            non_resource_ur_ls: vec!["/healthz".into()],
        }],
        aggregation_rule: Some(rbac::AggregationRule {
            cluster_role_selectors: vec![selector().unwrap_or_default()],
        }),
    };
    let value = decode_checked::<k8s_openapi::api::rbac::v1::ClusterRole>(&envelope(
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        &cluster_role,
    ));
    assert_eq!(
        value.pointer("/rules/0/nonResourceURLs"),
        Some(&json!(["/healthz"]))
    );

    let quota = core::ResourceQuota {
        metadata: named("q"),
        spec: Some(core::ResourceQuotaSpec {
            hard: [("pods".to_owned(), Quantity { string: text("10") })].into(),
            scopes: vec!["BestEffort".into()],
            scope_selector: Some(core::ScopeSelector {
                match_expressions: vec![core::ScopedResourceSelectorRequirement {
                    scope_name: text("PriorityClass"),
                    operator: text("In"),
                    values: vec!["high".into()],
                }],
            }),
        }),
        status: None,
    };
    decode_checked::<k8s_openapi::api::core::v1::ResourceQuota>(&envelope(
        "v1",
        "ResourceQuota",
        &quota,
    ));

    let account = core::ServiceAccount {
        metadata: named("sa"),
        secrets: vec![core::ObjectReference {
            kind: text("Secret"),
            namespace: text("ns"),
            name: text("s"),
            uid: text("u"),
            api_version: text("v1"),
            resource_version: text("1"),
            field_path: text("data"),
        }],
        image_pull_secrets: vec![core::LocalObjectReference { name: text("r") }],
        automount_service_account_token: Some(false),
    };
    decode_checked::<k8s_openapi::api::core::v1::ServiceAccount>(&envelope(
        "v1",
        "ServiceAccount",
        &account,
    ));
}
