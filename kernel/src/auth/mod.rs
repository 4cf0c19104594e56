//! Authentication and authorization: the cluster's TLS identity (CA, serving
//! and client certificates), bearer tokens (plugin and bootstrap tokens), the
//! authenticated user, and RBAC.
pub mod audit;
pub mod bearer;
pub mod gate;
pub mod rbac;
pub mod serviceaccount;
pub mod tls;
pub mod token_file;
pub mod tokens;
pub mod user;
