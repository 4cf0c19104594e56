//! Authentication and authorization: the cluster's TLS identity (CA, serving
//! and client certificates), the authenticated user, and RBAC.
pub mod rbac;
pub mod tls;
pub mod user;
