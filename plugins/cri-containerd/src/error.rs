//! The driver's error and its one mapping to a gRPC status.

use tonic::{Code, Status};

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// containerd's socket cannot be reached.
    #[error("containerd is not reachable at {address}: {reason}")]
    Unavailable {
        /// The socket tried.
        address: String,
        /// What the transport said.
        reason: String,
    },
    /// An image is not in the node's containerd namespace.
    #[error("image {0} not present")]
    ImageNotPresent(String),
    /// An unknown sandbox, container or exec.
    #[error("{0}")]
    NotFound(String),
    /// A malformed request (unknown runtime handler, empty command...).
    #[error("{0}")]
    InvalidArgument(String),
    /// A request that does not fit the object's state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// containerd refused a call.
    #[error("containerd: {op}: {status}")]
    Containerd {
        /// The call.
        op: &'static str,
        /// containerd's answer.
        status: Status,
    },
    /// A local file or system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Something the driver did not expect.
    #[error("{0}")]
    Internal(String),
}

/// The driver's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }

    /// Whether this is a NOT_FOUND of any kind.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound(_) | Error::ImageNotPresent(_) => true,
            Error::Containerd { status, .. } => status.code() == Code::NotFound,
            _ => false,
        }
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::io("system call", std::io::Error::from(e))
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Unavailable { .. } => Code::Unavailable,
            Error::ImageNotPresent(_) | Error::NotFound(_) => Code::NotFound,
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Containerd { status, .. } => match status.code() {
                Code::NotFound => Code::NotFound,
                Code::AlreadyExists => Code::AlreadyExists,
                Code::InvalidArgument => Code::InvalidArgument,
                Code::FailedPrecondition => Code::FailedPrecondition,
                _ => Code::Internal,
            },
            Error::Io { .. } | Error::Internal(_) => Code::Internal,
        };
        Status::new(code, e.to_string())
    }
}
