//! The kernel as a client of a plugin's `kerno.plugin.v1.Plugin` service:
//! health checks and the Shutdown RPC, over the endpoint of its handshake.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use kerno_proto::plugin::v1 as pb;
use tonic::transport::{Channel, Endpoint as TonicEndpoint};

use super::spawn::Endpoint;

/// A client of one plugin's `Plugin` service.
#[derive(Clone)]
pub struct PluginClient {
    client: pb::plugin_client::PluginClient<Channel>,
}

impl PluginClient {
    /// A lazily connecting client of `endpoint` (connections are made, and
    /// remade, on each call as needed).
    pub fn new(endpoint: &Endpoint, timeout: Duration) -> Result<Self, tonic::transport::Error> {
        let channel = match endpoint {
            Endpoint::Tcp(addr) => TonicEndpoint::from_shared(format!("http://{addr}"))?
                .connect_timeout(timeout)
                .timeout(timeout)
                .connect_lazy(),
            Endpoint::Unix(path) => {
                let path = path.clone();
                // The URI is unused: the connector dials the socket.
                TonicEndpoint::from_static("http://plugin.local")
                    .connect_timeout(timeout)
                    .timeout(timeout)
                    .connect_with_connector_lazy(tower::service_fn(move |_: http::Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    }))
            }
        };
        Ok(Self {
            client: pb::plugin_client::PluginClient::new(channel),
        })
    }

    /// Asks for the plugin's health: `Ok(None)` when serving, `Ok(Some(why))`
    /// when it reports NOT_SERVING, `Err` when it cannot be reached.
    pub async fn health(&self) -> Result<Option<String>, tonic::Status> {
        let reply = self
            .client
            .clone()
            .health(pb::HealthRequest {})
            .await?
            .into_inner();
        let serving = reply.status == pb::health_response::ServingStatus::Serving as i32;
        Ok((!serving).then(|| {
            if reply.message.is_empty() {
                "the plugin reports NOT_SERVING".to_owned()
            } else {
                format!("the plugin reports NOT_SERVING: {}", reply.message)
            }
        }))
    }

    /// Asks the plugin to stop within `grace`.
    pub async fn shutdown(&self, grace: Duration) -> Result<(), tonic::Status> {
        self.client
            .clone()
            .shutdown(pb::ShutdownRequest {
                grace_seconds: u32::try_from(grace.as_secs()).unwrap_or(u32::MAX),
            })
            .await
            .map(|_| ())
    }
}
