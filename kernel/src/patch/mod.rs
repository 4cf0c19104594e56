//! Patches and server-side apply, as pure functions over the Kubernetes JSON
//! encoding of objects: JSON patch (RFC 6902), JSON merge patch (RFC 7386),
//! strategic merge patch, and server-side apply with `metadata.managedFields`.

mod apply;
mod fieldset;
mod json;
mod managed_fields;
mod merge;
mod schema;
mod strategic;
mod typed;

pub use apply::{ApplyError, Conflict, FieldManager, Scope, apply, track_update};
pub use fieldset::FieldSet;
pub use json::json_patch;
pub use managed_fields::ManagedFieldsEntry;
pub use merge::merge_patch;
pub use schema::{ListKind, Schema};
pub use strategic::strategic_merge;

/// Why a patch could not be applied. Messages follow Kubernetes'.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatchError {
    /// The patch is not valid JSON of the expected shape (400 BadRequest).
    #[error("{0}")]
    Decode(String),
    /// A JSON patch operation failed: bad path, failed `test` (422).
    #[error("{0}")]
    Operation(String),
    /// A strategic merge patch is malformed: bad directive, missing merge
    /// key, wrong types (400 BadRequest).
    #[error("{0}")]
    Strategic(String),
}

impl PatchError {
    /// The HTTP status Kubernetes answers with: 422 for failed JSON patch
    /// operations, 400 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::Operation(_) => 422,
            PatchError::Decode(_) | PatchError::Strategic(_) => 400,
        }
    }
}

/// `Result` with [`PatchError`].
pub type Result<T, E = PatchError> = std::result::Result<T, E>;
