//! The kernel client: `kerno.kernel.v1` over TLS, with a bearer token (or a
//! client certificate) on every call and trace context in gRPC metadata.
//!
//! [`KernelClient`] is cheap to clone (one HTTP/2 channel underneath); build
//! typed handles from it with [`Api`].

mod api;
mod error;
mod object;

use std::time::Duration;

use kerno_proto::kernel::v1::kernel_client::KernelClient as RawKernelClient;
use kerno_proto::plugin::v1::plugin_registry_client::PluginRegistryClient;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

pub use api::{
    Api, DeleteParams, ListParams, ObjectList, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
pub(crate) use error::from_status_object;
pub use error::{Error, Result};
pub use object::{ApiResource, DynamicObject, ObjectKey, Resource};

use crate::plugin::env;

/// How to reach and authenticate to the kernel.
#[derive(Clone, Debug, Default)]
pub struct ClientConfig {
    /// `host:port` of the kernel's TLS API.
    pub addr: String,
    /// PEM of the CA that signed the kernel's serving certificate.
    pub ca_pem: Option<Vec<u8>>,
    /// Bearer token sent as `authorization: Bearer <token>` on every call.
    pub token: Option<String>,
    /// Client certificate and key (PEM), for callers authenticated by certificate
    /// (tests, the admin) rather than by token.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Name the kernel's certificate is checked against; defaults to the host
    /// part of `addr`, or `localhost` for a loopback IP address.
    pub tls_server_name: Option<String>,
    /// Timeout for connecting; unary calls have no deadline unless the caller
    /// wraps them in one.
    pub connect_timeout: Option<Duration>,
}

impl ClientConfig {
    /// A config for `addr` with no credentials yet.
    pub fn new(addr: impl Into<String>) -> Self {
        Self {
            addr: addr.into(),
            ..Self::default()
        }
    }

    /// The config the supervisor hands a plugin: `KERNO_KERNEL_ADDR`,
    /// `KERNO_CA_FILE`, `KERNO_TOKEN`; optionally `KERNO_TLS_SERVER_NAME`, and
    /// `KERNO_CLIENT_CERT_FILE` with `KERNO_CLIENT_KEY_FILE` for a client
    /// certificate.
    pub fn from_env() -> Result<Self> {
        let addr = std::env::var(env::KERNEL_ADDR)
            .map_err(|_| Error::Config(format!("{} is not set", env::KERNEL_ADDR)))?;
        let mut config = Self::new(addr);
        if let Ok(path) = std::env::var(env::CA_FILE) {
            let pem = std::fs::read(&path)
                .map_err(|e| Error::Config(format!("cannot read {}={path}: {e}", env::CA_FILE)))?;
            config.ca_pem = Some(pem);
        }
        config.token = std::env::var(env::TOKEN).ok().filter(|t| !t.is_empty());
        if let (Ok(cert), Ok(key)) = (
            std::env::var(env::CLIENT_CERT_FILE),
            std::env::var(env::CLIENT_KEY_FILE),
        ) {
            let read = |path: &str| {
                std::fs::read(path).map_err(|e| Error::Config(format!("cannot read {path}: {e}")))
            };
            config.identity = Some((read(&cert)?, read(&key)?));
        }
        config.tls_server_name = std::env::var(env::TLS_SERVER_NAME)
            .ok()
            .filter(|t| !t.is_empty());
        Ok(config)
    }

    /// Sets the CA certificate (PEM).
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Sets the bearer token.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sets a client certificate and key (PEM).
    pub fn with_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// Sets the name the server certificate is checked against.
    pub fn with_tls_server_name(mut self, name: impl Into<String>) -> Self {
        self.tls_server_name = Some(name.into());
        self
    }

    fn server_name(&self) -> String {
        if let Some(name) = &self.tls_server_name {
            return name.clone();
        }
        let host = match self.addr.rsplit_once(':') {
            Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
            None => self.addr.as_str(),
        };
        // Certificates for a local kernel name "localhost"; IP SANs are not
        // guaranteed, so a loopback address is checked against that name.
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) if ip.is_loopback() => "localhost".to_owned(),
            _ => host.to_owned(),
        }
    }

    fn endpoint(&self) -> Result<Endpoint> {
        let mut tls = ClientTlsConfig::new().domain_name(self.server_name());
        if let Some(ca) = &self.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(ca));
        }
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        let mut endpoint = Endpoint::from_shared(format!("https://{}", self.addr))
            .map_err(|e| Error::Config(format!("bad kernel address {:?}: {e}", self.addr)))?
            .tls_config(tls)?
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if let Some(timeout) = self.connect_timeout {
            endpoint = endpoint.connect_timeout(timeout);
        }
        Ok(endpoint)
    }
}

/// Adds the bearer token and the current trace context to every call.
#[derive(Clone)]
pub struct AuthInterceptor {
    authorization: Option<AsciiMetadataValue>,
}

impl Interceptor for AuthInterceptor {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        crate::telemetry::inject_context(request.metadata_mut());
        Ok(request)
    }
}

/// The channel type every generated client runs on.
pub type AuthChannel = InterceptedService<Channel, AuthInterceptor>;

/// A connection to the kernel. Clone it freely.
#[derive(Clone)]
pub struct KernelClient {
    channel: Channel,
    interceptor: AuthInterceptor,
}

impl KernelClient {
    /// Connects to the kernel now, failing if it cannot be reached.
    pub async fn connect(config: &ClientConfig) -> Result<Self> {
        let channel = config.endpoint()?.connect().await?;
        Self::with_channel(channel, config)
    }

    /// A client that connects on first use and reconnects after failures; use
    /// it when the kernel may not be up yet. Call it inside a tokio runtime.
    pub fn connect_lazy(config: &ClientConfig) -> Result<Self> {
        let channel = config.endpoint()?.connect_lazy();
        Self::with_channel(channel, config)
    }

    /// The client a supervised plugin uses, configured from the environment.
    pub fn from_env() -> Result<Self> {
        Self::connect_lazy(&ClientConfig::from_env()?)
    }

    /// A client over an existing channel (for example an in-process test server).
    pub fn with_channel(channel: Channel, config: &ClientConfig) -> Result<Self> {
        let authorization = match &config.token {
            Some(token) => Some(
                format!("Bearer {token}")
                    .parse::<AsciiMetadataValue>()
                    .map_err(|_| Error::Config("the token is not valid ASCII".into()))?,
            ),
            None => None,
        };
        Ok(Self {
            channel,
            interceptor: AuthInterceptor { authorization },
        })
    }

    /// The generated `kerno.kernel.v1.Kernel` client, for calls the typed API lacks.
    pub fn kernel(&self) -> RawKernelClient<AuthChannel> {
        RawKernelClient::with_interceptor(self.channel.clone(), self.interceptor.clone())
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// The generated `kerno.plugin.v1.PluginRegistry` client.
    pub fn plugin_registry(&self) -> PluginRegistryClient<AuthChannel> {
        PluginRegistryClient::with_interceptor(self.channel.clone(), self.interceptor.clone())
    }
}

/// Reads `authorization: Bearer <token>` from request metadata (for servers
/// and tests that check what the client sent).
pub fn bearer_token(metadata: &MetadataMap) -> Option<&str> {
    metadata
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_name_defaults_to_host_or_localhost() {
        assert_eq!(
            ClientConfig::new("127.0.0.1:6443").server_name(),
            "localhost"
        );
        assert_eq!(ClientConfig::new("[::1]:6443").server_name(), "localhost");
        assert_eq!(
            ClientConfig::new("kernel.example:6443").server_name(),
            "kernel.example"
        );
        assert_eq!(
            ClientConfig::new("10.0.0.1:6443")
                .with_tls_server_name("kerno")
                .server_name(),
            "kerno"
        );
    }

    #[tokio::test]
    async fn interceptor_adds_bearer_token() {
        let client = KernelClient::with_channel(
            Endpoint::from_static("http://127.0.0.1:1").connect_lazy(),
            &ClientConfig::new("127.0.0.1:1").with_token("s3cret"),
        );
        let Ok(client) = client else {
            panic!("client");
        };
        let mut interceptor = client.interceptor.clone();
        let request = interceptor.call(tonic::Request::new(()));
        let Ok(request) = request else {
            panic!("interceptor refused");
        };
        assert_eq!(bearer_token(request.metadata()), Some("s3cret"));
    }

    #[tokio::test]
    async fn bad_token_is_a_config_error() {
        let result = KernelClient::with_channel(
            Endpoint::from_static("http://127.0.0.1:1").connect_lazy(),
            &ClientConfig::new("127.0.0.1:1").with_token("bad\ntoken"),
        );
        assert!(matches!(result, Err(Error::Config(_))));
    }
}
