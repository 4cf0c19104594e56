//! gRPC clients of the node's drivers over their unix sockets.

use std::path::PathBuf;

use kerno_proto::network::v1::network_client::NetworkClient as RawNetworkClient;
use kerno_proto::runtime::v1::runtime_client::RuntimeClient as RawRuntimeClient;
use tonic::transport::{Channel, Endpoint};

/// A client of `kerno.runtime.v1`.
pub type RuntimeClient = RawRuntimeClient<Channel>;
/// A client of `kerno.network.v1`.
pub type NetworkClient = RawNetworkClient<Channel>;

/// Why a driver endpoint is unusable.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// Only `unix:///absolute/path` endpoints are supported.
    #[error("driver endpoint {0:?} is not unix:///absolute/path")]
    BadEndpoint(String),
    /// The channel could not be built.
    #[error("driver endpoint {0}: {1}")]
    Transport(String, #[source] tonic::transport::Error),
}

/// A lazily connecting channel to a unix socket: the driver may start after
/// the kubelet, and reconnects happen on the next call.
pub fn unix_channel(endpoint: &str) -> Result<Channel, DriverError> {
    let path: PathBuf = crate::config::unix_socket_path(endpoint)
        .ok_or_else(|| DriverError::BadEndpoint(endpoint.to_owned()))?;
    // The URI is required by tonic but unused: the connector dials the socket.
    let channel = Endpoint::try_from("http://[::1]:1")
        .map_err(|e| DriverError::Transport(endpoint.to_owned(), e))?
        .connect_with_connector_lazy(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                tokio::net::UnixStream::connect(path)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        }));
    Ok(channel)
}

/// The runtime driver at `endpoint`.
pub fn runtime(endpoint: &str) -> Result<RuntimeClient, DriverError> {
    Ok(RawRuntimeClient::new(unix_channel(endpoint)?))
}

/// The network driver at `endpoint`.
pub fn network(endpoint: &str) -> Result<NetworkClient, DriverError> {
    Ok(RawNetworkClient::new(unix_channel(endpoint)?))
}
