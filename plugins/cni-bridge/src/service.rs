//! `kerno.network.v1.Network` over a [`Driver`] that may not be ready yet
//! (while the driver waits for its Node's pod CIDR).

use std::sync::Arc;

use kerno_proto::network::v1 as pb;
use tokio::sync::OnceCell;
use tonic::{Request, Response, Status};

use crate::driver::{Driver, DriverError};

/// The driver's name in `Version`.
pub const DRIVER_NAME: &str = "cni-bridge";

/// The gRPC service.
#[derive(Clone)]
pub struct NetworkService {
    driver: Arc<OnceCell<Arc<Driver>>>,
}

impl NetworkService {
    /// A service answering UNAVAILABLE until `driver` is set.
    pub fn new(driver: Arc<OnceCell<Arc<Driver>>>) -> Self {
        Self { driver }
    }

    /// A service over a ready driver.
    pub fn ready(driver: Arc<Driver>) -> Self {
        Self {
            driver: Arc::new(OnceCell::new_with(Some(driver))),
        }
    }

    fn driver(&self) -> Result<&Arc<Driver>, Status> {
        self.driver.get().ok_or_else(|| {
            DriverError::NotReady("the node's pod CIDR is not known yet".into()).into()
        })
    }

    /// The tonic server of this service.
    pub fn into_server(self) -> pb::network_server::NetworkServer<Self> {
        pb::network_server::NetworkServer::new(self)
    }
}

#[tonic::async_trait]
impl pb::network_server::Network for NetworkService {
    async fn version(
        &self,
        _: Request<pb::VersionRequest>,
    ) -> Result<Response<pb::VersionResponse>, Status> {
        Ok(Response::new(pb::VersionResponse {
            driver_name: DRIVER_NAME.into(),
            driver_version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    async fn set_up(
        &self,
        request: Request<pb::SetUpRequest>,
    ) -> Result<Response<pb::SetUpResponse>, Status> {
        let driver = self.driver()?;
        Ok(Response::new(driver.set_up(request.into_inner()).await?))
    }

    async fn tear_down(
        &self,
        request: Request<pb::TearDownRequest>,
    ) -> Result<Response<pb::TearDownResponse>, Status> {
        let driver = self.driver()?;
        driver.tear_down(request.into_inner()).await?;
        Ok(Response::new(pb::TearDownResponse {}))
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::SetUpResponse>, Status> {
        let driver = self.driver()?;
        Ok(Response::new(
            driver.status(&request.into_inner().sandbox_id)?,
        ))
    }

    async fn sync_routes(
        &self,
        request: Request<pb::SyncRoutesRequest>,
    ) -> Result<Response<pb::SyncRoutesResponse>, Status> {
        let driver = self.driver()?;
        driver.sync_routes(&request.into_inner().nodes).await?;
        Ok(Response::new(pb::SyncRoutesResponse {}))
    }
}
