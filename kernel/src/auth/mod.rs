//! Authentication: the cluster's TLS identity (CA, serving and client
//! certificates) and bearer tokens (plugin and bootstrap tokens).
pub mod bearer;
pub mod tls;
pub mod tokens;
