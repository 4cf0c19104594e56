//! The connection to containerd: a lazily connecting channel (the driver
//! starts even when containerd is down, and reconnects when it comes back),
//! the namespace header on every call, and transport errors turned into
//! "containerd is not reachable".

use std::path::PathBuf;

use containerd_client::services::v1::{
    containers_client::ContainersClient, content_client::ContentClient,
    images_client::ImagesClient, snapshots::snapshots_client::SnapshotsClient,
    tasks_client::TasksClient, version_client::VersionClient,
};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::error::{Error, Result};

/// containerd at one socket, in one namespace.
#[derive(Clone)]
pub struct Containerd {
    channel: Channel,
    /// The socket path.
    pub address: PathBuf,
    /// The containerd namespace of this node.
    pub namespace: String,
}

impl Containerd {
    /// A client that connects on first use.
    pub fn new(address: impl Into<PathBuf>, namespace: impl Into<String>) -> Result<Self> {
        let address = address.into();
        let path = address.clone();
        let channel = Endpoint::from_static("http://[::]:50051")
            .connect_timeout(std::time::Duration::from_secs(3))
            .connect_with_connector_lazy(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        Ok(Self {
            channel,
            address,
            namespace: namespace.into(),
        })
    }

    /// A request carrying the namespace header.
    pub fn req<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        if let Ok(ns) = self.namespace.parse() {
            req.metadata_mut().insert("containerd-namespace", ns);
        }
        req
    }

    /// containerd's status as the driver's error; transport failures become
    /// [`Error::Unavailable`].
    pub fn err(&self, op: &'static str, status: Status) -> Error {
        let transport = status.code() == Code::Unavailable
            || (status.code() == Code::Unknown && status.message().contains("transport"));
        if transport {
            Error::Unavailable {
                address: self.address.display().to_string(),
                reason: status.message().to_owned(),
            }
        } else {
            Error::Containerd { op, status }
        }
    }

    /// The containers service.
    pub fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.channel.clone())
    }
    /// The tasks service.
    pub fn tasks(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }
    /// The images service.
    pub fn images(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.channel.clone())
    }
    /// The content service.
    pub fn content(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel.clone())
    }
    /// The snapshots service.
    pub fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.channel.clone())
    }
    /// The version service.
    pub fn version(&self) -> VersionClient<Channel> {
        VersionClient::new(self.channel.clone())
    }

    /// containerd's version, which also checks that it is reachable.
    pub async fn server_version(&self) -> Result<String> {
        let v = self
            .version()
            .version(Request::new(()))
            .await
            .map_err(|s| self.err("version", s))?;
        Ok(v.into_inner().version)
    }

    /// Reads a whole blob from the content store.
    pub async fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        use containerd_client::services::v1::ReadContentRequest;
        let mut stream = self
            .content()
            .read(self.req(ReadContentRequest {
                digest: digest.to_owned(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(|s| self.err("read content", s))?
            .into_inner();
        let mut data = Vec::new();
        while let Some(chunk) = stream
            .message()
            .await
            .map_err(|s| self.err("read content", s))?
        {
            data.extend_from_slice(&chunk.data);
        }
        Ok(data)
    }
}
