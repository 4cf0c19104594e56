//! The per-pod worker: one task per pod, woken by pod changes and a periodic
//! resync, moving the pod toward its spec (sandbox, network, volumes, init
//! containers in order, containers, probes) and writing its status.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kerno_proto::network::v1 as net;
use kerno_proto::runtime::v1 as rt;
use tokio::sync::watch;

use super::container::{self, StartCtx};
use super::deps::{Deps, PodNetwork};
use super::record::{ContainerRecord, should_restart};
use super::spec::sandbox_config;
use super::status::{PodView, compute};
use crate::backoff::Backoff;
use crate::env::PodFields;
use crate::refs::{ObjectRefs, referenced_names};
use crate::time;
use crate::volumes::prepare_volumes;

/// What a worker is told: the latest pod, or `None` once the pod is gone.
pub type PodUpdates = watch::Receiver<Option<Arc<Pod>>>;

/// Sandbox and containers found in the runtime for a pod (kubelet restart).
#[derive(Clone, Debug, Default)]
pub struct Adopted {
    /// The sandbox.
    pub sandbox: rt::PodSandbox,
    /// Its containers, all instances.
    pub containers: Vec<rt::Container>,
}

/// One pod's worker.
pub struct PodWorker {
    pub(super) deps: Arc<Deps>,
    pub(super) pod: Arc<Pod>,
    pub(super) gone: bool,
    pub(super) sandbox_id: Option<String>,
    pub(super) netns_path: String,
    pub(super) pod_ips: Vec<String>,
    sandbox_config: Option<rt::PodSandboxConfig>,
    sandbox_backoff: Backoff,
    sandbox_retry_at: Option<Instant>,
    volumes: Option<BTreeMap<String, PathBuf>>,
    pub(super) init: Vec<ContainerRecord>,
    pub(super) containers: Vec<ContainerRecord>,
    start_time: Option<Time>,
    message: Option<String>,
    last_written: Option<PodStatus>,
}

fn pod_spec_containers(pod: &Pod) -> (Vec<Container>, Vec<Container>) {
    let spec = pod.spec.clone().unwrap_or_default();
    (spec.init_containers.unwrap_or_default(), spec.containers)
}

impl PodWorker {
    /// A worker for `pod`.
    pub fn new(deps: Arc<Deps>, pod: Arc<Pod>) -> Self {
        let opts = deps.options.clone();
        let backoff = || Backoff::new(opts.backoff_initial, opts.backoff_max);
        let (init, containers) = pod_spec_containers(&pod);
        let record = |c: &Container| {
            ContainerRecord::new(&c.name, c.image.as_deref().unwrap_or_default(), backoff())
        };
        let start_time = pod.status.as_ref().and_then(|s| s.start_time.clone());
        Self {
            init: init.iter().map(record).collect(),
            containers: containers.iter().map(record).collect(),
            deps,
            pod,
            gone: false,
            sandbox_id: None,
            netns_path: String::new(),
            pod_ips: Vec::new(),
            sandbox_config: None,
            sandbox_backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(30)),
            sandbox_retry_at: None,
            volumes: None,
            start_time,
            message: None,
            last_written: None,
        }
    }

    /// Runs until the pod is deleted and cleaned up.
    pub async fn run(mut self, adopted: Option<Adopted>, mut updates: PodUpdates) {
        if let Some(a) = adopted {
            self.adopt(a).await;
        }
        loop {
            if let Some(latest) = updates.borrow_and_update().clone() {
                self.pod = latest;
            } else {
                self.gone = true;
            }
            let deleting = self.gone || self.pod.metadata.deletion_timestamp.is_some();
            if deleting {
                match self.terminate().await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(pod = %self.name(), error = %e, "termination incomplete; retrying")
                    }
                }
            } else {
                self.sync().await;
            }
            tokio::select! {
                changed = updates.changed() => {
                    if changed.is_err() {
                        // The manager is gone (kubelet stopping): leave pods running.
                        return;
                    }
                }
                () = tokio::time::sleep(self.deps.options.resync) => {}
            }
        }
    }

    pub(super) fn name(&self) -> String {
        format!(
            "{}/{}",
            self.pod.metadata.namespace.as_deref().unwrap_or_default(),
            self.pod.metadata.name.as_deref().unwrap_or_default()
        )
    }

    fn terminal(&self) -> bool {
        matches!(
            self.pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    }

    /// One pass toward the spec, then a status write if anything changed.
    pub async fn sync(&mut self) {
        if self.start_time.is_none() {
            self.start_time = Some(time::now());
        }
        // A finished pod found without a sandbox (e.g. after a node restart) is not run again.
        if self.sandbox_id.is_none() && self.terminal() {
            return;
        }
        if self.ensure_sandbox().await && self.ensure_volumes().await {
            self.sync_containers().await;
        }
        self.write_status().await;
    }

    fn pod_ip(&self) -> String {
        self.pod_ips.first().cloned().unwrap_or_default()
    }

    fn host_network(&self) -> bool {
        self.pod.spec.as_ref().and_then(|s| s.host_network) == Some(true)
    }

    /// Sandbox and network; false while not ready.
    async fn ensure_sandbox(&mut self) -> bool {
        if self.sandbox_id.is_some() && !self.pod_ips.is_empty() {
            return true;
        }
        if self.sandbox_retry_at.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let deps = self.deps.clone();
        let config = sandbox_config(&deps.cfg, &self.pod, 0);
        if self.sandbox_id.is_none() {
            let _ = std::fs::create_dir_all(&config.log_directory);
            let mut runtime = deps.runtime.clone();
            match runtime
                .run_pod_sandbox(rt::RunPodSandboxRequest {
                    config: Some(config.clone()),
                })
                .await
            {
                Ok(r) => {
                    let r = r.into_inner();
                    self.sandbox_id = Some(r.sandbox_id);
                    self.netns_path = r.netns_path;
                }
                Err(s) => {
                    self.sandbox_failed(format!("Failed to create pod sandbox: {}", s.message()))
                        .await;
                    return false;
                }
            }
        }
        self.sandbox_config = Some(config);
        if self.host_network() {
            self.pod_ips = vec![deps.host_ip.clone()];
        } else {
            let mut network = deps.network.clone();
            let m = &self.pod.metadata;
            let request = net::SetUpRequest {
                sandbox_id: self.sandbox_id.clone().unwrap_or_default(),
                netns_path: self.netns_path.clone(),
                pod: Some(net::PodRef {
                    namespace: m.namespace.clone().unwrap_or_default(),
                    name: m.name.clone().unwrap_or_default(),
                    uid: m.uid.clone().unwrap_or_default(),
                }),
                interface_name: String::new(),
            };
            match network.set_up(request).await {
                Ok(r) => self.pod_ips = r.into_inner().ips,
                Err(s) => {
                    let msg = format!(
                        "Failed to create pod sandbox: failed to set up sandbox network: {}",
                        s.message()
                    );
                    self.sandbox_failed(msg).await;
                    return false;
                }
            }
        }
        self.message = None;
        self.sandbox_backoff.reset();
        self.sandbox_retry_at = None;
        self.record_pod_network();
        !self.pod_ips.is_empty()
    }

    /// Lets the port-forward server find the pod's network.
    pub(super) fn record_pod_network(&self) {
        let network = if self.host_network() {
            PodNetwork::Host
        } else if self.netns_path.is_empty() {
            return;
        } else {
            PodNetwork::Namespace(self.netns_path.clone().into())
        };
        let m = &self.pod.metadata;
        self.deps.index.set_pod_network(
            m.namespace.as_deref().unwrap_or_default(),
            m.name.as_deref().unwrap_or_default(),
            network,
        );
    }

    async fn sandbox_failed(&mut self, msg: String) {
        self.sandbox_retry_at = Some(Instant::now() + self.sandbox_backoff.next_delay());
        if self.message.as_deref() != Some(msg.as_str()) {
            self.deps
                .cluster
                .event(&self.pod, None, "Warning", "FailedCreatePodSandBox", &msg)
                .await;
            self.message = Some(msg);
        }
    }

    fn fields(&self) -> PodFields {
        PodFields {
            pod_ip: self.pod_ip(),
            host_ip: self.deps.host_ip.clone(),
            node_cpu_millis: self.deps.node_cpu_millis,
            node_memory_bytes: self.deps.node_memory_bytes,
        }
    }

    async fn fetch_refs(&self) -> Result<ObjectRefs, String> {
        let (cms, secrets) = referenced_names(&self.pod);
        if cms.is_empty() && secrets.is_empty() {
            return Ok(ObjectRefs::default());
        }
        let ns = self.pod.metadata.namespace.clone().unwrap_or_default();
        self.deps.cluster.refs(&ns, &cms, &secrets).await
    }

    /// Volumes (refreshed each pass so ConfigMap/Secret changes reach files).
    async fn ensure_volumes(&mut self) -> bool {
        let refs = match self.fetch_refs().await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(pod = %self.name(), error = %e, "cannot read referenced objects");
                return self.volumes.is_some();
            }
        };
        let uid = self.pod.metadata.uid.clone().unwrap_or_default();
        let pod_dir = self.deps.cfg.pod_dir(&uid);
        match prepare_volumes(&self.pod, &pod_dir, &refs, &self.fields()) {
            Ok(v) => {
                self.volumes = Some(v);
                if self
                    .message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("MountVolume"))
                {
                    self.message = None;
                }
                true
            }
            Err((volume, e)) => {
                let msg = format!("MountVolume.SetUp failed for volume \"{volume}\" : {e}");
                if self.message.as_deref() != Some(msg.as_str()) {
                    self.deps
                        .cluster
                        .event(&self.pod, None, "Warning", "FailedMount", &msg)
                        .await;
                    self.message = Some(msg);
                }
                // Already-mounted volumes keep serving running containers.
                self.volumes.is_some()
            }
        }
    }

    fn restart_policy(&self) -> String {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".to_owned())
    }

    /// Termination grace of probes' kills and deletes.
    pub(super) fn grace_seconds(&self) -> i64 {
        self.pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0)
    }

    pub(super) fn initialized(&self) -> bool {
        self.init
            .iter()
            .all(|c| c.terminated().is_some_and(|t| t.exit_code == 0))
    }

    async fn sync_containers(&mut self) {
        let refs = self.fetch_refs().await.unwrap_or_default();
        let (init_specs, specs) = pod_spec_containers(&self.pod);
        let deps = self.deps.clone();
        let pod = self.pod.clone();
        let pod_ip = self.pod_ip();
        let volumes = self.volumes.clone().unwrap_or_default();
        let sandbox_id = self.sandbox_id.clone().unwrap_or_default();
        let sandbox_config = self
            .sandbox_config
            .clone()
            .unwrap_or_else(|| sandbox_config(&deps.cfg, &pod, 0));
        let policy = self.restart_policy();
        let grace = self.grace_seconds();
        let ctx = StartCtx {
            deps: &deps,
            pod: &pod,
            sandbox_id: &sandbox_id,
            sandbox_config: &sandbox_config,
            volumes: &volumes,
            refs: &refs,
            pod_ip: &pod_ip,
        };
        // Init containers: one at a time, in order, each to success.
        for (rec, spec) in self.init.iter_mut().zip(&init_specs) {
            container::refresh(&deps, rec).await;
            if rec.running() {
                return;
            }
            match rec.terminated().map(|t| t.exit_code) {
                Some(0) => continue,
                Some(code) if !should_restart(&policy, code) => return,
                _ => {
                    container::start(&ctx, rec, spec, "init").await;
                    return;
                }
            }
        }
        for (rec, spec) in self.containers.iter_mut().zip(&specs) {
            container::refresh(&deps, rec).await;
            let start = match rec.terminated() {
                Some(t) => should_restart(&policy, t.exit_code),
                None => !rec.running(),
            };
            if start {
                container::start(&ctx, rec, spec, "regular").await;
            }
            container::probe(&deps, &pod, rec, spec, &pod_ip, grace).await;
        }
    }

    /// The status as it should be now.
    pub fn status(&self) -> PodStatus {
        let now = time::now();
        let view = PodView {
            pod: &self.pod,
            sandbox_ready: self.sandbox_id.is_some() && !self.pod_ips.is_empty(),
            pod_ips: &self.pod_ips,
            host_ip: &self.deps.host_ip,
            start_time: self.start_time.as_ref(),
            init: &self.init,
            containers: &self.containers,
            initialized: self.initialized(),
            message: self.message.as_deref(),
            now: &now,
        };
        compute(&view)
    }

    /// Writes the status when it differs from the pod's and from our last write.
    async fn write_status(&mut self) {
        let status = self.status();
        if self.pod.status.as_ref() == Some(&status) || self.last_written.as_ref() == Some(&status)
        {
            return;
        }
        match self.deps.cluster.patch_pod_status(&self.pod, &status).await {
            Ok(()) => self.last_written = Some(status),
            Err(e) => tracing::warn!(pod = %self.name(), error = %e, "cannot write pod status"),
        }
    }
}
