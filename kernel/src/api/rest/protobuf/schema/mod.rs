//! The schema table: for each protobuf message of k8s.io/api that kerno
//! decodes, its fields by number with JSON name, type and zero-value rule.
//!
//! Field numbers are those of Kubernetes' `generated.proto` files. Go's
//! gogo-protobuf writes every non-pointer field, zero or not, so the table
//! marks which fields are Go pointers (`keep`: a zero that was sent is a
//! value, like `replicas: 0`); the others follow `omitempty` and drop zeros.
//! Message-typed fields are kept when present, as Go's JSON keeps structs.

mod corev1;
mod groups;
mod meta;

/// A field's value type.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ty {
    /// `string`.
    String,
    /// `bool`.
    Bool,
    /// `int32`.
    Int32,
    /// `int64`.
    Int64,
    /// `[]byte`, base64 in JSON.
    Bytes,
    /// A nested message.
    Message(&'static Message),
    /// `metav1.Time`: RFC 3339 with seconds.
    Time,
    /// `resource.Quantity`: its string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension` or `metav1.FieldsV1`: embedded JSON.
    Raw,
}

/// How often a field occurs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// One value.
    Single,
    /// A list.
    Repeated,
    /// A map with string keys (repeated entries {1 key, 2 value}).
    Map,
    /// An embedded Go struct whose fields JSON inlines into the parent.
    Inline,
}

/// One field of a message.
#[derive(Debug)]
pub(crate) struct Field {
    /// Protobuf field number.
    pub num: u32,
    /// JSON name.
    pub name: &'static str,
    /// Value type (of the map value, for maps).
    pub ty: Ty,
    /// Single, list, map or inline.
    pub shape: Shape,
    /// Keep a zero value (Go pointer fields, and fields without `omitempty`).
    pub keep_zero: bool,
}

impl Field {
    /// Marks the field as one whose zero value is kept.
    const fn keep(self) -> Self {
        Self {
            keep_zero: true,
            ..self
        }
    }
}

/// One message type.
#[derive(Debug)]
pub(crate) struct Message {
    /// Go type name, for error messages.
    pub name: &'static str,
    /// Its fields.
    pub fields: &'static [Field],
}

const fn field(num: u32, name: &'static str, ty: Ty, shape: Shape) -> Field {
    Field {
        num,
        name,
        ty,
        shape,
        keep_zero: false,
    }
}
const fn s(num: u32, name: &'static str) -> Field {
    field(num, name, Ty::String, Shape::Single)
}
const fn b(num: u32, name: &'static str) -> Field {
    field(num, name, Ty::Bool, Shape::Single)
}
const fn int(num: u32, name: &'static str) -> Field {
    field(num, name, Ty::Int32, Shape::Single)
}
const fn long(num: u32, name: &'static str) -> Field {
    field(num, name, Ty::Int64, Shape::Single)
}
const fn m(num: u32, name: &'static str, message: &'static Message) -> Field {
    field(num, name, Ty::Message(message), Shape::Single)
}
const fn t(num: u32, name: &'static str) -> Field {
    field(num, name, Ty::Time, Shape::Single)
}
const fn q(num: u32, name: &'static str) -> Field {
    field(num, name, Ty::Quantity, Shape::Single)
}
const fn ios(num: u32, name: &'static str) -> Field {
    field(num, name, Ty::IntOrString, Shape::Single)
}
const fn strs(num: u32, name: &'static str) -> Field {
    field(num, name, Ty::String, Shape::Repeated)
}
const fn list(num: u32, name: &'static str, ty: Ty) -> Field {
    field(num, name, ty, Shape::Repeated)
}
const fn msgs(num: u32, name: &'static str, message: &'static Message) -> Field {
    field(num, name, Ty::Message(message), Shape::Repeated)
}
const fn map(num: u32, name: &'static str, ty: Ty) -> Field {
    field(num, name, ty, Shape::Map)
}
const fn labels(num: u32, name: &'static str) -> Field {
    field(num, name, Ty::String, Shape::Map)
}
const fn inline(num: u32, message: &'static Message) -> Field {
    field(num, "", Ty::Message(message), Shape::Inline)
}
const fn msg(name: &'static str, fields: &'static [Field]) -> Message {
    Message { name, fields }
}

/// A status (or other part) whose content kerno ignores on writes: decoded
/// as `{}` when present, its fields skipped.
static OPAQUE: Message = msg("Status", &[]);

/// The top-level message of a kind, by the envelope's apiVersion and kind.
pub(crate) fn kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    Some(match (api_version, kind) {
        ("v1", "Namespace") => &corev1::NAMESPACE,
        ("v1", "ConfigMap") => &corev1::CONFIG_MAP,
        ("v1", "Secret") => &corev1::SECRET,
        ("v1", "ServiceAccount") => &corev1::SERVICE_ACCOUNT,
        ("v1", "Service") => &corev1::SERVICE,
        ("v1", "Pod") => &corev1::POD,
        ("v1", "PodTemplate") => &corev1::POD_TEMPLATE,
        ("v1", "ResourceQuota") => &corev1::RESOURCE_QUOTA,
        ("v1", "PersistentVolumeClaim") => &corev1::PERSISTENT_VOLUME_CLAIM,
        // Registered in every group version: a typed client encodes it with
        // its own (`apps/v1` for deployments, and so on).
        (_, "DeleteOptions") => &meta::DELETE_OPTIONS,
        ("apps/v1", "Deployment") => &groups::DEPLOYMENT,
        ("apps/v1", "ReplicaSet") => &groups::REPLICA_SET,
        ("apps/v1", "StatefulSet") => &groups::STATEFUL_SET,
        ("apps/v1", "DaemonSet") => &groups::DAEMON_SET,
        ("batch/v1", "Job") => &groups::JOB,
        ("batch/v1", "CronJob") => &groups::CRON_JOB,
        ("rbac.authorization.k8s.io/v1", "Role") => &groups::ROLE,
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => &groups::CLUSTER_ROLE,
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => &groups::ROLE_BINDING,
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => &groups::CLUSTER_ROLE_BINDING,
        ("scheduling.k8s.io/v1", "PriorityClass") => &groups::PRIORITY_CLASS,
        ("policy/v1", "PodDisruptionBudget") => &groups::POD_DISRUPTION_BUDGET,
        ("policy/v1", "Eviction") => &groups::EVICTION,
        ("networking.k8s.io/v1", "Ingress") => &groups::INGRESS,
        ("authentication.k8s.io/v1", "TokenRequest") => &groups::TOKEN_REQUEST,
        ("authentication.k8s.io/v1", "SelfSubjectReview") => &groups::SELF_SUBJECT_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            &groups::SELF_SUBJECT_ACCESS_REVIEW
        }
        ("authorization.k8s.io/v1", "SubjectAccessReview") => &groups::SUBJECT_ACCESS_REVIEW,
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => &groups::SELF_SUBJECT_RULES_REVIEW,
        _ => return None,
    })
}
