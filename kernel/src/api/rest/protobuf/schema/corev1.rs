//! k8s.io/api `core/v1` messages.

use super::meta::{LABEL_SELECTOR, LOCAL_OBJECT_REFERENCE, OBJECT_META, local_ref};
use super::{
    Message, OPAQUE, Ty, b, inline, int, ios, labels, list, long, m, map, msg, msgs, q, s, strs,
};

/// `Namespace`.
pub(crate) static NAMESPACE: Message = msg(
    "Namespace",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &NAMESPACE_SPEC),
        m(3, "status", &NAMESPACE_STATUS),
    ],
);

static NAMESPACE_SPEC: Message = msg("NamespaceSpec", &[strs(1, "finalizers")]);

static NAMESPACE_STATUS: Message = msg("NamespaceStatus", &[s(1, "phase")]);

/// `ConfigMap`.
pub(crate) static CONFIG_MAP: Message = msg(
    "ConfigMap",
    &[
        m(1, "metadata", &OBJECT_META),
        b(4, "immutable").keep(),
        labels(2, "data"),
        map(3, "binaryData", Ty::Bytes),
    ],
);

/// `Secret`.
pub(crate) static SECRET: Message = msg(
    "Secret",
    &[
        m(1, "metadata", &OBJECT_META),
        b(5, "immutable").keep(),
        map(2, "data", Ty::Bytes),
        labels(4, "stringData"),
        s(3, "type"),
    ],
);

/// `ServiceAccount`.
pub(crate) static SERVICE_ACCOUNT: Message = msg(
    "ServiceAccount",
    &[
        m(1, "metadata", &OBJECT_META),
        msgs(2, "secrets", &OBJECT_REFERENCE),
        msgs(3, "imagePullSecrets", &LOCAL_OBJECT_REFERENCE),
        b(4, "automountServiceAccountToken").keep(),
    ],
);

/// `ObjectReference`.
pub(crate) static OBJECT_REFERENCE: Message = msg(
    "ObjectReference",
    &[
        s(1, "kind"),
        s(2, "namespace"),
        s(3, "name"),
        s(4, "uid"),
        s(5, "apiVersion"),
        s(6, "resourceVersion"),
        s(7, "fieldPath"),
    ],
);

/// `Service`.
pub(crate) static SERVICE: Message = msg(
    "Service",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &SERVICE_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static SERVICE_SPEC: Message = msg(
    "ServiceSpec",
    &[
        msgs(1, "ports", &SERVICE_PORT),
        labels(2, "selector"),
        s(3, "clusterIP"),
        strs(18, "clusterIPs"),
        s(4, "type"),
        strs(5, "externalIPs"),
        s(7, "sessionAffinity"),
        s(8, "loadBalancerIP"),
        strs(9, "loadBalancerSourceRanges"),
        s(10, "externalName"),
        s(11, "externalTrafficPolicy"),
        int(12, "healthCheckNodePort"),
        b(13, "publishNotReadyAddresses"),
        m(14, "sessionAffinityConfig", &SESSION_AFFINITY_CONFIG),
        strs(19, "ipFamilies"),
        s(17, "ipFamilyPolicy").keep(),
        b(20, "allocateLoadBalancerNodePorts").keep(),
        s(21, "loadBalancerClass").keep(),
        s(22, "internalTrafficPolicy").keep(),
        s(23, "trafficDistribution").keep(),
    ],
);

static SERVICE_PORT: Message = msg(
    "ServicePort",
    &[
        s(1, "name"),
        s(2, "protocol"),
        s(6, "appProtocol").keep(),
        int(3, "port").keep(),
        ios(4, "targetPort"),
        int(5, "nodePort"),
    ],
);

static SESSION_AFFINITY_CONFIG: Message = msg(
    "SessionAffinityConfig",
    &[m(1, "clientIP", &CLIENT_IP_CONFIG)],
);

static CLIENT_IP_CONFIG: Message = msg("ClientIPConfig", &[int(1, "timeoutSeconds").keep()]);

/// `Pod`.
pub(crate) static POD: Message = msg(
    "Pod",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &POD_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

/// `PodTemplate`.
pub(crate) static POD_TEMPLATE: Message = msg(
    "PodTemplate",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "template", &POD_TEMPLATE_SPEC),
    ],
);

/// `PodTemplateSpec`.
pub(crate) static POD_TEMPLATE_SPEC: Message = msg(
    "PodTemplateSpec",
    &[m(1, "metadata", &OBJECT_META), m(2, "spec", &POD_SPEC)],
);

static POD_SPEC: Message = msg(
    "PodSpec",
    &[
        msgs(1, "volumes", &VOLUME),
        msgs(20, "initContainers", &CONTAINER),
        msgs(2, "containers", &CONTAINER),
        msgs(34, "ephemeralContainers", &EPHEMERAL_CONTAINER),
        s(3, "restartPolicy"),
        long(4, "terminationGracePeriodSeconds").keep(),
        long(5, "activeDeadlineSeconds").keep(),
        s(6, "dnsPolicy"),
        labels(7, "nodeSelector"),
        s(8, "serviceAccountName"),
        s(9, "serviceAccount"),
        b(21, "automountServiceAccountToken").keep(),
        s(10, "nodeName"),
        b(11, "hostNetwork"),
        b(12, "hostPID"),
        b(13, "hostIPC"),
        b(27, "shareProcessNamespace").keep(),
        m(14, "securityContext", &POD_SECURITY_CONTEXT),
        msgs(15, "imagePullSecrets", &LOCAL_OBJECT_REFERENCE),
        s(16, "hostname"),
        s(17, "subdomain"),
        m(18, "affinity", &AFFINITY),
        s(19, "schedulerName"),
        msgs(22, "tolerations", &TOLERATION),
        msgs(23, "hostAliases", &HOST_ALIAS),
        s(24, "priorityClassName"),
        int(25, "priority").keep(),
        m(26, "dnsConfig", &POD_DNS_CONFIG),
        msgs(28, "readinessGates", &POD_READINESS_GATE),
        s(29, "runtimeClassName").keep(),
        b(30, "enableServiceLinks").keep(),
        s(31, "preemptionPolicy").keep(),
        map(32, "overhead", Ty::Quantity),
        msgs(33, "topologySpreadConstraints", &TOPOLOGY_SPREAD_CONSTRAINT),
        b(35, "setHostnameAsFQDN").keep(),
        m(36, "os", &POD_OS),
        b(37, "hostUsers").keep(),
        msgs(38, "schedulingGates", &POD_SCHEDULING_GATE),
        msgs(39, "resourceClaims", &POD_RESOURCE_CLAIM),
        m(40, "resources", &RESOURCE_REQUIREMENTS),
        s(41, "hostnameOverride").keep(),
    ],
);

static CONTAINER: Message = msg("Container", CONTAINER_FIELDS);

/// Shared by `Container` and `EphemeralContainerCommon` (same numbers).
const CONTAINER_FIELDS: &[super::Field] = &[
    s(1, "name").keep(),
    s(2, "image"),
    strs(3, "command"),
    strs(4, "args"),
    s(5, "workingDir"),
    msgs(6, "ports", &CONTAINER_PORT),
    msgs(19, "envFrom", &ENV_FROM_SOURCE),
    msgs(7, "env", &ENV_VAR),
    m(8, "resources", &RESOURCE_REQUIREMENTS),
    msgs(23, "resizePolicy", &CONTAINER_RESIZE_POLICY),
    s(24, "restartPolicy").keep(),
    msgs(9, "volumeMounts", &VOLUME_MOUNT),
    msgs(21, "volumeDevices", &VOLUME_DEVICE),
    m(10, "livenessProbe", &PROBE),
    m(11, "readinessProbe", &PROBE),
    m(22, "startupProbe", &PROBE),
    m(12, "lifecycle", &LIFECYCLE),
    s(13, "terminationMessagePath"),
    s(20, "terminationMessagePolicy"),
    s(14, "imagePullPolicy"),
    m(15, "securityContext", &SECURITY_CONTEXT),
    b(16, "stdin"),
    b(17, "stdinOnce"),
    b(18, "tty"),
];

static EPHEMERAL_CONTAINER: Message = msg(
    "EphemeralContainer",
    &[
        inline(1, &EPHEMERAL_CONTAINER_COMMON),
        s(2, "targetContainerName"),
    ],
);

static EPHEMERAL_CONTAINER_COMMON: Message = msg("EphemeralContainerCommon", CONTAINER_FIELDS);

static CONTAINER_PORT: Message = msg(
    "ContainerPort",
    &[
        s(1, "name"),
        int(2, "hostPort"),
        int(3, "containerPort").keep(),
        s(4, "protocol"),
        s(5, "hostIP"),
    ],
);

static ENV_FROM_SOURCE: Message = msg(
    "EnvFromSource",
    &[
        s(1, "prefix"),
        m(2, "configMapRef", &OPTIONAL_LOCAL_REF),
        m(3, "secretRef", &OPTIONAL_LOCAL_REF),
    ],
);

/// `ConfigMapEnvSource`/`SecretEnvSource`: a name and `optional`.
static OPTIONAL_LOCAL_REF: Message = msg(
    "ConfigMapEnvSource",
    &[local_ref(), b(2, "optional").keep()],
);

static ENV_VAR: Message = msg(
    "EnvVar",
    &[
        s(1, "name").keep(),
        s(2, "value"),
        m(3, "valueFrom", &ENV_VAR_SOURCE),
    ],
);

static ENV_VAR_SOURCE: Message = msg(
    "EnvVarSource",
    &[
        m(1, "fieldRef", &OBJECT_FIELD_SELECTOR),
        m(2, "resourceFieldRef", &RESOURCE_FIELD_SELECTOR),
        m(3, "configMapKeyRef", &KEY_SELECTOR),
        m(4, "secretKeyRef", &KEY_SELECTOR),
        m(5, "fileKeyRef", &FILE_KEY_SELECTOR),
    ],
);

/// `ConfigMapKeySelector`/`SecretKeySelector`.
static KEY_SELECTOR: Message = msg(
    "ConfigMapKeySelector",
    &[local_ref(), s(2, "key").keep(), b(3, "optional").keep()],
);

static FILE_KEY_SELECTOR: Message = msg(
    "FileKeySelector",
    &[
        s(1, "volumeName").keep(),
        s(2, "path").keep(),
        s(3, "key").keep(),
        b(4, "optional").keep(),
    ],
);

static OBJECT_FIELD_SELECTOR: Message = msg(
    "ObjectFieldSelector",
    &[s(1, "apiVersion"), s(2, "fieldPath").keep()],
);

static RESOURCE_FIELD_SELECTOR: Message = msg(
    "ResourceFieldSelector",
    &[
        s(1, "containerName"),
        s(2, "resource").keep(),
        q(3, "divisor"),
    ],
);

static RESOURCE_REQUIREMENTS: Message = msg(
    "ResourceRequirements",
    &[
        map(1, "limits", Ty::Quantity),
        map(2, "requests", Ty::Quantity),
        msgs(3, "claims", &RESOURCE_CLAIM),
    ],
);

static RESOURCE_CLAIM: Message = msg("ResourceClaim", &[s(1, "name").keep(), s(2, "request")]);

static CONTAINER_RESIZE_POLICY: Message = msg(
    "ContainerResizePolicy",
    &[s(1, "resourceName").keep(), s(2, "restartPolicy").keep()],
);

static VOLUME_MOUNT: Message = msg(
    "VolumeMount",
    &[
        s(1, "name").keep(),
        b(2, "readOnly"),
        s(7, "recursiveReadOnly").keep(),
        s(3, "mountPath").keep(),
        s(4, "subPath"),
        s(5, "mountPropagation").keep(),
        s(6, "subPathExpr"),
    ],
);

static VOLUME_DEVICE: Message = msg(
    "VolumeDevice",
    &[s(1, "name").keep(), s(2, "devicePath").keep()],
);

static PROBE: Message = msg(
    "Probe",
    &[
        inline(1, &PROBE_HANDLER),
        int(2, "initialDelaySeconds"),
        int(3, "timeoutSeconds"),
        int(4, "periodSeconds"),
        int(5, "successThreshold"),
        int(6, "failureThreshold"),
        long(7, "terminationGracePeriodSeconds").keep(),
    ],
);

static PROBE_HANDLER: Message = msg(
    "ProbeHandler",
    &[
        m(1, "exec", &EXEC_ACTION),
        m(2, "httpGet", &HTTP_GET_ACTION),
        m(3, "tcpSocket", &TCP_SOCKET_ACTION),
        m(4, "grpc", &GRPC_ACTION),
    ],
);

static EXEC_ACTION: Message = msg("ExecAction", &[strs(1, "command")]);

static HTTP_GET_ACTION: Message = msg(
    "HTTPGetAction",
    &[
        s(1, "path"),
        ios(2, "port").keep(),
        s(3, "host"),
        s(4, "scheme"),
        msgs(5, "httpHeaders", &HTTP_HEADER),
    ],
);

static HTTP_HEADER: Message = msg("HTTPHeader", &[s(1, "name").keep(), s(2, "value").keep()]);

static TCP_SOCKET_ACTION: Message = msg("TCPSocketAction", &[ios(1, "port").keep(), s(2, "host")]);

static GRPC_ACTION: Message = msg(
    "GRPCAction",
    &[int(1, "port").keep(), s(2, "service").keep()],
);

static LIFECYCLE: Message = msg(
    "Lifecycle",
    &[
        m(1, "postStart", &LIFECYCLE_HANDLER),
        m(2, "preStop", &LIFECYCLE_HANDLER),
        s(3, "stopSignal").keep(),
    ],
);

static LIFECYCLE_HANDLER: Message = msg(
    "LifecycleHandler",
    &[
        m(1, "exec", &EXEC_ACTION),
        m(2, "httpGet", &HTTP_GET_ACTION),
        m(3, "tcpSocket", &TCP_SOCKET_ACTION),
        m(4, "sleep", &SLEEP_ACTION),
    ],
);

static SLEEP_ACTION: Message = msg("SleepAction", &[long(1, "seconds").keep()]);

static SECURITY_CONTEXT: Message = msg(
    "SecurityContext",
    &[
        m(1, "capabilities", &CAPABILITIES),
        b(2, "privileged").keep(),
        m(3, "seLinuxOptions", &SE_LINUX_OPTIONS),
        m(10, "windowsOptions", &WINDOWS_OPTIONS),
        long(4, "runAsUser").keep(),
        long(8, "runAsGroup").keep(),
        b(5, "runAsNonRoot").keep(),
        b(6, "readOnlyRootFilesystem").keep(),
        b(7, "allowPrivilegeEscalation").keep(),
        s(9, "procMount").keep(),
        m(11, "seccompProfile", &SECCOMP_PROFILE),
        m(12, "appArmorProfile", &APP_ARMOR_PROFILE),
    ],
);

static POD_SECURITY_CONTEXT: Message = msg(
    "PodSecurityContext",
    &[
        m(1, "seLinuxOptions", &SE_LINUX_OPTIONS),
        m(8, "windowsOptions", &WINDOWS_OPTIONS),
        long(2, "runAsUser").keep(),
        long(6, "runAsGroup").keep(),
        b(3, "runAsNonRoot").keep(),
        list(4, "supplementalGroups", Ty::Int64),
        s(12, "supplementalGroupsPolicy").keep(),
        long(5, "fsGroup").keep(),
        msgs(7, "sysctls", &SYSCTL),
        s(9, "fsGroupChangePolicy").keep(),
        m(10, "seccompProfile", &SECCOMP_PROFILE),
        m(11, "appArmorProfile", &APP_ARMOR_PROFILE),
        s(13, "seLinuxChangePolicy").keep(),
    ],
);

static CAPABILITIES: Message = msg("Capabilities", &[strs(1, "add"), strs(2, "drop")]);

static SE_LINUX_OPTIONS: Message = msg(
    "SELinuxOptions",
    &[s(1, "user"), s(2, "role"), s(3, "type"), s(4, "level")],
);

static WINDOWS_OPTIONS: Message = msg(
    "WindowsSecurityContextOptions",
    &[
        s(1, "gmsaCredentialSpecName").keep(),
        s(2, "gmsaCredentialSpec").keep(),
        s(3, "runAsUserName").keep(),
        b(4, "hostProcess").keep(),
    ],
);

/// `SeccompProfile`/`AppArmorProfile` share their shape.
static SECCOMP_PROFILE: Message = msg(
    "SeccompProfile",
    &[s(1, "type").keep(), s(2, "localhostProfile").keep()],
);

static APP_ARMOR_PROFILE: Message = msg(
    "AppArmorProfile",
    &[s(1, "type").keep(), s(2, "localhostProfile").keep()],
);

static SYSCTL: Message = msg("Sysctl", &[s(1, "name").keep(), s(2, "value").keep()]);

static VOLUME: Message = msg("Volume", &[s(1, "name").keep(), inline(2, &VOLUME_SOURCE)]);

static VOLUME_SOURCE: Message = msg(
    "VolumeSource",
    &[
        m(1, "hostPath", &HOST_PATH),
        m(2, "emptyDir", &EMPTY_DIR),
        m(6, "secret", &SECRET_VOLUME),
        m(7, "nfs", &NFS),
        m(10, "persistentVolumeClaim", &PVC_VOLUME),
        m(16, "downwardAPI", &DOWNWARD_API_VOLUME),
        m(19, "configMap", &CONFIG_MAP_VOLUME),
        m(26, "projected", &PROJECTED),
        m(28, "csi", &CSI),
        m(29, "ephemeral", &EPHEMERAL_VOLUME),
        m(30, "image", &IMAGE_VOLUME),
    ],
);

static HOST_PATH: Message = msg(
    "HostPathVolumeSource",
    &[s(1, "path").keep(), s(2, "type").keep()],
);

static EMPTY_DIR: Message = msg(
    "EmptyDirVolumeSource",
    &[s(1, "medium"), q(2, "sizeLimit").keep()],
);

static SECRET_VOLUME: Message = msg(
    "SecretVolumeSource",
    &[
        s(1, "secretName"),
        msgs(2, "items", &KEY_TO_PATH),
        int(3, "defaultMode").keep(),
        b(4, "optional").keep(),
    ],
);

static CONFIG_MAP_VOLUME: Message = msg(
    "ConfigMapVolumeSource",
    &[
        local_ref(),
        msgs(2, "items", &KEY_TO_PATH),
        int(3, "defaultMode").keep(),
        b(4, "optional").keep(),
    ],
);

static KEY_TO_PATH: Message = msg(
    "KeyToPath",
    &[
        s(1, "key").keep(),
        s(2, "path").keep(),
        int(3, "mode").keep(),
    ],
);

static NFS: Message = msg(
    "NFSVolumeSource",
    &[s(1, "server").keep(), s(2, "path").keep(), b(3, "readOnly")],
);

static PVC_VOLUME: Message = msg(
    "PersistentVolumeClaimVolumeSource",
    &[s(1, "claimName").keep(), b(2, "readOnly")],
);

static DOWNWARD_API_VOLUME: Message = msg(
    "DownwardAPIVolumeSource",
    &[
        msgs(1, "items", &DOWNWARD_API_FILE),
        int(2, "defaultMode").keep(),
    ],
);

static DOWNWARD_API_FILE: Message = msg(
    "DownwardAPIVolumeFile",
    &[
        s(1, "path").keep(),
        m(2, "fieldRef", &OBJECT_FIELD_SELECTOR),
        m(3, "resourceFieldRef", &RESOURCE_FIELD_SELECTOR),
        int(4, "mode").keep(),
    ],
);

static PROJECTED: Message = msg(
    "ProjectedVolumeSource",
    &[
        msgs(1, "sources", &VOLUME_PROJECTION),
        int(2, "defaultMode").keep(),
    ],
);

static VOLUME_PROJECTION: Message = msg(
    "VolumeProjection",
    &[
        m(1, "secret", &ITEMS_PROJECTION),
        m(2, "downwardAPI", &DOWNWARD_API_PROJECTION),
        m(3, "configMap", &ITEMS_PROJECTION),
        m(4, "serviceAccountToken", &SERVICE_ACCOUNT_TOKEN_PROJECTION),
    ],
);

/// `SecretProjection`/`ConfigMapProjection`.
static ITEMS_PROJECTION: Message = msg(
    "ConfigMapProjection",
    &[
        local_ref(),
        msgs(2, "items", &KEY_TO_PATH),
        b(4, "optional").keep(),
    ],
);

static DOWNWARD_API_PROJECTION: Message = msg(
    "DownwardAPIProjection",
    &[msgs(1, "items", &DOWNWARD_API_FILE)],
);

static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = msg(
    "ServiceAccountTokenProjection",
    &[
        s(1, "audience"),
        long(2, "expirationSeconds").keep(),
        s(3, "path").keep(),
    ],
);

static CSI: Message = msg(
    "CSIVolumeSource",
    &[
        s(1, "driver").keep(),
        b(2, "readOnly").keep(),
        s(3, "fsType").keep(),
        labels(4, "volumeAttributes"),
        m(5, "nodePublishSecretRef", &LOCAL_OBJECT_REFERENCE),
    ],
);

static EPHEMERAL_VOLUME: Message = msg(
    "EphemeralVolumeSource",
    &[m(1, "volumeClaimTemplate", &PVC_TEMPLATE)],
);

static PVC_TEMPLATE: Message = msg(
    "PersistentVolumeClaimTemplate",
    &[m(1, "metadata", &OBJECT_META), m(2, "spec", &PVC_SPEC)],
);

static IMAGE_VOLUME: Message = msg(
    "ImageVolumeSource",
    &[s(1, "reference"), s(2, "pullPolicy")],
);

/// `PersistentVolumeClaim`.
pub(crate) static PERSISTENT_VOLUME_CLAIM: Message = msg(
    "PersistentVolumeClaim",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &PVC_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

/// `PersistentVolumeClaimSpec`.
pub(crate) static PVC_SPEC: Message = msg(
    "PersistentVolumeClaimSpec",
    &[
        strs(1, "accessModes"),
        m(4, "selector", &LABEL_SELECTOR),
        m(2, "resources", &VOLUME_RESOURCES),
        s(3, "volumeName"),
        s(5, "storageClassName").keep(),
        s(6, "volumeMode").keep(),
        m(7, "dataSource", &TYPED_LOCAL_OBJECT_REFERENCE),
        m(8, "dataSourceRef", &TYPED_OBJECT_REFERENCE),
        s(9, "volumeAttributesClassName").keep(),
    ],
);

static VOLUME_RESOURCES: Message = msg(
    "VolumeResourceRequirements",
    &[
        map(1, "limits", Ty::Quantity),
        map(2, "requests", Ty::Quantity),
    ],
);

/// `TypedLocalObjectReference`.
pub(crate) static TYPED_LOCAL_OBJECT_REFERENCE: Message = msg(
    "TypedLocalObjectReference",
    &[
        s(1, "apiGroup").keep(),
        s(2, "kind").keep(),
        s(3, "name").keep(),
    ],
);

static TYPED_OBJECT_REFERENCE: Message = msg(
    "TypedObjectReference",
    &[
        s(1, "apiGroup").keep(),
        s(2, "kind").keep(),
        s(3, "name").keep(),
        s(4, "namespace").keep(),
    ],
);

static TOLERATION: Message = msg(
    "Toleration",
    &[
        s(1, "key"),
        s(2, "operator"),
        s(3, "value"),
        s(4, "effect"),
        long(5, "tolerationSeconds").keep(),
    ],
);

static HOST_ALIAS: Message = msg("HostAlias", &[s(1, "ip").keep(), strs(2, "hostnames")]);

static POD_DNS_CONFIG: Message = msg(
    "PodDNSConfig",
    &[
        strs(1, "nameservers"),
        strs(2, "searches"),
        msgs(3, "options", &POD_DNS_CONFIG_OPTION),
    ],
);

static POD_DNS_CONFIG_OPTION: Message =
    msg("PodDNSConfigOption", &[s(1, "name"), s(2, "value").keep()]);

static POD_READINESS_GATE: Message = msg("PodReadinessGate", &[s(1, "conditionType").keep()]);

static POD_OS: Message = msg("PodOS", &[s(1, "name").keep()]);

static POD_SCHEDULING_GATE: Message = msg("PodSchedulingGate", &[s(1, "name").keep()]);

static POD_RESOURCE_CLAIM: Message = msg(
    "PodResourceClaim",
    &[
        s(1, "name").keep(),
        s(3, "resourceClaimName").keep(),
        s(4, "resourceClaimTemplateName").keep(),
    ],
);

static TOPOLOGY_SPREAD_CONSTRAINT: Message = msg(
    "TopologySpreadConstraint",
    &[
        int(1, "maxSkew").keep(),
        s(2, "topologyKey").keep(),
        s(3, "whenUnsatisfiable").keep(),
        m(4, "labelSelector", &LABEL_SELECTOR),
        int(5, "minDomains").keep(),
        s(6, "nodeAffinityPolicy").keep(),
        s(7, "nodeTaintsPolicy").keep(),
        strs(8, "matchLabelKeys"),
    ],
);

static AFFINITY: Message = msg(
    "Affinity",
    &[
        m(1, "nodeAffinity", &NODE_AFFINITY),
        m(2, "podAffinity", &POD_AFFINITY),
        m(3, "podAntiAffinity", &POD_AFFINITY),
    ],
);

static NODE_AFFINITY: Message = msg(
    "NodeAffinity",
    &[
        m(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            &NODE_SELECTOR,
        ),
        msgs(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            &PREFERRED_SCHEDULING_TERM,
        ),
    ],
);

static NODE_SELECTOR: Message = msg(
    "NodeSelector",
    &[msgs(1, "nodeSelectorTerms", &NODE_SELECTOR_TERM)],
);

static NODE_SELECTOR_TERM: Message = msg(
    "NodeSelectorTerm",
    &[
        msgs(1, "matchExpressions", &NODE_SELECTOR_REQUIREMENT),
        msgs(2, "matchFields", &NODE_SELECTOR_REQUIREMENT),
    ],
);

static NODE_SELECTOR_REQUIREMENT: Message = msg(
    "NodeSelectorRequirement",
    &[
        s(1, "key").keep(),
        s(2, "operator").keep(),
        strs(3, "values"),
    ],
);

static PREFERRED_SCHEDULING_TERM: Message = msg(
    "PreferredSchedulingTerm",
    &[
        int(1, "weight").keep(),
        m(2, "preference", &NODE_SELECTOR_TERM),
    ],
);

/// `PodAffinity`/`PodAntiAffinity` share their shape.
static POD_AFFINITY: Message = msg(
    "PodAffinity",
    &[
        msgs(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            &POD_AFFINITY_TERM,
        ),
        msgs(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            &WEIGHTED_POD_AFFINITY_TERM,
        ),
    ],
);

static POD_AFFINITY_TERM: Message = msg(
    "PodAffinityTerm",
    &[
        m(1, "labelSelector", &LABEL_SELECTOR),
        strs(2, "namespaces"),
        s(3, "topologyKey").keep(),
        m(4, "namespaceSelector", &LABEL_SELECTOR),
        strs(5, "matchLabelKeys"),
        strs(6, "mismatchLabelKeys"),
    ],
);

static WEIGHTED_POD_AFFINITY_TERM: Message = msg(
    "WeightedPodAffinityTerm",
    &[
        int(1, "weight").keep(),
        m(2, "podAffinityTerm", &POD_AFFINITY_TERM),
    ],
);

/// `ResourceQuota`.
pub(crate) static RESOURCE_QUOTA: Message = msg(
    "ResourceQuota",
    &[
        m(1, "metadata", &OBJECT_META),
        m(2, "spec", &RESOURCE_QUOTA_SPEC),
        m(3, "status", &OPAQUE),
    ],
);

static RESOURCE_QUOTA_SPEC: Message = msg(
    "ResourceQuotaSpec",
    &[
        map(1, "hard", Ty::Quantity),
        strs(2, "scopes"),
        m(3, "scopeSelector", &SCOPE_SELECTOR),
    ],
);

static SCOPE_SELECTOR: Message = msg(
    "ScopeSelector",
    &[msgs(
        1,
        "matchExpressions",
        &SCOPED_RESOURCE_SELECTOR_REQUIREMENT,
    )],
);

static SCOPED_RESOURCE_SELECTOR_REQUIREMENT: Message = msg(
    "ScopedResourceSelectorRequirement",
    &[
        s(1, "scopeName").keep(),
        s(2, "operator").keep(),
        strs(3, "values"),
    ],
);
