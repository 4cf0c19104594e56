//! The Kubernetes-compatible API surface of the kernel.
pub mod discovery;
pub mod openapi;
