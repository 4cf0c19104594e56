//! kerno's wire protocols. This crate holds only generated code: the `.proto`
//! files under `proto/` are the source of truth for every language.

/// `kerno.kernel.v1`: the kernel's object API (Get, List, Create, Update,
/// UpdateStatus, Patch, Delete, Watch on any registered resource).
pub mod kernel {
    /// Version 1 of the kernel API.
    #[allow(missing_docs, clippy::all)]
    pub mod v1 {
        tonic::include_proto!("kerno.kernel.v1");
    }
}
