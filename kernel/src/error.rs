//! The API error: what every front-end (REST, gRPC) reports, mapped to the
//! wire in exactly one place each ([`ApiError::to_status`] for Kubernetes
//! `Status` objects, `From<ApiError> for tonic::Status` for gRPC).

use serde_json::{Value, json};

/// One problem with one field of an object, as in Kubernetes' `field.Error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Kubernetes' cause type: `FieldValueRequired`, `FieldValueInvalid`,
    /// `FieldValueForbidden`, `FieldValueNotSupported`, `FieldValueDuplicate`,
    /// `FieldValueTooLong`, `FieldValueTypeInvalid`.
    pub reason: &'static str,
    /// The field's path, for example `spec.containers[0].image`.
    pub field: String,
    /// The full message, for example `spec.containers: Required value`.
    pub message: String,
}

impl FieldError {
    /// `field: Required value`.
    pub fn required(field: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            reason: "FieldValueRequired",
            message: format!("{field}: Required value"),
            field,
        }
    }

    /// `field: Invalid value: <value>: detail`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl AsRef<str>) -> Self {
        let field = field.into();
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        Self {
            reason: "FieldValueInvalid",
            message: format!("{field}: Invalid value: {shown}: {}", detail.as_ref()),
            field,
        }
    }

    /// `field: Forbidden: detail`.
    pub fn forbidden(field: impl Into<String>, detail: impl AsRef<str>) -> Self {
        let field = field.into();
        Self {
            reason: "FieldValueForbidden",
            message: format!("{field}: Forbidden: {}", detail.as_ref()),
            field,
        }
    }

    /// `field: Unsupported value: <value>: supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Self {
        let field = field.into();
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        Self {
            reason: "FieldValueNotSupported",
            message: format!(
                "{field}: Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
            field,
        }
    }

    /// `field: Duplicate value: <value>`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        let field = field.into();
        Self {
            reason: "FieldValueDuplicate",
            message: format!("{field}: Duplicate value: {value}"),
            field,
        }
    }
}

/// Identifies the object an error is about, for messages such as
/// `deployments.apps "web" not found`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorTarget {
    /// API group ("" for core).
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Kind, for `Invalid` messages (`Deployment.apps "web" is invalid`).
    pub kind: String,
    /// Object name (may be empty).
    pub name: String,
}

impl ErrorTarget {
    /// `pods` or `deployments.apps`.
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// `Pod` or `Deployment.apps`.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// Everything an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: the object (or resource type) does not exist.
    #[error("{} {:?} not found", .0.qualified_resource(), .0.name)]
    NotFound(ErrorTarget),
    /// 404 for a path that names no resource at all.
    #[error("{0}")]
    NotFoundMessage(String),
    /// 409: create of an existing name.
    #[error("{} {:?} already exists", .0.qualified_resource(), .0.name)]
    AlreadyExists(ErrorTarget),
    /// 409: stale resourceVersion.
    #[error(
        "Operation cannot be fulfilled on {} {:?}: {message}",
        .target.qualified_resource(), .target.name
    )]
    Conflict {
        /// The object.
        target: ErrorTarget,
        /// Why, e.g. "the object has been modified; please apply your changes
        /// to the latest version and try again".
        message: String,
    },
    /// 409 from server-side apply: fields owned by other managers.
    #[error("Apply failed with {} conflict{}: {}", .causes.len(), if .causes.len() == 1 { "" } else { "s" }, .causes.iter().map(|c| c.message.clone()).collect::<Vec<_>>().join("\n"))]
    ApplyConflict {
        /// The object.
        target: ErrorTarget,
        /// One cause per conflicting field (reason `FieldManagerConflict`).
        causes: Vec<FieldError>,
    },
    /// 422: the object fails validation.
    #[error("{} {:?} is invalid: {}", .target.qualified_kind(), .target.name, join_causes(.causes))]
    Invalid {
        /// The object.
        target: ErrorTarget,
        /// Every field problem found.
        causes: Vec<FieldError>,
    },
    /// 400: the request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 410: the resourceVersion or continue token is too old.
    #[error("{0}")]
    Gone(String),
    /// 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 406.
    #[error("{0}")]
    NotAcceptable(String),
    /// 413.
    #[error("{0}")]
    RequestEntityTooLarge(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429 / 503: try again later.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 504: the operation did not finish in time.
    #[error("{0}")]
    Timeout(String),
    /// 500: a bug or a backend failure.
    #[error("{0}")]
    Internal(String),
}

fn join_causes(causes: &[FieldError]) -> String {
    match causes {
        [one] => one.message.clone(),
        many => format!(
            "[{}]",
            many.iter()
                .map(|c| c.message.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Result of API calls.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    /// The HTTP status code and Kubernetes reason of this error.
    pub fn code_and_reason(&self) -> (u16, &'static str) {
        match self {
            ApiError::NotFound(_) | ApiError::NotFoundMessage(_) => (404, "NotFound"),
            ApiError::AlreadyExists(_) => (409, "AlreadyExists"),
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => (409, "Conflict"),
            ApiError::Invalid { .. } => (422, "Invalid"),
            ApiError::BadRequest(_) => (400, "BadRequest"),
            ApiError::Gone(_) => (410, "Expired"),
            ApiError::Unauthorized => (401, "Unauthorized"),
            ApiError::Forbidden(_) => (403, "Forbidden"),
            ApiError::MethodNotAllowed(_) => (405, "MethodNotAllowed"),
            ApiError::NotAcceptable(_) => (406, "NotAcceptable"),
            ApiError::RequestEntityTooLarge(_) => (413, "RequestEntityTooLarge"),
            ApiError::UnsupportedMediaType(_) => (415, "UnsupportedMediaType"),
            ApiError::ServiceUnavailable(_) => (503, "ServiceUnavailable"),
            ApiError::Timeout(_) => (504, "Timeout"),
            ApiError::Internal(_) => (500, "InternalError"),
        }
    }

    fn target(&self) -> Option<&ErrorTarget> {
        match self {
            ApiError::NotFound(t) | ApiError::AlreadyExists(t) => Some(t),
            ApiError::Conflict { target, .. }
            | ApiError::ApplyConflict { target, .. }
            | ApiError::Invalid { target, .. } => Some(target),
            _ => None,
        }
    }

    /// The Kubernetes `Status` object (`kind: Status`, `status: Failure`) for
    /// this error, with its HTTP code.
    pub fn to_status(&self) -> (u16, Value) {
        let (code, reason) = self.code_and_reason();
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": reason,
            "code": code,
        });
        if let Some(target) = self.target() {
            let mut details = json!({ "name": target.name, "kind": target.resource });
            if !target.group.is_empty() {
                details["group"] = json!(target.group);
            }
            let causes = match self {
                ApiError::Invalid { causes, .. } | ApiError::ApplyConflict { causes, .. } => causes
                    .iter()
                    .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
                    .collect::<Vec<_>>(),
                _ => Vec::new(),
            };
            if !causes.is_empty() {
                details["causes"] = Value::Array(causes);
            }
            status["details"] = details;
        }
        (code, status)
    }
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        let message = err.to_string();
        match err {
            ApiError::NotFound(_) | ApiError::NotFoundMessage(_) => {
                tonic::Status::not_found(message)
            }
            ApiError::AlreadyExists(_) => tonic::Status::already_exists(message),
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => {
                tonic::Status::aborted(message)
            }
            ApiError::Invalid { .. }
            | ApiError::BadRequest(_)
            | ApiError::NotAcceptable(_)
            | ApiError::UnsupportedMediaType(_) => tonic::Status::invalid_argument(message),
            ApiError::RequestEntityTooLarge(_) => tonic::Status::resource_exhausted(message),
            ApiError::Gone(_) => tonic::Status::out_of_range(message),
            ApiError::Unauthorized => tonic::Status::unauthenticated(message),
            ApiError::Forbidden(_) => tonic::Status::permission_denied(message),
            ApiError::MethodNotAllowed(_) => tonic::Status::unimplemented(message),
            ApiError::ServiceUnavailable(_) => tonic::Status::unavailable(message),
            ApiError::Timeout(_) => tonic::Status::deadline_exceeded(message),
            ApiError::Internal(_) => tonic::Status::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(name: &str) -> ErrorTarget {
        ErrorTarget {
            group: "apps".into(),
            resource: "deployments".into(),
            kind: "Deployment".into(),
            name: name.into(),
        }
    }

    #[test]
    fn messages_match_kubernetes() {
        assert_eq!(
            ApiError::NotFound(deployment("web")).to_string(),
            r#"deployments.apps "web" not found"#
        );
        let conflict = ApiError::Conflict {
            target: deployment("web"),
            message: "the object has been modified; please apply your changes to the latest version and try again".into(),
        };
        assert_eq!(
            conflict.to_string(),
            r#"Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again"#
        );
        let invalid = ApiError::Invalid {
            target: deployment("web"),
            causes: vec![
                FieldError::required("spec.selector"),
                FieldError::required("spec.template"),
            ],
        };
        assert_eq!(
            invalid.to_string(),
            r#"Deployment.apps "web" is invalid: [spec.selector: Required value, spec.template: Required value]"#
        );
        let (code, status) = invalid.to_status();
        assert_eq!(code, 422);
        assert_eq!(status["details"]["causes"][1]["field"], "spec.template");
    }
}
