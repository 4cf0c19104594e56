//! Messages of the named API groups: apps, batch, rbac, scheduling, policy,
//! networking and authentication (all v1).

use super::corev1::{POD_TEMPLATE_SPEC, PVC_SPEC, TYPED_LOCAL_OBJECT_REFERENCE};
use super::meta::{DELETE_OPTIONS, LABEL_SELECTOR, OBJECT_META};
use super::{Message, OPAQUE, Ty, b, int, ios, list, long, m, msg, msgs, s, strs, t};

/// `apps/v1` `Deployment`.
pub(crate) static DEPLOYMENT: Message = msg(
    "Deployment",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &DEPLOYMENT_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static DEPLOYMENT_SPEC: Message = msg(
    "DeploymentSpec",
    &[
        int(1, "replicas").keep(),
        m(2, "selector", &LABEL_SELECTOR),
        m(3, "template", &POD_TEMPLATE_SPEC),
        m(4, "strategy", &DEPLOYMENT_STRATEGY),
        int(5, "minReadySeconds"),
        int(6, "revisionHistoryLimit").keep(),
        b(7, "paused"),
        int(9, "progressDeadlineSeconds").keep(),
    ],
);

static DEPLOYMENT_STRATEGY: Message = msg(
    "DeploymentStrategy",
    &[s(1, "type"), m(2, "rollingUpdate", &ROLLING_UPDATE)],
);

/// `RollingUpdateDeployment`/`RollingUpdateDaemonSet`: both pointers.
static ROLLING_UPDATE: Message = msg(
    "RollingUpdateDeployment",
    &[ios(1, "maxUnavailable").keep(), ios(2, "maxSurge").keep()],
);

/// `apps/v1` `ReplicaSet`.
pub(crate) static REPLICA_SET: Message = msg(
    "ReplicaSet",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &REPLICA_SET_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static REPLICA_SET_SPEC: Message = msg(
    "ReplicaSetSpec",
    &[
        int(1, "replicas").keep(),
        int(4, "minReadySeconds"),
        m(2, "selector", &LABEL_SELECTOR),
        m(3, "template", &POD_TEMPLATE_SPEC),
    ],
);

/// `apps/v1` `StatefulSet`.
pub(crate) static STATEFUL_SET: Message = msg(
    "StatefulSet",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &STATEFUL_SET_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static STATEFUL_SET_SPEC: Message = msg(
    "StatefulSetSpec",
    &[
        int(1, "replicas").keep(),
        m(2, "selector", &LABEL_SELECTOR),
        m(3, "template", &POD_TEMPLATE_SPEC),
        msgs(4, "volumeClaimTemplates", &PVC_IN_TEMPLATE),
        s(5, "serviceName"),
        s(6, "podManagementPolicy"),
        m(7, "updateStrategy", &STATEFUL_SET_UPDATE_STRATEGY),
        int(8, "revisionHistoryLimit").keep(),
        int(9, "minReadySeconds"),
        m(
            10,
            "persistentVolumeClaimRetentionPolicy",
            &PVC_RETENTION_POLICY,
        ),
        m(11, "ordinals", &STATEFUL_SET_ORDINALS),
    ],
);

static PVC_IN_TEMPLATE: Message = msg(
    "PersistentVolumeClaim",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &PVC_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static STATEFUL_SET_UPDATE_STRATEGY: Message = msg(
    "StatefulSetUpdateStrategy",
    &[
        s(1, "type"),
        m(2, "rollingUpdate", &ROLLING_UPDATE_STATEFUL_SET),
    ],
);

static ROLLING_UPDATE_STATEFUL_SET: Message = msg(
    "RollingUpdateStatefulSetStrategy",
    &[int(1, "partition").keep(), ios(2, "maxUnavailable").keep()],
);

static PVC_RETENTION_POLICY: Message = msg(
    "StatefulSetPersistentVolumeClaimRetentionPolicy",
    &[s(1, "whenDeleted"), s(2, "whenScaled")],
);

static STATEFUL_SET_ORDINALS: Message = msg("StatefulSetOrdinals", &[int(1, "start")]);

/// `apps/v1` `DaemonSet`.
pub(crate) static DAEMON_SET: Message = msg(
    "DaemonSet",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &DAEMON_SET_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static DAEMON_SET_SPEC: Message = msg(
    "DaemonSetSpec",
    &[
        m(1, "selector", &LABEL_SELECTOR),
        m(2, "template", &POD_TEMPLATE_SPEC),
        m(3, "updateStrategy", &DAEMON_SET_UPDATE_STRATEGY),
        int(4, "minReadySeconds"),
        int(6, "revisionHistoryLimit").keep(),
    ],
);

static DAEMON_SET_UPDATE_STRATEGY: Message = msg(
    "DaemonSetUpdateStrategy",
    &[s(1, "type"), m(2, "rollingUpdate", &ROLLING_UPDATE)],
);

/// `batch/v1` `Job`.
pub(crate) static JOB: Message = msg(
    "Job",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &JOB_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static JOB_SPEC: Message = msg(
    "JobSpec",
    &[
        int(1, "parallelism").keep(),
        int(2, "completions").keep(),
        long(3, "activeDeadlineSeconds").keep(),
        m(11, "podFailurePolicy", &POD_FAILURE_POLICY),
        m(16, "successPolicy", &SUCCESS_POLICY),
        int(7, "backoffLimit").keep(),
        int(12, "backoffLimitPerIndex").keep(),
        int(13, "maxFailedIndexes").keep(),
        m(4, "selector", &LABEL_SELECTOR),
        b(5, "manualSelector").keep(),
        m(6, "template", &POD_TEMPLATE_SPEC),
        int(8, "ttlSecondsAfterFinished").keep(),
        s(9, "completionMode").keep(),
        b(10, "suspend").keep(),
        s(14, "podReplacementPolicy").keep(),
        s(15, "managedBy").keep(),
    ],
);

static POD_FAILURE_POLICY: Message = msg(
    "PodFailurePolicy",
    &[msgs(1, "rules", &POD_FAILURE_POLICY_RULE)],
);

static POD_FAILURE_POLICY_RULE: Message = msg(
    "PodFailurePolicyRule",
    &[
        s(1, "action").keep(),
        m(2, "onExitCodes", &ON_EXIT_CODES),
        msgs(3, "onPodConditions", &ON_POD_CONDITIONS),
    ],
);

static ON_EXIT_CODES: Message = msg(
    "PodFailurePolicyOnExitCodesRequirement",
    &[
        s(1, "containerName").keep(),
        s(2, "operator").keep(),
        list(3, "values", Ty::Int32),
    ],
);

static ON_POD_CONDITIONS: Message = msg(
    "PodFailurePolicyOnPodConditionsPattern",
    &[s(1, "type").keep(), s(2, "status")],
);

static SUCCESS_POLICY: Message = msg("SuccessPolicy", &[msgs(1, "rules", &SUCCESS_POLICY_RULE)]);

static SUCCESS_POLICY_RULE: Message = msg(
    "SuccessPolicyRule",
    &[
        s(1, "succeededIndexes").keep(),
        int(2, "succeededCount").keep(),
    ],
);

/// `batch/v1` `CronJob`.
pub(crate) static CRON_JOB: Message = msg(
    "CronJob",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &CRON_JOB_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static CRON_JOB_SPEC: Message = msg(
    "CronJobSpec",
    &[
        s(1, "schedule").keep(),
        s(8, "timeZone").keep(),
        long(2, "startingDeadlineSeconds").keep(),
        s(3, "concurrencyPolicy"),
        b(4, "suspend").keep(),
        m(5, "jobTemplate", &JOB_TEMPLATE_SPEC),
        int(6, "successfulJobsHistoryLimit").keep(),
        int(7, "failedJobsHistoryLimit").keep(),
    ],
);

static JOB_TEMPLATE_SPEC: Message = msg(
    "JobTemplateSpec",
    &[m(1, "metadata", &OBJECT_META), m(2, "spec", &JOB_SPEC)],
);

/// `rbac.authorization.k8s.io/v1` `Role`.
pub(crate) static ROLE: Message = msg(
    "Role",
    &[
        m(1, "metadata", &OBJECT_META),
        msgs(2, "rules", &POLICY_RULE),
    ],
);

/// `rbac.authorization.k8s.io/v1` `ClusterRole`.
pub(crate) static CLUSTER_ROLE: Message = msg(
    "ClusterRole",
    &[
        m(1, "metadata", &OBJECT_META),
        msgs(2, "rules", &POLICY_RULE),
        m(3, "aggregationRule", &AGGREGATION_RULE),
    ],
);

static POLICY_RULE: Message = msg(
    "PolicyRule",
    &[
        strs(1, "verbs"),
        strs(2, "apiGroups"),
        strs(3, "resources"),
        strs(4, "resourceNames"),
        strs(5, "nonResourceURLs"),
    ],
);

static AGGREGATION_RULE: Message = msg(
    "AggregationRule",
    &[msgs(1, "clusterRoleSelectors", &LABEL_SELECTOR)],
);

/// `rbac.authorization.k8s.io/v1` `RoleBinding`.
pub(crate) static ROLE_BINDING: Message = msg("RoleBinding", BINDING_FIELDS);

/// `rbac.authorization.k8s.io/v1` `ClusterRoleBinding`.
pub(crate) static CLUSTER_ROLE_BINDING: Message = msg("ClusterRoleBinding", BINDING_FIELDS);

const BINDING_FIELDS: &[super::Field] = &[
    m(1, "metadata", &OBJECT_META),
    msgs(2, "subjects", &SUBJECT),
    m(3, "roleRef", &ROLE_REF),
];

static SUBJECT: Message = msg(
    "Subject",
    &[
        s(1, "kind").keep(),
        s(2, "apiGroup"),
        s(3, "name").keep(),
        s(4, "namespace"),
    ],
);

static ROLE_REF: Message = msg(
    "RoleRef",
    &[
        s(1, "apiGroup").keep(),
        s(2, "kind").keep(),
        s(3, "name").keep(),
    ],
);

/// `scheduling.k8s.io/v1` `PriorityClass`.
pub(crate) static PRIORITY_CLASS: Message = msg(
    "PriorityClass",
    &[
        m(1, "metadata", &OBJECT_META),
        int(2, "value").keep(),
        b(3, "globalDefault"),
        s(4, "description"),
        s(5, "preemptionPolicy").keep(),
    ],
);

/// `policy/v1` `PodDisruptionBudget`.
pub(crate) static POD_DISRUPTION_BUDGET: Message = msg(
    "PodDisruptionBudget",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &PDB_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static PDB_SPEC: Message = msg(
    "PodDisruptionBudgetSpec",
    &[
        ios(1, "minAvailable").keep(),
        m(2, "selector", &LABEL_SELECTOR),
        ios(3, "maxUnavailable").keep(),
        s(4, "unhealthyPodEvictionPolicy").keep(),
    ],
);

/// `policy/v1` `Eviction` (what `kubectl drain` posts to `pods/eviction`).
pub(crate) static EVICTION: Message = msg(
    "Eviction",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "deleteOptions", &DELETE_OPTIONS),
    ],
);

/// `networking.k8s.io/v1` `Ingress`.
pub(crate) static INGRESS: Message = msg(
    "Ingress",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &INGRESS_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static INGRESS_SPEC: Message = msg(
    "IngressSpec",
    &[
        s(4, "ingressClassName").keep(),
        m(1, "defaultBackend", &INGRESS_BACKEND),
        msgs(2, "tls", &INGRESS_TLS),
        msgs(3, "rules", &INGRESS_RULE),
    ],
);

static INGRESS_BACKEND: Message = msg(
    "IngressBackend",
    &[
        m(4, "service", &INGRESS_SERVICE_BACKEND),
        m(3, "resource", &TYPED_LOCAL_OBJECT_REFERENCE),
    ],
);

static INGRESS_SERVICE_BACKEND: Message = msg(
    "IngressServiceBackend",
    &[s(1, "name").keep(), m(2, "port", &SERVICE_BACKEND_PORT)],
);

static SERVICE_BACKEND_PORT: Message = msg("ServiceBackendPort", &[s(1, "name"), int(2, "number")]);

static INGRESS_TLS: Message = msg("IngressTLS", &[strs(1, "hosts"), s(2, "secretName")]);

static INGRESS_RULE: Message = msg(
    "IngressRule",
    &[s(1, "host"), super::inline(2, &INGRESS_RULE_VALUE)],
);

static INGRESS_RULE_VALUE: Message = msg(
    "IngressRuleValue",
    &[m(1, "http", &HTTP_INGRESS_RULE_VALUE)],
);

static HTTP_INGRESS_RULE_VALUE: Message = msg(
    "HTTPIngressRuleValue",
    &[msgs(1, "paths", &HTTP_INGRESS_PATH)],
);

static HTTP_INGRESS_PATH: Message = msg(
    "HTTPIngressPath",
    &[
        s(1, "path"),
        s(3, "pathType").keep(),
        m(2, "backend", &INGRESS_BACKEND),
    ],
);

/// `authentication.k8s.io/v1` `TokenRequest`.
pub(crate) static TOKEN_REQUEST: Message = msg(
    "TokenRequest",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &TOKEN_REQUEST_SPEC),
        m(3, "status", &TOKEN_REQUEST_STATUS),
    ],
);

static TOKEN_REQUEST_SPEC: Message = msg(
    "TokenRequestSpec",
    &[
        strs(1, "audiences"),
        long(4, "expirationSeconds").keep(),
        m(3, "boundObjectRef", &BOUND_OBJECT_REFERENCE),
    ],
);

static BOUND_OBJECT_REFERENCE: Message = msg(
    "BoundObjectReference",
    &[s(1, "kind"), s(2, "apiVersion"), s(3, "name"), s(4, "uid")],
);

static TOKEN_REQUEST_STATUS: Message = msg(
    "TokenRequestStatus",
    &[s(1, "token").keep(), t(2, "expirationTimestamp")],
);

/// `authorization.k8s.io/v1` `SelfSubjectAccessReview` (`kubectl auth can-i`).
pub(crate) static SELF_SUBJECT_ACCESS_REVIEW: Message = msg(
    "SelfSubjectAccessReview",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &SELF_SUBJECT_ACCESS_REVIEW_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Message = msg(
    "SelfSubjectAccessReviewSpec",
    &[
        m(1, "resourceAttributes", &RESOURCE_ATTRIBUTES),
        m(2, "nonResourceAttributes", &NON_RESOURCE_ATTRIBUTES),
    ],
);

static RESOURCE_ATTRIBUTES: Message = msg(
    "ResourceAttributes",
    &[
        s(1, "namespace"),
        s(2, "verb"),
        s(3, "group"),
        s(4, "version"),
        s(5, "resource"),
        s(6, "subresource"),
        s(7, "name"),
        m(8, "fieldSelector", &OPAQUE),
        m(9, "labelSelector", &OPAQUE),
    ],
);

static NON_RESOURCE_ATTRIBUTES: Message =
    msg("NonResourceAttributes", &[s(1, "path"), s(2, "verb")]);

/// `authorization.k8s.io/v1` `SubjectAccessReview`.
pub(crate) static SUBJECT_ACCESS_REVIEW: Message = msg(
    "SubjectAccessReview",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &SUBJECT_ACCESS_REVIEW_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static SUBJECT_ACCESS_REVIEW_SPEC: Message = msg(
    "SubjectAccessReviewSpec",
    &[
        m(1, "resourceAttributes", &RESOURCE_ATTRIBUTES),
        m(2, "nonResourceAttributes", &NON_RESOURCE_ATTRIBUTES),
        s(3, "user"),
        strs(4, "groups"),
        s(6, "uid"),
    ],
);

/// `authorization.k8s.io/v1` `SelfSubjectRulesReview` (`kubectl auth can-i --list`).
pub(crate) static SELF_SUBJECT_RULES_REVIEW: Message = msg(
    "SelfSubjectRulesReview",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &SELF_SUBJECT_RULES_REVIEW_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static SELF_SUBJECT_RULES_REVIEW_SPEC: Message =
    msg("SelfSubjectRulesReviewSpec", &[s(1, "namespace")]);

/// `authentication.k8s.io/v1` `SelfSubjectReview` (`kubectl auth whoami`).
pub(crate) static SELF_SUBJECT_REVIEW: Message = msg(
    "SelfSubjectReview",
    &[m(1, "metadata", &OBJECT_META), m(2, "status", &OPAQUE)],
);
