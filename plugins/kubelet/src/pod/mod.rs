//! Pods bound to this node: a manager that keeps one worker task per pod
//! and feeds it the pod's latest state.

pub mod adopt;
pub mod container;
pub mod deps;
pub mod record;
pub mod spec;
pub mod status;
pub mod terminate;
pub mod worker;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kerno_sdk::informer::{Notification, Store};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use deps::{ContainerIndex, Deps, PodNetwork, WorkerOptions};
pub use worker::{Adopted, PodWorker};

struct WorkerHandle {
    updates: watch::Sender<Option<Arc<Pod>>>,
    task: JoinHandle<()>,
}

/// One worker per pod uid.
pub struct PodManager {
    deps: Arc<Deps>,
    workers: HashMap<String, WorkerHandle>,
    adopted: HashMap<String, Adopted>,
}

impl PodManager {
    /// A manager with no workers yet.
    pub fn new(deps: Arc<Deps>) -> Self {
        Self {
            deps,
            workers: HashMap::new(),
            adopted: HashMap::new(),
        }
    }

    /// Adopts or removes what the runtime holds, then starts workers for
    /// every pod in `pods`.
    pub async fn start(&mut self, pods: &[Arc<Pod>]) -> Result<(), String> {
        self.adopted = adopt::reconcile_sandboxes(&self.deps, pods).await?;
        for pod in pods {
            self.update(pod.clone());
        }
        Ok(())
    }

    /// Hands the pod's latest state to its worker, starting one if needed.
    pub fn update(&mut self, pod: Arc<Pod>) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        if let Some(handle) = self.workers.get(&uid)
            && !handle.task.is_finished()
        {
            handle.updates.send_replace(Some(pod));
            return;
        }
        let (tx, rx) = watch::channel(Some(pod.clone()));
        let worker = PodWorker::new(self.deps.clone(), pod);
        let adopted = self.adopted.remove(&uid);
        let task = tokio::spawn(worker.run(adopted, rx));
        self.workers.insert(uid, WorkerHandle { updates: tx, task });
    }

    /// Tells a pod's worker that the pod is gone.
    pub fn remove(&mut self, pod: &Pod) {
        if let Some(uid) = &pod.metadata.uid
            && let Some(handle) = self.workers.get(uid)
        {
            handle.updates.send_replace(None);
        }
    }

    /// Brings workers in line with the cache (after missed notifications)
    /// and forgets finished workers.
    pub fn resync(&mut self, pods: &[Arc<Pod>]) {
        let present: HashMap<String, Arc<Pod>> = pods
            .iter()
            .filter_map(|p| Some((p.metadata.uid.clone()?, p.clone())))
            .collect();
        self.workers
            .retain(|uid, h| !h.task.is_finished() || present.contains_key(uid));
        for (uid, handle) in &self.workers {
            if !present.contains_key(uid) {
                handle.updates.send_replace(None);
            }
        }
        for pod in present.into_values() {
            self.update(pod);
        }
        // Finished workers of deleted pods are dropped here.
        self.workers.retain(|_, h| !h.task.is_finished());
    }

    /// How many pods have a live worker.
    pub fn len(&self) -> usize {
        self.workers
            .values()
            .filter(|h| !h.task.is_finished())
            .count()
    }

    /// Whether no pod has a live worker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs the manager on an informer's store and notifications until `stop` completes.
    pub async fn run(
        mut self,
        store: Store<Pod>,
        mut events: broadcast::Receiver<Notification<Pod>>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        store.wait_until_ready().await;
        loop {
            match self.start(&store.list()).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "runtime not reachable for adoption; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
        let mut stop = std::pin::pin!(stop);
        let mut resync = tokio::time::interval(Duration::from_secs(30));
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = resync.tick() => self.resync(&store.list()),
                event = events.recv() => match event {
                    Ok(Notification::Added(p)) | Ok(Notification::Updated { new: p, .. }) => self.update(p),
                    Ok(Notification::Deleted(p)) => self.remove(&p),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.resync(&store.list()),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}
