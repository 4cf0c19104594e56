//! Containers and their tasks. What the driver knows about a container is
//! kept in containerd's own container record (labels), so a restarted
//! driver finds everything again without a state file of its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::{
    Container as CdContainer, CreateContainerRequest, CreateTaskRequest, DeleteContainerRequest,
    DeleteTaskRequest, GetContainerRequest, GetRequest, KillRequest, ListContainersRequest,
    StartRequest, UpdateContainerRequest, WaitRequest,
    container::Runtime as CdRuntime,
    snapshots::{MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest},
};
use containerd_client::types::v1::Status as TaskStatus;
use kerno_proto::runtime::v1 as pb;
use prost_types::{Any, FieldMask};

use crate::Runtime;
use crate::error::{Error, Result};
use crate::spec::{ContainerSpecInput, container_spec};

/// The snapshotter containers are unpacked with (`ctr import` unpacks there).
pub const SNAPSHOTTER: &str = "overlayfs";
/// containerd's type URL of an OCI runtime spec.
pub const SPEC_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// Labels on containerd containers.
pub mod label {
    /// The sandbox id.
    pub const SANDBOX: &str = "kerno.sandbox";
    /// The container name.
    pub const NAME: &str = "kerno.name";
    /// The attempt.
    pub const ATTEMPT: &str = "kerno.attempt";
    /// Absolute log path.
    pub const LOG_PATH: &str = "kerno.log-path";
    /// The image as requested.
    pub const IMAGE: &str = "kerno.image";
    /// The image id.
    pub const IMAGE_ID: &str = "kerno.image-id";
    /// Creation time, unix nanos.
    pub const CREATED_AT: &str = "kerno.created-at";
    /// Start time, unix nanos.
    pub const STARTED_AT: &str = "kerno.started-at";
    /// Why the start failed.
    pub const START_ERROR: &str = "kerno.start-error";
    /// The request's labels, JSON.
    pub const LABELS: &str = "kerno.labels";
    /// The request's annotations, JSON.
    pub const ANNOTATIONS: &str = "kerno.annotations";
    /// The cgroup path.
    pub const CGROUP: &str = "kerno.cgroup";
}

/// Now in unix nanoseconds.
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

fn ts_nanos(ts: Option<&prost_types::Timestamp>) -> i64 {
    ts.map(|t| t.seconds.saturating_mul(1_000_000_000) + i64::from(t.nanos))
        .unwrap_or_default()
}

impl Runtime {
    /// Creates a container (not started) in a sandbox.
    pub async fn create_container(
        &self,
        sandbox_id: &str,
        config: &pb::ContainerConfig,
    ) -> Result<String> {
        let sandbox = self.sandboxes.get(sandbox_id)?;
        if sandbox.stopped {
            return Err(Error::FailedPrecondition(format!(
                "sandbox {sandbox_id} is stopped"
            )));
        }
        let name = config
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::InvalidArgument("container metadata.name is required".into()))?;
        let attempt = config.metadata.as_ref().map_or(0, |m| m.attempt);
        let image = self.cd.resolve_image(&config.image).await?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let cgroups_path = format!("/kerno/{}/{sandbox_id}/{id}", self.cd.namespace);
        let spec = container_spec(&ContainerSpecInput {
            config,
            image: &image.run,
            sandbox_dir: &self.sandboxes.dir(sandbox_id),
            hostname: &sandbox.hostname,
            host_network: sandbox.host_network,
            cgroups_path: cgroups_path.clone(),
        })?;
        let spec_json = serde_json::to_vec(&spec)
            .map_err(|e| Error::Internal(format!("encoding spec: {e}")))?;
        let log_dir = if sandbox.log_directory.is_empty() {
            self.state_dir.join("logs").join(sandbox_id)
        } else {
            PathBuf::from(&sandbox.log_directory)
        };
        let log_path = if config.log_path.is_empty() {
            log_dir.join(format!("{name}_{attempt}.log"))
        } else {
            log_dir.join(&config.log_path)
        };
        let json = |m: &HashMap<String, String>| serde_json::to_string(m).unwrap_or_default();
        let labels = HashMap::from([
            (label::SANDBOX.to_owned(), sandbox_id.to_owned()),
            (label::NAME.to_owned(), name),
            (label::ATTEMPT.to_owned(), attempt.to_string()),
            (label::LOG_PATH.to_owned(), log_path.display().to_string()),
            (label::IMAGE.to_owned(), config.image.clone()),
            (label::IMAGE_ID.to_owned(), image.id.clone()),
            (label::CREATED_AT.to_owned(), now_nanos().to_string()),
            (label::LABELS.to_owned(), json(&config.labels)),
            (label::ANNOTATIONS.to_owned(), json(&config.annotations)),
            (label::CGROUP.to_owned(), cgroups_path),
        ]);
        let container = CdContainer {
            id: id.clone(),
            labels,
            image: image.name.clone(),
            runtime: Some(CdRuntime {
                name: sandbox.runtime.clone(),
                options: None,
            }),
            spec: Some(Any {
                type_url: SPEC_TYPE.to_owned(),
                value: spec_json,
            }),
            snapshotter: SNAPSHOTTER.to_owned(),
            snapshot_key: id.clone(),
            ..Default::default()
        };
        self.cd
            .containers()
            .create(self.cd.req(CreateContainerRequest {
                container: Some(container),
            }))
            .await
            .map_err(|s| self.cd.err("create container", s))?;
        let prepared = self
            .cd
            .snapshots()
            .prepare(self.cd.req(PrepareSnapshotRequest {
                snapshotter: SNAPSHOTTER.to_owned(),
                key: id.clone(),
                parent: image.chain_id.clone(),
                labels: HashMap::new(),
            }))
            .await;
        if let Err(s) = prepared {
            let _ = self.remove_container(&id).await;
            return Err(self.cd.err("prepare snapshot", s));
        }
        Ok(id)
    }

    async fn get_container(&self, id: &str) -> Result<CdContainer> {
        let container = self
            .cd
            .containers()
            .get(self.cd.req(GetContainerRequest { id: id.to_owned() }))
            .await
            .map_err(|s| {
                if s.code() == tonic::Code::NotFound {
                    Error::NotFound(format!("container {id} not found"))
                } else {
                    self.cd.err("get container", s)
                }
            })?
            .into_inner()
            .container
            .ok_or_else(|| Error::NotFound(format!("container {id} not found")))?;
        if !container.labels.contains_key(label::SANDBOX) {
            return Err(Error::NotFound(format!("container {id} not found")));
        }
        Ok(container)
    }

    async fn set_label(&self, mut container: CdContainer, key: &str, value: String) -> Result<()> {
        container.labels.insert(key.to_owned(), value);
        self.cd
            .containers()
            .update(self.cd.req(UpdateContainerRequest {
                container: Some(container),
                update_mask: Some(FieldMask {
                    paths: vec![format!("labels.{key}")],
                }),
            }))
            .await
            .map_err(|s| self.cd.err("update container", s))?;
        Ok(())
    }

    /// Starts a created container's task, its output going to its log file.
    pub async fn start_container(&self, id: &str) -> Result<()> {
        let container = self.get_container(id).await?;
        let mounts = self
            .cd
            .snapshots()
            .mounts(self.cd.req(MountsRequest {
                snapshotter: SNAPSHOTTER.to_owned(),
                key: id.to_owned(),
            }))
            .await
            .map_err(|s| self.cd.err("snapshot mounts", s))?
            .into_inner()
            .mounts;
        let log_path = PathBuf::from(
            container
                .labels
                .get(label::LOG_PATH)
                .cloned()
                .unwrap_or_default(),
        );
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let uri = crate::logs::log_uri(&self.exe, &log_path);
        let tty = container
            .spec
            .as_ref()
            .and_then(|s| serde_json::from_slice::<serde_json::Value>(&s.value).ok())
            .and_then(|v| v["process"]["terminal"].as_bool())
            .unwrap_or(false);
        let created = self
            .cd
            .tasks()
            .create(self.cd.req(CreateTaskRequest {
                container_id: id.to_owned(),
                rootfs: mounts,
                stdin: String::new(),
                stdout: uri.clone(),
                stderr: if tty { String::new() } else { uri },
                terminal: tty,
                ..Default::default()
            }))
            .await;
        let started = match created {
            Ok(_) => self
                .cd
                .tasks()
                .start(self.cd.req(StartRequest {
                    container_id: id.to_owned(),
                    exec_id: String::new(),
                }))
                .await
                .map(|_| ()),
            Err(s) => Err(s),
        };
        match started {
            Ok(()) => {
                self.set_label(container, label::STARTED_AT, now_nanos().to_string())
                    .await
            }
            Err(s) => {
                let err = self.cd.err("start task", s);
                if matches!(err, Error::Unavailable { .. }) {
                    return Err(err);
                }
                let _ = self
                    .cd
                    .tasks()
                    .delete(self.cd.req(DeleteTaskRequest {
                        container_id: id.to_owned(),
                    }))
                    .await;
                let message = err.to_string();
                let _ = self
                    .set_label(container, label::START_ERROR, message.clone())
                    .await;
                Err(Error::FailedPrecondition(format!(
                    "starting container {id}: {message}"
                )))
            }
        }
    }

    async fn task(&self, id: &str) -> Result<Option<containerd_client::types::v1::Process>> {
        match self
            .cd
            .tasks()
            .get(self.cd.req(GetRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
            }))
            .await
        {
            Ok(r) => Ok(r.into_inner().process),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(self.cd.err("get task", s)),
        }
    }

    async fn kill(&self, id: &str, signal: u32) -> Result<()> {
        match self
            .cd
            .tasks()
            .kill(self.cd.req(KillRequest {
                container_id: id.to_owned(),
                exec_id: String::new(),
                signal,
                all: false,
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::FailedPrecondition
                ) =>
            {
                Ok(())
            }
            Err(s) => Err(self.cd.err("kill task", s)),
        }
    }

    async fn wait_exit(&self, id: &str, patience: Duration) -> Result<bool> {
        let mut tasks = self.cd.tasks();
        let wait = tasks.wait(self.cd.req(WaitRequest {
            container_id: id.to_owned(),
            exec_id: String::new(),
        }));
        match tokio::time::timeout(patience, wait).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(s)) if s.code() == tonic::Code::NotFound => Ok(true),
            Ok(Err(s)) => Err(self.cd.err("wait task", s)),
            Err(_) => Ok(false),
        }
    }

    /// SIGTERM, then SIGKILL after `timeout`; idempotent.
    pub async fn stop_container(&self, id: &str, timeout: Duration) -> Result<()> {
        self.get_container(id).await?;
        let Some(task) = self.task(id).await? else {
            return Ok(());
        };
        if task.status() == TaskStatus::Stopped {
            return Ok(());
        }
        if !timeout.is_zero() {
            self.kill(id, nix::sys::signal::Signal::SIGTERM as u32)
                .await?;
            if self.wait_exit(id, timeout).await? {
                return Ok(());
            }
        }
        self.kill(id, nix::sys::signal::Signal::SIGKILL as u32)
            .await?;
        if self.wait_exit(id, Duration::from_secs(10)).await? {
            Ok(())
        } else {
            Err(Error::Internal(format!(
                "container {id} did not die after SIGKILL"
            )))
        }
    }

    /// Removes a container, its task and its snapshot; idempotent.
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        if let Some(task) = self.task(id).await? {
            if task.status() != TaskStatus::Stopped {
                self.kill(id, nix::sys::signal::Signal::SIGKILL as u32)
                    .await?;
                self.wait_exit(id, Duration::from_secs(10)).await?;
            }
            match self
                .cd
                .tasks()
                .delete(self.cd.req(DeleteTaskRequest {
                    container_id: id.to_owned(),
                }))
                .await
            {
                Ok(_) => {}
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(self.cd.err("delete task", s)),
            }
        }
        match self
            .cd
            .containers()
            .delete(self.cd.req(DeleteContainerRequest { id: id.to_owned() }))
            .await
        {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(self.cd.err("delete container", s)),
        }
        match self
            .cd
            .snapshots()
            .remove(self.cd.req(RemoveSnapshotRequest {
                snapshotter: SNAPSHOTTER.to_owned(),
                key: id.to_owned(),
            }))
            .await
        {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(self.cd.err("remove snapshot", s)),
        }
    }

    /// The container as the runtime protocol shows it.
    pub async fn container_status(&self, id: &str) -> Result<pb::Container> {
        let container = self.get_container(id).await?;
        self.describe_container(container).await
    }

    async fn describe_container(&self, c: CdContainer) -> Result<pb::Container> {
        let l = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
        let num = |k: &str| l(k).parse::<i64>().unwrap_or_default();
        let map =
            |k: &str| serde_json::from_str::<HashMap<String, String>>(&l(k)).unwrap_or_default();
        let mut out = pb::Container {
            id: c.id.clone(),
            sandbox_id: l(label::SANDBOX),
            metadata: Some(pb::ContainerMetadata {
                name: l(label::NAME),
                attempt: l(label::ATTEMPT).parse().unwrap_or_default(),
            }),
            image: l(label::IMAGE),
            image_id: l(label::IMAGE_ID),
            state: pb::ContainerState::ContainerCreated as i32,
            created_at_unix_nanos: num(label::CREATED_AT),
            started_at_unix_nanos: num(label::STARTED_AT),
            labels: map(label::LABELS),
            annotations: map(label::ANNOTATIONS),
            log_path: l(label::LOG_PATH),
            ..Default::default()
        };
        let start_error = l(label::START_ERROR);
        if !start_error.is_empty() {
            out.state = pb::ContainerState::ContainerExited as i32;
            out.exit_code = 128;
            out.reason = "StartError".into();
            out.message = start_error;
            return Ok(out);
        }
        match self.task(&c.id).await? {
            Some(task) => match task.status() {
                TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing => {
                    out.state = pb::ContainerState::ContainerRunning as i32;
                }
                TaskStatus::Stopped => {
                    out.state = pb::ContainerState::ContainerExited as i32;
                    out.exit_code = task.exit_status as i32;
                    out.finished_at_unix_nanos = ts_nanos(task.exited_at.as_ref());
                    out.reason = if task.exit_status == 0 {
                        "Completed".into()
                    } else if task.exit_status == 137 && oom_killed(&l(label::CGROUP)) {
                        "OOMKilled".into()
                    } else {
                        "Error".into()
                    };
                }
                TaskStatus::Created => {}
                TaskStatus::Unknown => {
                    out.state = pb::ContainerState::ContainerUnknown as i32;
                }
            },
            None if out.started_at_unix_nanos > 0 => {
                out.state = pb::ContainerState::ContainerUnknown as i32;
                out.message = "the container's task is gone".into();
            }
            None => {}
        }
        Ok(out)
    }

    /// Containers of this driver, optionally of one sandbox and with labels.
    pub async fn list_containers(
        &self,
        sandbox_id: &str,
        selector: &HashMap<String, String>,
    ) -> Result<Vec<pb::Container>> {
        let filter = if sandbox_id.is_empty() {
            format!("labels.\"{}\"", label::SANDBOX)
        } else {
            format!("labels.\"{}\"=={sandbox_id}", label::SANDBOX)
        };
        let containers = self
            .cd
            .containers()
            .list(self.cd.req(ListContainersRequest {
                filters: vec![filter],
            }))
            .await
            .map_err(|s| self.cd.err("list containers", s))?
            .into_inner()
            .containers;
        let mut out = Vec::new();
        for c in containers {
            let described = match self.describe_container(c).await {
                Ok(d) => d,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            if selector
                .iter()
                .all(|(k, v)| described.labels.get(k) == Some(v))
            {
                out.push(described);
            }
        }
        out.sort_by_key(|c| c.created_at_unix_nanos);
        Ok(out)
    }

    /// The container's log path, and whether it may still grow.
    pub async fn log_source(&self, id: &str, previous: bool) -> Result<(PathBuf, bool)> {
        let current = self.container_status(id).await?;
        if !previous {
            let running = current.state == pb::ContainerState::ContainerRunning as i32;
            return Ok((PathBuf::from(current.log_path), running));
        }
        let name = current
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let attempt = current.metadata.as_ref().map_or(0, |m| m.attempt);
        let older = self
            .list_containers(&current.sandbox_id, &HashMap::new())
            .await?
            .into_iter()
            .filter(|c| {
                c.metadata
                    .as_ref()
                    .is_some_and(|m| m.name == name && m.attempt < attempt)
            })
            .max_by_key(|c| c.metadata.as_ref().map_or(0, |m| m.attempt));
        match older {
            Some(c) => Ok((PathBuf::from(c.log_path), false)),
            None => {
                // The kubelet may have removed the container record: the
                // previous attempt's file, when the paths follow `<n>.log`.
                let path = Path::new(&current.log_path);
                let guess = attempt
                    .checked_sub(1)
                    .and_then(|prev| path.parent().map(|d| d.join(format!("{prev}.log"))))
                    .filter(|p| p.exists());
                guess.map(|p| (p, false)).ok_or_else(|| {
                    Error::NotFound(format!("previous terminated container {name:?} not found"))
                })
            }
        }
    }
}

/// Whether the kernel OOM-killed a process in this v1 memory cgroup.
fn oom_killed(cgroup: &str) -> bool {
    let path = Path::new("/sys/fs/cgroup/memory")
        .join(cgroup.trim_start_matches('/'))
        .join("memory.oom_control");
    std::fs::read_to_string(path).is_ok_and(|s| {
        s.lines()
            .any(|l| l.strip_prefix("oom_kill ").is_some_and(|n| n.trim() != "0"))
    })
}
