//! The kerno kernel: typed object store, watch fan-out, REST and gRPC APIs.
pub mod auth;
pub mod config;
pub mod error;
pub mod kubeconfig;
pub mod registry;
pub mod store;
