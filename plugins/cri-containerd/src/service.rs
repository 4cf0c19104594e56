//! `kerno.runtime.v1.Runtime` over [`Runtime`]: requests in, errors mapped
//! to statuses by `From<Error> for Status`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use kerno_proto::runtime::v1 as pb;
use pb::runtime_server::{Runtime as RuntimeApi, RuntimeServer};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::Runtime;
use crate::containers::now_nanos;
use crate::error::{Error, Result};
use crate::logs::{LogOptions, render};
use crate::sandbox::SandboxRecord;

type Rpc<T> = std::result::Result<Response<T>, Status>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = std::result::Result<T, Status>> + Send>>;

/// The gRPC face of the driver.
#[derive(Clone)]
pub struct RuntimeService {
    rt: Runtime,
}

impl RuntimeService {
    /// Serves `rt`.
    pub fn new(rt: Runtime) -> Self {
        Self { rt }
    }

    /// As a tonic service.
    pub fn into_server(self) -> RuntimeServer<Self> {
        RuntimeServer::new(self)
    }
}

fn sandbox_view(rt: &Runtime, r: &SandboxRecord) -> pb::PodSandbox {
    pb::PodSandbox {
        id: r.id.clone(),
        metadata: Some(pb::PodSandboxMetadata {
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            uid: r.uid.clone(),
            attempt: r.attempt,
        }),
        state: if r.stopped {
            pb::SandboxState::SandboxNotready
        } else {
            pb::SandboxState::SandboxReady
        } as i32,
        created_at_unix_nanos: r.created_at_unix_nanos,
        labels: r.labels.clone(),
        annotations: r.annotations.clone(),
        netns_path: rt.sandboxes.netns_path(r),
    }
}

impl Runtime {
    /// Creates a sandbox and its namespaces.
    pub async fn run_pod_sandbox(
        &self,
        config: pb::PodSandboxConfig,
    ) -> Result<pb::RunPodSandboxResponse> {
        let runtime = self
            .handlers
            .get(&config.runtime_handler)
            .cloned()
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown runtime handler {:?}: no RuntimeClass handler of that name is configured",
                    config.runtime_handler
                ))
            })?;
        let meta = config.metadata.clone().unwrap_or_default();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let hostname = if config.hostname.is_empty() {
            meta.name.clone()
        } else {
            config.hostname.clone()
        };
        let record = SandboxRecord {
            id: id.clone(),
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            attempt: meta.attempt,
            hostname,
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            log_directory: config.log_directory.clone(),
            host_network: config.host_network,
            runtime,
            created_at_unix_nanos: now_nanos(),
            stopped: false,
            memory_limit_bytes: config
                .resources
                .as_ref()
                .map_or(0, |r| r.memory_limit_bytes),
        };
        let store = self.sandboxes.clone();
        let r = record.clone();
        tokio::task::spawn_blocking(move || store.create(&r, &config))
            .await
            .map_err(|e| Error::Internal(format!("sandbox creation: {e}")))??;
        Ok(pb::RunPodSandboxResponse {
            sandbox_id: id,
            netns_path: self.sandboxes.netns_path(&record),
        })
    }

    /// Kills the sandbox's containers and marks it not ready; idempotent.
    pub async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        let mut record = match self.sandboxes.get(id) {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        for c in self.list_containers(id, &HashMap::new()).await? {
            self.stop_container(&c.id, Duration::ZERO).await?;
        }
        record.stopped = true;
        self.sandboxes.save(&record)
    }

    /// Removes the sandbox, its containers and namespaces; idempotent.
    pub async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        if self.sandboxes.get(id).is_err() {
            return self.sandboxes.remove(id);
        }
        for c in self.list_containers(id, &HashMap::new()).await? {
            self.remove_container(&c.id).await?;
        }
        let store = self.sandboxes.clone();
        let id = id.to_owned();
        tokio::task::spawn_blocking(move || store.remove(&id))
            .await
            .map_err(|e| Error::Internal(format!("sandbox removal: {e}")))?
    }

    /// Streams a log file to `tx`, following it while the container runs.
    async fn stream_log(
        &self,
        req: pb::ReadLogsRequest,
        tx: mpsc::Sender<std::result::Result<pb::LogChunk, Status>>,
    ) -> Result<()> {
        let (path, growing) = self.log_source(&req.container_id, req.previous).await?;
        let options = LogOptions {
            tail_lines: (req.tail_lines >= 0).then_some(req.tail_lines as usize),
            timestamps: req.timestamps,
            since_unix_seconds: req.since_unix_seconds,
        };
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
        };
        let mut pending: Vec<u8> = Vec::new();
        let mut first = true;
        let mut sent: i64 = 0;
        let follow = req.follow && growing;
        loop {
            if let Some(f) = file.as_mut() {
                f.read_to_end(&mut pending)
                    .await
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            } else if follow {
                file = tokio::fs::File::open(&path).await.ok();
            }
            // Only whole records are rendered; a partial line waits.
            let cut = pending
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            if cut > 0 || first {
                let whole: Vec<u8> = pending.drain(..cut).collect();
                let opts = if first {
                    options.clone()
                } else {
                    LogOptions {
                        tail_lines: None,
                        ..options.clone()
                    }
                };
                first = false;
                let mut data = render(&whole, &opts);
                if req.limit_bytes > 0 {
                    let room = (req.limit_bytes - sent).max(0) as usize;
                    data.truncate(room);
                }
                if !data.is_empty() {
                    sent += data.len() as i64;
                    if tx.send(Ok(pb::LogChunk { data })).await.is_err() {
                        return Ok(());
                    }
                }
                if req.limit_bytes > 0 && sent >= req.limit_bytes {
                    return Ok(());
                }
            }
            if !follow {
                return Ok(());
            }
            let running = self
                .container_status(&req.container_id)
                .await
                .map(|c| c.state == pb::ContainerState::ContainerRunning as i32)
                .unwrap_or(false);
            if !running {
                // One last read for what the container wrote before it exited.
                if let Some(f) = file.as_mut() {
                    let _ = f.seek(std::io::SeekFrom::Current(0)).await;
                    let mut rest = Vec::new();
                    let _ = f.read_to_end(&mut rest).await;
                    pending.extend(rest);
                    let data = render(
                        &pending,
                        &LogOptions {
                            tail_lines: None,
                            ..options.clone()
                        },
                    );
                    if !data.is_empty() {
                        let _ = tx.send(Ok(pb::LogChunk { data })).await;
                    }
                }
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tonic::async_trait]
impl RuntimeApi for RuntimeService {
    async fn version(&self, _: Request<pb::VersionRequest>) -> Rpc<pb::VersionResponse> {
        let backend = self.rt.cd.server_version().await?;
        Ok(Response::new(pb::VersionResponse {
            runtime_name: "cri-containerd".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            backend_version: format!("containerd {backend}"),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        req: Request<pb::RunPodSandboxRequest>,
    ) -> Rpc<pb::RunPodSandboxResponse> {
        let config = req
            .into_inner()
            .config
            .ok_or_else(|| Status::invalid_argument("config is required"))?;
        Ok(Response::new(self.rt.run_pod_sandbox(config).await?))
    }

    async fn stop_pod_sandbox(&self, req: Request<pb::PodSandboxRef>) -> Rpc<pb::Empty> {
        self.rt
            .stop_pod_sandbox(&req.into_inner().sandbox_id)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn remove_pod_sandbox(&self, req: Request<pb::PodSandboxRef>) -> Rpc<pb::Empty> {
        self.rt
            .remove_pod_sandbox(&req.into_inner().sandbox_id)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn pod_sandbox_status(&self, req: Request<pb::PodSandboxRef>) -> Rpc<pb::PodSandbox> {
        let record = self.rt.sandboxes.get(&req.into_inner().sandbox_id)?;
        Ok(Response::new(sandbox_view(&self.rt, &record)))
    }

    async fn list_pod_sandbox(
        &self,
        req: Request<pb::ListPodSandboxRequest>,
    ) -> Rpc<pb::ListPodSandboxResponse> {
        let selector = req.into_inner().label_selector;
        let items = self
            .rt
            .sandboxes
            .list()?
            .iter()
            .filter(|r| selector.iter().all(|(k, v)| r.labels.get(k) == Some(v)))
            .map(|r| sandbox_view(&self.rt, r))
            .collect();
        Ok(Response::new(pb::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        req: Request<pb::CreateContainerRequest>,
    ) -> Rpc<pb::CreateContainerResponse> {
        let req = req.into_inner();
        let config = req
            .config
            .ok_or_else(|| Status::invalid_argument("config is required"))?;
        let container_id = self.rt.create_container(&req.sandbox_id, &config).await?;
        Ok(Response::new(pb::CreateContainerResponse { container_id }))
    }

    async fn start_container(&self, req: Request<pb::ContainerRef>) -> Rpc<pb::Empty> {
        self.rt
            .start_container(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn stop_container(&self, req: Request<pb::StopContainerRequest>) -> Rpc<pb::Empty> {
        let req = req.into_inner();
        let timeout = Duration::from_secs(req.timeout_seconds.max(0) as u64);
        self.rt.stop_container(&req.container_id, timeout).await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn remove_container(&self, req: Request<pb::ContainerRef>) -> Rpc<pb::Empty> {
        self.rt
            .remove_container(&req.into_inner().container_id)
            .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn container_status(&self, req: Request<pb::ContainerRef>) -> Rpc<pb::Container> {
        Ok(Response::new(
            self.rt
                .container_status(&req.into_inner().container_id)
                .await?,
        ))
    }

    async fn list_containers(
        &self,
        req: Request<pb::ListContainersRequest>,
    ) -> Rpc<pb::ListContainersResponse> {
        let req = req.into_inner();
        let items = self
            .rt
            .list_containers(&req.sandbox_id, &req.label_selector)
            .await?;
        Ok(Response::new(pb::ListContainersResponse { items }))
    }

    async fn exec_sync(&self, req: Request<pb::ExecSyncRequest>) -> Rpc<pb::ExecSyncResponse> {
        Ok(Response::new(self.rt.exec_sync(&req.into_inner()).await?))
    }

    type ExecStream = BoxStream<pb::ExecOutput>;

    async fn exec(&self, req: Request<Streaming<pb::ExecInput>>) -> Rpc<Self::ExecStream> {
        let mut input = req.into_inner();
        let first = input
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("exec stream ended before its start"))?;
        let Some(pb::exec_input::Input::Start(start)) = first.input else {
            return Err(Status::invalid_argument(
                "the first exec message must be a start",
            ));
        };
        let (tx, rx) = mpsc::channel(64);
        let rt = self.rt.clone();
        tokio::spawn(async move {
            if let Err(e) = rt.exec_interactive(start, input, tx.clone()).await {
                let _ = tx.send(Err(Status::from(e))).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type ReadLogsStream = BoxStream<pb::LogChunk>;

    async fn read_logs(&self, req: Request<pb::ReadLogsRequest>) -> Rpc<Self::ReadLogsStream> {
        let req = req.into_inner();
        // Fail before streaming when the container is unknown.
        self.rt.log_source(&req.container_id, req.previous).await?;
        let (tx, rx) = mpsc::channel(16);
        let rt = self.rt.clone();
        tokio::spawn(async move {
            if let Err(e) = rt.stream_log(req, tx.clone()).await {
                let _ = tx.send(Err(Status::from(e))).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn image_status(&self, req: Request<pb::ImageRef>) -> Rpc<pb::ImageStatusResponse> {
        let image = self.rt.cd.image_status(&req.into_inner().image).await?;
        Ok(Response::new(pb::ImageStatusResponse { image }))
    }

    async fn list_images(&self, _: Request<pb::Empty>) -> Rpc<pb::ListImagesResponse> {
        Ok(Response::new(pb::ListImagesResponse {
            items: self.rt.cd.list_images().await?,
        }))
    }

    async fn import_image(
        &self,
        req: Request<pb::ImportImageRequest>,
    ) -> Rpc<pb::ImportImageResponse> {
        let path = PathBuf::from(req.into_inner().path);
        Ok(Response::new(pb::ImportImageResponse {
            images: self.rt.cd.import_archive(&path).await?,
        }))
    }

    async fn remove_image(&self, req: Request<pb::ImageRef>) -> Rpc<pb::Empty> {
        self.rt.cd.remove_image(&req.into_inner().image).await?;
        Ok(Response::new(pb::Empty {}))
    }
}
