//! The Kubernetes-compatible API surface of the kernel: REST (what kubectl
//! speaks) and gRPC (what plugins speak), over one service layer.
pub mod discovery;
pub mod grpc;
pub mod openapi;
pub mod rest;
