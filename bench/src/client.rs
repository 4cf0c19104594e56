//! Clients of the kernel for the benchmark: gRPC and REST, both over TLS
//! with the admin certificate.

use anyhow::Result;
use kerno_proto::kernel::v1 as pb;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::kernel::KernelProcess;

/// A gRPC channel to the kernel.
pub async fn grpc(kernel: &KernelProcess) -> Result<pb::kernel_client::KernelClient<Channel>> {
    let pki = kernel.data_dir.path().join("pki");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(pki.join("ca.crt"))?))
        .identity(Identity::from_pem(
            std::fs::read(pki.join("admin.crt"))?,
            std::fs::read(pki.join("admin.key"))?,
        ))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{}", kernel.addr))?
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(pb::kernel_client::KernelClient::new(channel).max_decoding_message_size(256 * 1024 * 1024))
}

/// A REST client (HTTP/1.1 connection pool).
pub fn rest(kernel: &KernelProcess) -> Result<reqwest::Client> {
    let pki = kernel.data_dir.path().join("pki");
    let mut identity = std::fs::read(pki.join("admin.crt"))?;
    identity.extend(std::fs::read(pki.join("admin.key"))?);
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(
            pki.join("ca.crt"),
        )?)?)
        .identity(reqwest::Identity::from_pem(&identity)?)
        .pool_max_idle_per_host(128)
        .build()?)
}

/// A core/v1 resource reference.
pub fn core(plural: &str, namespace: &str, name: &str) -> Option<pb::ResourceRef> {
    Some(pb::ResourceRef {
        group: String::new(),
        version: "v1".into(),
        resource: plural.into(),
        namespace: namespace.into(),
        name: name.into(),
    })
}
