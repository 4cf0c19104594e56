//! The scheduler: informer handlers keep the cache and queue current; one
//! thread pops pods and decides; binds and status writes run on tokio.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kerno_sdk::events::{EventRecorder, EventType, reference_of};
use kerno_sdk::informer::Notification;
use kerno_sdk::{Api, DeleteParams, Error, KernelClient, Patch, PatchParams};
use serde_json::json;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::algorithm::{Decision, Diagnosis, Framework};
use crate::cache::{Cache, PodKey, node_of, pod_key};
use crate::preemption::{self, Preemption};
use crate::queue::{QueuedPod, SchedulingQueue};
use crate::resources::pod_priority;

/// The scheduler name this scheduler answers to.
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// How many bindings may be in flight.
const MAX_BINDS_IN_FLIGHT: usize = 512;

/// Whether this scheduler should place `pod`.
pub fn responsible_for(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let name = spec.and_then(|s| s.scheduler_name.as_deref()).unwrap_or("");
    (name.is_empty() || name == SCHEDULER_NAME)
        && node_of(pod).is_none()
        && pod.metadata.deletion_timestamp.is_none()
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
}

/// Shared by the handlers, the scheduling thread and the bind tasks.
pub struct Scheduler {
    cache: RwLock<Cache>,
    /// Pods waiting for a node, by key.
    pending: RwLock<HashMap<PodKey, Arc<Pod>>>,
    /// The queue.
    pub queue: SchedulingQueue,
    framework: Framework,
    client: KernelClient,
    recorder: EventRecorder,
    runtime: Handle,
    binds: Arc<Semaphore>,
    /// Pods bound so far.
    pub bound: AtomicU64,
}

impl Scheduler {
    /// A scheduler talking to `client`; async work goes to `runtime`.
    pub fn new(client: KernelClient, recorder: EventRecorder, runtime: Handle) -> Self {
        Self {
            cache: RwLock::new(Cache::default()),
            pending: RwLock::new(HashMap::new()),
            queue: SchedulingQueue::default(),
            framework: Framework::default(),
            client,
            recorder,
            runtime,
            binds: Arc::new(Semaphore::new(MAX_BINDS_IN_FLIGHT)),
            bound: AtomicU64::new(0),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    fn pending_mut(&self) -> RwLockWriteGuard<'_, HashMap<PodKey, Arc<Pod>>> {
        self.pending.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Informer handler for nodes.
    pub fn on_node(&self, change: &Notification<Node>) {
        match change {
            Notification::Added(n) | Notification::Updated { new: n, .. } => {
                self.write().upsert_node(n.clone());
            }
            Notification::Deleted(n) => {
                self.write()
                    .remove_node(n.metadata.name.as_deref().unwrap_or(""));
            }
        }
        self.queue.move_all_to_active();
    }

    /// Informer handler for pods.
    pub fn on_pod(&self, change: &Notification<Pod>) {
        match change {
            Notification::Added(p) | Notification::Updated { new: p, .. } => {
                let key = pod_key(p);
                if node_of(p).is_some() {
                    self.pending_mut().remove(&key);
                    self.queue.remove(&key);
                    let freed = matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    );
                    self.write().update_pod(p.clone());
                    if freed {
                        self.queue.move_all_to_active();
                    }
                } else if responsible_for(p) {
                    self.pending_mut().insert(key.clone(), p.clone());
                    if !self.read().is_assumed(&key) {
                        self.queue.add(key, pod_priority(p));
                    }
                } else {
                    self.pending_mut().remove(&key);
                    self.queue.remove(&key);
                }
            }
            Notification::Deleted(p) => {
                let key = pod_key(p);
                self.pending_mut().remove(&key);
                self.queue.remove(&key);
                self.write().remove_pod(&key);
                self.queue.move_all_to_active();
            }
        }
    }

    /// The scheduling loop; returns after [`SchedulingQueue::close`].
    pub fn run_loop(self: &Arc<Self>) {
        loop {
            match self.queue.pop(Duration::from_millis(500)) {
                Some(qp) => self.schedule_one(qp),
                // Closed by `stop`, or just idle.
                None if self.binds.is_closed() => return,
                None => {}
            }
        }
    }

    /// Stops the loop.
    pub fn stop(&self) {
        self.binds.close();
        self.queue.close();
    }

    fn schedule_one(self: &Arc<Self>, qp: QueuedPod) {
        let pod = self
            .pending
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&qp.key)
            .cloned();
        let Some(pod) = pod else { return };
        if !responsible_for(&pod) || self.read().is_assumed(&qp.key) {
            return;
        }
        let decision = self.framework.schedule(&pod, &self.read());
        match decision {
            Decision::Node(node) => self.assume_and_bind(qp, pod, node),
            Decision::Unschedulable(diagnosis) => {
                let preemption = {
                    let cache = self.read();
                    preemption::find(&self.framework, &pod, &cache, &diagnosis)
                };
                self.report_unschedulable(&pod, &diagnosis, preemption);
                self.queue.add_unschedulable(qp);
            }
        }
    }

    fn assume_and_bind(self: &Arc<Self>, qp: QueuedPod, pod: Arc<Pod>, node: String) {
        let mut assumed = (*pod).clone();
        if let Some(spec) = assumed.spec.as_mut() {
            spec.node_name = Some(node.clone());
        }
        self.write().assume(Arc::new(assumed), &node);
        // Back-pressure: wait for a bind slot (this is the scheduling thread).
        let Ok(permit) = self.runtime.block_on(self.binds.clone().acquire_owned()) else {
            self.write().forget(&qp.key);
            return;
        };
        let this = self.clone();
        self.runtime.spawn(async move {
            let _permit = permit;
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(this.client.clone(), &namespace);
            match api.bind(&name, &node).await {
                Ok(()) => {
                    this.bound.fetch_add(1, Ordering::Relaxed);
                    this.recorder.record(
                        reference_of(pod.as_ref()),
                        EventType::Normal,
                        "Scheduled",
                        format!("Successfully assigned {namespace}/{name} to {node}"),
                    );
                }
                // Bound by someone else, or gone: the informer will tell.
                Err(Error::Conflict(_) | Error::NotFound(_)) => this.write().forget(&qp.key),
                Err(e) => {
                    tracing::warn!(pod = %qp.key, node, error = %e, "binding failed; retrying");
                    this.write().forget(&qp.key);
                    this.queue.add_backoff(qp);
                }
            }
        });
    }

    fn report_unschedulable(
        self: &Arc<Self>,
        pod: &Arc<Pod>,
        diagnosis: &Diagnosis,
        preemption: Option<Preemption>,
    ) {
        let mut message = diagnosis.message();
        let nominated = preemption.as_ref().map(|p| p.node.clone());
        if preemption.is_none() && diagnosis.nodes > 0 {
            message.push_str(&format!(
                " preemption: 0/{} nodes are available: {} No preemption victims found for incoming pod.",
                diagnosis.nodes, diagnosis.nodes
            ));
        }
        let this = self.clone();
        let pod = pod.clone();
        self.runtime.spawn(async move {
            let namespace = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(this.client.clone(), &namespace);
            if let Some(p) = &preemption {
                for victim in &p.victims {
                    let vname = victim.metadata.name.clone().unwrap_or_default();
                    let vns = victim.metadata.namespace.clone().unwrap_or_default();
                    let vapi: Api<Pod> = Api::namespaced(this.client.clone(), &vns);
                    this.recorder.record(
                        reference_of(victim.as_ref()),
                        EventType::Normal,
                        "Preempted",
                        format!(
                            "Preempted by pod {} on node {}",
                            pod.metadata.uid.as_deref().unwrap_or(""),
                            p.node
                        ),
                    );
                    match vapi.delete(&vname, &DeleteParams::default()).await {
                        Ok(_) | Err(Error::NotFound(_)) => {}
                        Err(e) => tracing::warn!(victim = %vname, error = %e, "preemption delete failed"),
                    }
                }
            }
            this.recorder.record(
                reference_of(pod.as_ref()),
                EventType::Warning,
                "FailedScheduling",
                message.clone(),
            );
            let current = pod.status.as_ref();
            let same = current
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|c| {
                    c.type_ == "PodScheduled"
                        && c.status == "False"
                        && c.message.as_deref() == Some(message.as_str())
                });
            let same_nomination =
                current.and_then(|s| s.nominated_node_name.clone()) == nominated;
            if same && same_nomination {
                return;
            }
            let mut conditions: Vec<PodCondition> = current
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|c| c.type_ != "PodScheduled")
                .collect();
            conditions.push(PodCondition {
                type_: "PodScheduled".into(),
                status: "False".into(),
                reason: Some("Unschedulable".into()),
                message: Some(message),
                last_transition_time: Some(Time(kerno_sdk::events::now())),
                ..PodCondition::default()
            });
            let mut status = json!({ "conditions": conditions });
            if let Some(node) = nominated {
                status["nominatedNodeName"] = json!(node);
            }
            let patch = json!({ "status": status });
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!(pod = %name, error = %e, "could not record the unschedulable condition");
            }
        });
    }
}
