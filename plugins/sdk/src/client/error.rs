//! The client's error: gRPC status codes mapped back to Kubernetes semantics.

use tonic::Code;

/// Result of client operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to the kernel.
///
/// The kernel maps Kubernetes API errors onto gRPC codes; this enum maps them
/// back, so a controller can match on `Error::Conflict` the way a kube-rs user
/// matches on HTTP 409.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object or resource type does not exist (NOT_FOUND, HTTP 404).
    #[error("not found: {0}")]
    NotFound(String),
    /// An object with that name already exists (ALREADY_EXISTS, HTTP 409).
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The object changed since it was read: resourceVersion mismatch or an
    /// apply conflict (ABORTED, HTTP 409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The requested resourceVersion is too old to watch from (OUT_OF_RANGE, HTTP 410).
    #[error("gone: {0}")]
    Gone(String),
    /// The object or request is invalid (INVALID_ARGUMENT, HTTP 400/422).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The caller has no valid credentials (UNAUTHENTICATED, HTTP 401).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The caller may not do this (PERMISSION_DENIED, HTTP 403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The kernel cannot serve now; retry later (UNAVAILABLE, HTTP 503).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The call did not finish in time (DEADLINE_EXCEEDED, HTTP 504).
    #[error("timeout: {0}")]
    Timeout(String),
    /// The kernel refused a precondition, for example no shared plugin protocol
    /// version (FAILED_PRECONDITION).
    #[error("failed precondition: {0}")]
    FailedPrecondition(String),
    /// The kernel does not implement this call (UNIMPLEMENTED).
    #[error("unimplemented: {0}")]
    Unimplemented(String),
    /// Any other gRPC status.
    #[error("kernel error ({code:?}): {message}")]
    Api {
        /// The gRPC code.
        code: Code,
        /// The kernel's message.
        message: String,
    },
    /// The connection could not be set up.
    #[error("transport: {0}")]
    Transport(#[source] tonic::transport::Error),
    /// An object could not be encoded or decoded as JSON.
    #[error("json: {0}")]
    Json(#[source] serde_json::Error),
    /// The client configuration is incomplete or unreadable.
    #[error("config: {0}")]
    Config(String),
}

impl Error {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unavailable(_) | Error::Timeout(_) | Error::Transport(_)
        ) || matches!(self, Error::Api { code, .. } if *code == Code::ResourceExhausted || *code == Code::Internal || *code == Code::Unknown)
    }

    /// The HTTP status code Kubernetes would use for this error, if it has one.
    pub fn http_code(&self) -> Option<u16> {
        Some(match self {
            Error::NotFound(_) => 404,
            Error::AlreadyExists(_) | Error::Conflict(_) => 409,
            Error::Gone(_) => 410,
            Error::Invalid(_) => 422,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) => 403,
            Error::Unavailable(_) => 503,
            Error::Timeout(_) => 504,
            _ => return None,
        })
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        match status.code() {
            Code::NotFound => Error::NotFound(message),
            Code::AlreadyExists => Error::AlreadyExists(message),
            Code::Aborted => Error::Conflict(message),
            Code::OutOfRange => Error::Gone(message),
            Code::InvalidArgument => Error::Invalid(message),
            Code::Unauthenticated => Error::Unauthorized(message),
            Code::PermissionDenied => Error::Forbidden(message),
            Code::Unavailable => Error::Unavailable(message),
            Code::DeadlineExceeded => Error::Timeout(message),
            Code::FailedPrecondition => Error::FailedPrecondition(message),
            Code::Unimplemented => Error::Unimplemented(message),
            code => Error::Api { code, message },
        }
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(err: tonic::transport::Error) -> Self {
        Error::Transport(err)
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Json(err)
    }
}

/// Maps a Kubernetes `Status` object (as carried by a watch ERROR event) to an error.
pub(crate) fn from_status_object(status: &serde_json::Value) -> Error {
    let message = status
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("watch error")
        .to_owned();
    match status.get("code").and_then(|c| c.as_u64()) {
        Some(404) => Error::NotFound(message),
        Some(409) => Error::Conflict(message),
        Some(410) => Error::Gone(message),
        Some(400) | Some(422) => Error::Invalid(message),
        Some(401) => Error::Unauthorized(message),
        Some(403) => Error::Forbidden(message),
        Some(503) => Error::Unavailable(message),
        Some(504) => Error::Timeout(message),
        _ => Error::Api {
            code: Code::Unknown,
            message,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_to_kubernetes_errors() {
        assert!(matches!(
            Error::from(tonic::Status::not_found("x")),
            Error::NotFound(m) if m == "x"
        ));
        assert!(matches!(
            Error::from(tonic::Status::aborted("c")),
            Error::Conflict(_)
        ));
        assert!(matches!(
            Error::from(tonic::Status::out_of_range("old")),
            Error::Gone(_)
        ));
        assert!(matches!(
            Error::from(tonic::Status::invalid_argument("bad")),
            Error::Invalid(_)
        ));
        assert!(matches!(
            Error::from(tonic::Status::already_exists("dup")),
            Error::AlreadyExists(_)
        ));
        assert!(matches!(
            Error::from(tonic::Status::failed_precondition("v")),
            Error::FailedPrecondition(_)
        ));
        let other = Error::from(tonic::Status::data_loss("d"));
        assert!(matches!(
            other,
            Error::Api {
                code: Code::DataLoss,
                ..
            }
        ));
        assert_eq!(Error::Gone(String::new()).http_code(), Some(410));
        assert!(Error::Unavailable(String::new()).is_transient());
        assert!(!Error::Conflict(String::new()).is_transient());
    }

    #[test]
    fn watch_error_status_maps_by_code() {
        let gone = serde_json::json!({"kind": "Status", "code": 410, "message": "too old resource version"});
        assert!(
            matches!(from_status_object(&gone), Error::Gone(m) if m == "too old resource version")
        );
        let other = serde_json::json!({"kind": "Status", "code": 500});
        assert!(matches!(from_status_object(&other), Error::Api { .. }));
    }
}
