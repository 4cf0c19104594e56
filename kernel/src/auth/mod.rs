//! Authentication: the cluster's TLS identity (CA, serving and client certificates).
pub mod tls;
