//! The kerno kernel: typed object store, watch fan-out, REST and gRPC APIs.
pub mod error;
pub mod registry;
pub mod store;
pub mod testing;
