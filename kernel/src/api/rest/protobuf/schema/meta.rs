//! k8s.io/apimachinery `meta/v1` messages.

use super::{Message, Ty, b, field, inline, labels, list, long, m, msg, msgs, s, strs, t};

/// `ObjectMeta`.
pub(crate) static OBJECT_META: Message = msg(
    "ObjectMeta",
    &[
        s(1, "name"),
        s(2, "generateName"),
        s(3, "namespace"),
        s(4, "selfLink"),
        s(5, "uid"),
        s(6, "resourceVersion"),
        long(7, "generation"),
        t(8, "creationTimestamp"),
        t(9, "deletionTimestamp"),
        long(10, "deletionGracePeriodSeconds").keep(),
        labels(11, "labels"),
        labels(12, "annotations"),
        msgs(13, "ownerReferences", &OWNER_REFERENCE),
        strs(14, "finalizers"),
        msgs(17, "managedFields", &MANAGED_FIELDS_ENTRY),
    ],
);

static OWNER_REFERENCE: Message = msg(
    "OwnerReference",
    &[
        s(5, "apiVersion").keep(),
        s(1, "kind").keep(),
        s(3, "name").keep(),
        s(4, "uid").keep(),
        b(6, "controller").keep(),
        b(7, "blockOwnerDeletion").keep(),
    ],
);

static MANAGED_FIELDS_ENTRY: Message = msg(
    "ManagedFieldsEntry",
    &[
        s(1, "manager"),
        s(2, "operation"),
        s(3, "apiVersion"),
        t(4, "time"),
        s(6, "fieldsType"),
        field(7, "fieldsV1", Ty::Raw, super::Shape::Single),
        s(8, "subresource"),
    ],
);

/// `LabelSelector`.
pub(crate) static LABEL_SELECTOR: Message = msg(
    "LabelSelector",
    &[
        labels(1, "matchLabels"),
        msgs(2, "matchExpressions", &LABEL_SELECTOR_REQUIREMENT),
    ],
);

static LABEL_SELECTOR_REQUIREMENT: Message = msg(
    "LabelSelectorRequirement",
    &[
        s(1, "key").keep(),
        s(2, "operator").keep(),
        strs(3, "values"),
    ],
);

/// `DeleteOptions`.
pub(crate) static DELETE_OPTIONS: Message = msg(
    "DeleteOptions",
    &[
        long(1, "gracePeriodSeconds").keep(),
        m(2, "preconditions", &PRECONDITIONS),
        b(3, "orphanDependents").keep(),
        s(4, "propagationPolicy").keep(),
        list(5, "dryRun", Ty::String),
        b(6, "ignoreStoreReadErrorWithClusterBreakingPotential").keep(),
    ],
);

static PRECONDITIONS: Message = msg(
    "Preconditions",
    &[s(1, "uid").keep(), s(2, "resourceVersion").keep()],
);

/// `LocalObjectReference` (core/v1, inlined in many selectors).
pub(crate) static LOCAL_OBJECT_REFERENCE: Message = msg("LocalObjectReference", &[s(1, "name")]);

/// The `LocalObjectReference` that selectors embed (inlined) as field 1.
pub(crate) const fn local_ref() -> super::Field {
    inline(1, &LOCAL_OBJECT_REFERENCE)
}
