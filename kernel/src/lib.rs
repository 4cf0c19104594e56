//! The kerno kernel: typed object store, watch fan-out, REST and gRPC APIs.
//!
//! Requests enter through [`api`] (REST for kubectl, gRPC for plugins), are
//! served by one [`service`] layer over the [`registry`] of types, read from
//! the per-type [`watch`] caches and write to the [`store`].
pub mod admission;
pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod images;
pub mod kubeconfig;
pub mod patch;
pub mod plugins;
pub mod registry;
pub mod selector;
pub mod server;
pub mod service;
pub mod store;
pub mod testing;
pub mod watch;
