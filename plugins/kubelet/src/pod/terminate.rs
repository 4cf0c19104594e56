//! Graceful termination: stop containers (SIGTERM, SIGKILL after the grace
//! period), tear the network down, remove the sandbox and the pod's files,
//! then delete the pod for good.

use kerno_proto::network::v1 as net;
use kerno_proto::runtime::v1 as rt;

use super::container::field_path;
use super::spec::log_directory;
use super::worker::PodWorker;
use crate::volumes::remove_pod_dir;

impl PodWorker {
    /// Runs the termination steps in order; `Err` leaves the rest for a retry.
    pub async fn terminate(&mut self) -> Result<(), String> {
        let grace = self.grace_seconds();
        let deps = self.deps.clone();
        let pod = self.pod.clone();
        // Regular containers first (all at once, each with the full grace), then init.
        let mut stops = Vec::new();
        for (kind, records) in [("regular", &self.containers), ("init", &self.init)] {
            for rec in records.iter().filter(|r| r.running()) {
                let Some(id) = rec.container_id.clone() else {
                    continue;
                };
                let msg = format!("Stopping container {}", rec.name);
                deps.cluster
                    .event(
                        &pod,
                        Some(&field_path(kind, &rec.name)),
                        "Normal",
                        "Killing",
                        &msg,
                    )
                    .await;
                let mut runtime = deps.runtime.clone();
                stops.push(async move {
                    runtime
                        .stop_container(rt::StopContainerRequest {
                            container_id: id,
                            timeout_seconds: grace,
                        })
                        .await
                });
            }
        }
        for result in futures::future::join_all(stops).await {
            if let Err(s) = result
                && s.code() != tonic::Code::NotFound
            {
                return Err(format!("stop container: {}", s.message()));
            }
        }
        for rec in self.containers.iter_mut().chain(self.init.iter_mut()) {
            rec.ready = false;
        }
        if let Some(sandbox_id) = self.sandbox_id.clone() {
            let mut runtime = deps.runtime.clone();
            let not_found = |s: &tonic::Status| s.code() == tonic::Code::NotFound;
            match runtime
                .stop_pod_sandbox(rt::PodSandboxRef {
                    sandbox_id: sandbox_id.clone(),
                })
                .await
            {
                Err(s) if !not_found(&s) => return Err(format!("stop sandbox: {}", s.message())),
                _ => {}
            }
            let m = &pod.metadata;
            let mut network = deps.network.clone();
            network
                .tear_down(net::TearDownRequest {
                    sandbox_id: sandbox_id.clone(),
                    netns_path: self.netns_path.clone(),
                    pod: Some(net::PodRef {
                        namespace: m.namespace.clone().unwrap_or_default(),
                        name: m.name.clone().unwrap_or_default(),
                        uid: m.uid.clone().unwrap_or_default(),
                    }),
                })
                .await
                .map_err(|s| format!("tear down network: {}", s.message()))?;
            match runtime
                .remove_pod_sandbox(rt::PodSandboxRef { sandbox_id })
                .await
            {
                Err(s) if !not_found(&s) => return Err(format!("remove sandbox: {}", s.message())),
                _ => {}
            }
            self.sandbox_id = None;
            self.pod_ips.clear();
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        remove_pod_dir(&deps.cfg.pod_dir(&uid))
            .map_err(|e| format!("remove pod directory: {e}"))?;
        remove_pod_dir(&log_directory(&deps.cfg, &pod))
            .map_err(|e| format!("remove pod logs: {e}"))?;
        deps.index.remove_pod(
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.name.as_deref().unwrap_or_default(),
        );
        if !self.gone {
            deps.cluster.delete_pod(&pod).await?;
        }
        tracing::info!(pod = %self.name(), "pod terminated and cleaned up");
        Ok(())
    }
}
