//! Test doubles (unit tests only): in-process Runtime and Network gRPC
//! servers on a temp unix socket that record calls and simulate containers,
//! and a recording Cluster.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodStatus};
use kerno_proto::network::v1 as net;
use kerno_proto::runtime::v1 as rt;
use tonic::{Request, Response, Status};

use crate::cluster::Cluster;
use crate::refs::ObjectRefs;

/// Shared state of the fake runtime.
#[derive(Default)]
pub struct RuntimeState {
    /// Calls in order, e.g. `StartContainer c-2`.
    pub calls: Vec<String>,
    /// Sandboxes by id.
    pub sandboxes: HashMap<String, rt::PodSandbox>,
    /// Containers by id.
    pub containers: HashMap<String, rt::Container>,
    /// Configs the containers were created with.
    pub configs: HashMap<String, rt::ContainerConfig>,
    /// Images present.
    pub images: HashSet<String>,
    /// Container name → exit code right after start (others run until stopped).
    pub exit_on_start: HashMap<String, i32>,
    /// Container name → exit code of ExecSync (default 0).
    pub exec_exit: HashMap<String, i32>,
    next_id: u64,
}

fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The fake runtime service.
#[derive(Clone, Default)]
pub struct FakeRuntime(pub Arc<Mutex<RuntimeState>>);

impl FakeRuntime {
    fn with<T>(&self, f: impl FnOnce(&mut RuntimeState) -> T) -> T {
        match self.0.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.with(|s| s.calls.clone())
    }
}

type Stream<T> = Pin<Box<dyn futures::Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl rt::runtime_server::Runtime for FakeRuntime {
    async fn version(
        &self,
        _: Request<rt::VersionRequest>,
    ) -> Result<Response<rt::VersionResponse>, Status> {
        Ok(Response::new(rt::VersionResponse {
            runtime_name: "fake".into(),
            runtime_version: "0.1".into(),
            backend_version: "1.0".into(),
        }))
    }
    async fn run_pod_sandbox(
        &self,
        r: Request<rt::RunPodSandboxRequest>,
    ) -> Result<Response<rt::RunPodSandboxResponse>, Status> {
        let config = r.into_inner().config.unwrap_or_default();
        if config.runtime_handler == "unknown" {
            return Err(Status::invalid_argument(
                "unknown runtime handler \"unknown\"",
            ));
        }
        Ok(Response::new(self.with(|s| {
            s.next_id += 1;
            let id = format!("sb-{}", s.next_id);
            s.calls.push(format!("RunPodSandbox {id}"));
            s.sandboxes.insert(
                id.clone(),
                rt::PodSandbox {
                    id: id.clone(),
                    metadata: config.metadata.clone(),
                    state: rt::SandboxState::SandboxReady.into(),
                    created_at_unix_nanos: now_nanos(),
                    labels: config.labels.clone(),
                    annotations: HashMap::new(),
                    netns_path: format!("/run/netns/{id}"),
                },
            );
            rt::RunPodSandboxResponse {
                netns_path: format!("/run/netns/{id}"),
                sandbox_id: id,
            }
        })))
    }
    async fn stop_pod_sandbox(
        &self,
        r: Request<rt::PodSandboxRef>,
    ) -> Result<Response<rt::Empty>, Status> {
        let id = r.into_inner().sandbox_id;
        self.with(|s| {
            s.calls.push(format!("StopPodSandbox {id}"));
            for c in s.containers.values_mut().filter(|c| c.sandbox_id == id) {
                c.state = rt::ContainerState::ContainerExited.into();
            }
            if let Some(sb) = s.sandboxes.get_mut(&id) {
                sb.state = rt::SandboxState::SandboxNotready.into();
            }
        });
        Ok(Response::new(rt::Empty {}))
    }
    async fn remove_pod_sandbox(
        &self,
        r: Request<rt::PodSandboxRef>,
    ) -> Result<Response<rt::Empty>, Status> {
        let id = r.into_inner().sandbox_id;
        self.with(|s| {
            s.calls.push(format!("RemovePodSandbox {id}"));
            s.sandboxes.remove(&id);
            s.containers.retain(|_, c| c.sandbox_id != id);
        });
        Ok(Response::new(rt::Empty {}))
    }
    async fn pod_sandbox_status(
        &self,
        r: Request<rt::PodSandboxRef>,
    ) -> Result<Response<rt::PodSandbox>, Status> {
        let id = r.into_inner().sandbox_id;
        self.with(|s| s.sandboxes.get(&id).cloned())
            .map(Response::new)
            .ok_or_else(|| Status::not_found("no such sandbox"))
    }
    async fn list_pod_sandbox(
        &self,
        r: Request<rt::ListPodSandboxRequest>,
    ) -> Result<Response<rt::ListPodSandboxResponse>, Status> {
        let sel = r.into_inner().label_selector;
        let items = self.with(|s| {
            s.sandboxes
                .values()
                .filter(|sb| sel.iter().all(|(k, v)| sb.labels.get(k) == Some(v)))
                .cloned()
                .collect()
        });
        Ok(Response::new(rt::ListPodSandboxResponse { items }))
    }
    async fn create_container(
        &self,
        r: Request<rt::CreateContainerRequest>,
    ) -> Result<Response<rt::CreateContainerResponse>, Status> {
        let r = r.into_inner();
        let config = r.config.unwrap_or_default();
        self.with(|s| {
            if !s.images.contains(&config.image) {
                return Err(Status::not_found(format!(
                    "image \"{}\" not found",
                    config.image
                )));
            }
            s.next_id += 1;
            let id = format!("c-{}", s.next_id);
            let meta = config.metadata.clone().unwrap_or_default();
            s.calls.push(format!(
                "CreateContainer {} {} {id}",
                meta.name, meta.attempt
            ));
            s.containers.insert(
                id.clone(),
                rt::Container {
                    id: id.clone(),
                    sandbox_id: r.sandbox_id.clone(),
                    metadata: Some(meta),
                    image: config.image.clone(),
                    image_id: format!("sha256:{}", config.image),
                    state: rt::ContainerState::ContainerCreated.into(),
                    created_at_unix_nanos: now_nanos(),
                    labels: config.labels.clone(),
                    ..rt::Container::default()
                },
            );
            s.configs.insert(id.clone(), config);
            Ok(Response::new(rt::CreateContainerResponse {
                container_id: id,
            }))
        })
    }
    async fn start_container(
        &self,
        r: Request<rt::ContainerRef>,
    ) -> Result<Response<rt::Empty>, Status> {
        let id = r.into_inner().container_id;
        self.with(|s| {
            s.calls.push(format!("StartContainer {id}"));
            let name = s
                .containers
                .get(&id)
                .and_then(|c| c.metadata.clone())
                .map(|m| m.name)
                .unwrap_or_default();
            let exit = s.exit_on_start.get(&name).copied();
            let c = s
                .containers
                .get_mut(&id)
                .ok_or_else(|| Status::not_found("no such container"))?;
            c.started_at_unix_nanos = now_nanos();
            match exit {
                Some(code) => {
                    c.state = rt::ContainerState::ContainerExited.into();
                    c.exit_code = code;
                    c.finished_at_unix_nanos = now_nanos();
                }
                None => c.state = rt::ContainerState::ContainerRunning.into(),
            }
            Ok(Response::new(rt::Empty {}))
        })
    }
    async fn stop_container(
        &self,
        r: Request<rt::StopContainerRequest>,
    ) -> Result<Response<rt::Empty>, Status> {
        let r = r.into_inner();
        self.with(|s| {
            s.calls.push(format!(
                "StopContainer {} {}",
                r.container_id, r.timeout_seconds
            ));
            if let Some(c) = s.containers.get_mut(&r.container_id)
                && c.state() == rt::ContainerState::ContainerRunning
            {
                c.state = rt::ContainerState::ContainerExited.into();
                c.exit_code = 137;
                c.finished_at_unix_nanos = now_nanos();
            }
        });
        Ok(Response::new(rt::Empty {}))
    }
    async fn remove_container(
        &self,
        r: Request<rt::ContainerRef>,
    ) -> Result<Response<rt::Empty>, Status> {
        let id = r.into_inner().container_id;
        self.with(|s| {
            s.calls.push(format!("RemoveContainer {id}"));
            s.containers.remove(&id);
        });
        Ok(Response::new(rt::Empty {}))
    }
    async fn container_status(
        &self,
        r: Request<rt::ContainerRef>,
    ) -> Result<Response<rt::Container>, Status> {
        let id = r.into_inner().container_id;
        self.with(|s| s.containers.get(&id).cloned())
            .map(Response::new)
            .ok_or_else(|| Status::not_found("no such container"))
    }
    async fn list_containers(
        &self,
        r: Request<rt::ListContainersRequest>,
    ) -> Result<Response<rt::ListContainersResponse>, Status> {
        let r = r.into_inner();
        let items = self.with(|s| {
            s.containers
                .values()
                .filter(|c| r.sandbox_id.is_empty() || c.sandbox_id == r.sandbox_id)
                .cloned()
                .collect()
        });
        Ok(Response::new(rt::ListContainersResponse { items }))
    }
    async fn exec_sync(
        &self,
        r: Request<rt::ExecSyncRequest>,
    ) -> Result<Response<rt::ExecSyncResponse>, Status> {
        let id = r.into_inner().container_id;
        let code = self.with(|s| {
            s.calls.push(format!("ExecSync {id}"));
            let name = s
                .containers
                .get(&id)
                .and_then(|c| c.metadata.clone())
                .map(|m| m.name)
                .unwrap_or_default();
            s.exec_exit.get(&name).copied().unwrap_or(0)
        });
        Ok(Response::new(rt::ExecSyncResponse {
            stdout: b"probe output".to_vec(),
            stderr: Vec::new(),
            exit_code: code,
        }))
    }
    type ExecStream = Stream<rt::ExecOutput>;
    async fn exec(
        &self,
        _: Request<tonic::Streaming<rt::ExecInput>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        Err(Status::unimplemented("fake"))
    }
    type ReadLogsStream = Stream<rt::LogChunk>;
    async fn read_logs(
        &self,
        r: Request<rt::ReadLogsRequest>,
    ) -> Result<Response<Self::ReadLogsStream>, Status> {
        let r = r.into_inner();
        let known = self.with(|s| s.containers.contains_key(&r.container_id));
        if !known {
            return Err(Status::not_found("no such container"));
        }
        let text = format!(
            "log of {} previous={} tail={}\n",
            r.container_id, r.previous, r.tail_lines
        );
        let chunks = vec![Ok(rt::LogChunk {
            data: text.into_bytes(),
        })];
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }
    async fn image_status(
        &self,
        r: Request<rt::ImageRef>,
    ) -> Result<Response<rt::ImageStatusResponse>, Status> {
        let image = r.into_inner().image;
        let present = self.with(|s| s.images.contains(&image));
        Ok(Response::new(rt::ImageStatusResponse {
            image: present.then(|| rt::Image {
                id: format!("sha256:{image}"),
                repo_tags: vec![image],
                size_bytes: 1,
            }),
        }))
    }
    async fn list_images(
        &self,
        _: Request<rt::Empty>,
    ) -> Result<Response<rt::ListImagesResponse>, Status> {
        Ok(Response::new(rt::ListImagesResponse::default()))
    }
    async fn import_image(
        &self,
        _: Request<rt::ImportImageRequest>,
    ) -> Result<Response<rt::ImportImageResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn remove_image(&self, _: Request<rt::ImageRef>) -> Result<Response<rt::Empty>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// The fake network driver: hands out 10.244.0.N per sandbox, records calls
/// into the runtime's call list (so order across both is visible).
#[derive(Clone)]
pub struct FakeNetwork {
    /// Shared with the runtime for one call log.
    pub runtime: FakeRuntime,
    /// Sandbox → IP.
    pub ips: Arc<Mutex<BTreeMap<String, String>>>,
}

#[tonic::async_trait]
impl net::network_server::Network for FakeNetwork {
    async fn version(
        &self,
        _: Request<net::VersionRequest>,
    ) -> Result<Response<net::VersionResponse>, Status> {
        Ok(Response::new(net::VersionResponse {
            driver_name: "fake".into(),
            driver_version: "0".into(),
        }))
    }
    async fn set_up(
        &self,
        r: Request<net::SetUpRequest>,
    ) -> Result<Response<net::SetUpResponse>, Status> {
        let r = r.into_inner();
        self.runtime.with(|s| {
            s.calls
                .push(format!("SetUp {} {}", r.sandbox_id, r.netns_path))
        });
        let mut ips = self.ips.lock().map_err(|_| Status::internal("poisoned"))?;
        let n = ips.len() + 2;
        let ip = ips
            .entry(r.sandbox_id)
            .or_insert_with(|| format!("10.244.0.{n}"))
            .clone();
        Ok(Response::new(net::SetUpResponse {
            ips: vec![ip],
            gateway: "10.244.0.1".into(),
            interface_name: "eth0".into(),
        }))
    }
    async fn tear_down(
        &self,
        r: Request<net::TearDownRequest>,
    ) -> Result<Response<net::TearDownResponse>, Status> {
        let r = r.into_inner();
        self.runtime
            .with(|s| s.calls.push(format!("TearDown {}", r.sandbox_id)));
        if let Ok(mut ips) = self.ips.lock() {
            ips.remove(&r.sandbox_id);
        }
        Ok(Response::new(net::TearDownResponse {}))
    }
    async fn status(
        &self,
        r: Request<net::StatusRequest>,
    ) -> Result<Response<net::SetUpResponse>, Status> {
        let id = r.into_inner().sandbox_id;
        let ip = self.ips.lock().ok().and_then(|m| m.get(&id).cloned());
        ip.map(|ip| {
            Response::new(net::SetUpResponse {
                ips: vec![ip],
                gateway: String::new(),
                interface_name: "eth0".into(),
            })
        })
        .ok_or_else(|| Status::not_found("no addresses"))
    }
    async fn sync_routes(
        &self,
        _: Request<net::SyncRoutesRequest>,
    ) -> Result<Response<net::SyncRoutesResponse>, Status> {
        Ok(Response::new(net::SyncRoutesResponse {}))
    }
}

/// Serves both fakes on sockets in `dir`; returns (runtime, network) endpoints.
pub async fn serve_fakes(
    dir: &std::path::Path,
    runtime: FakeRuntime,
    network: FakeNetwork,
) -> std::io::Result<(String, String)> {
    let rpath = dir.join("runtime.sock");
    let npath = dir.join("network.sock");
    let rl = tokio::net::UnixListener::bind(&rpath)?;
    let nl = tokio::net::UnixListener::bind(&npath)?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(rt::runtime_server::RuntimeServer::new(runtime))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(rl)),
    );
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(net::network_server::NetworkServer::new(network))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(nl)),
    );
    Ok((
        format!("unix://{}", rpath.display()),
        format!("unix://{}", npath.display()),
    ))
}

/// A cluster that records what the kubelet writes.
#[derive(Default)]
pub struct FakeCluster {
    /// ConfigMaps served by name.
    pub config_maps: Mutex<BTreeMap<String, ConfigMap>>,
    /// Every status written, in order.
    pub statuses: Mutex<Vec<PodStatus>>,
    /// (type, reason, message) of every event.
    pub events: Mutex<Vec<(String, String, String)>>,
    /// Pods deleted (names), with the runtime call count at that moment.
    pub deleted: Mutex<Vec<String>>,
}

impl FakeCluster {
    /// The last status written.
    pub fn last_status(&self) -> Option<PodStatus> {
        self.statuses.lock().ok()?.last().cloned()
    }

    /// The reasons of the events so far.
    pub fn reasons(&self) -> Vec<String> {
        self.events
            .lock()
            .map(|e| e.iter().map(|(_, r, _)| r.clone()).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Cluster for FakeCluster {
    async fn refs(
        &self,
        _ns: &str,
        cms: &BTreeSet<String>,
        _secrets: &BTreeSet<String>,
    ) -> Result<ObjectRefs, String> {
        let mut refs = ObjectRefs::default();
        if let Ok(all) = self.config_maps.lock() {
            for name in cms {
                if let Some(cm) = all.get(name) {
                    refs.config_maps.insert(name.clone(), cm.clone());
                }
            }
        }
        Ok(refs)
    }
    async fn patch_pod_status(&self, _pod: &Pod, status: &PodStatus) -> Result<(), String> {
        if let Ok(mut s) = self.statuses.lock() {
            s.push(status.clone());
        }
        Ok(())
    }
    async fn delete_pod(&self, pod: &Pod) -> Result<(), String> {
        if let Ok(mut d) = self.deleted.lock() {
            d.push(pod.metadata.name.clone().unwrap_or_default());
        }
        Ok(())
    }
    async fn event(&self, _pod: &Pod, _fp: Option<&str>, type_: &str, reason: &str, message: &str) {
        if let Ok(mut e) = self.events.lock() {
            e.push((type_.to_owned(), reason.to_owned(), message.to_owned()));
        }
    }
}
