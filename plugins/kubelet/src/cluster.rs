//! What pod workers need from the cluster, behind a trait so the pod
//! lifecycle can be tested without a kernel: referenced objects, status
//! writes, the final delete and events.

use std::collections::BTreeSet;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodStatus, Secret};
use kerno_sdk::{Api, DeleteParams, KernelClient, Patch, PatchParams};

use crate::events::EventSink;
use crate::refs::ObjectRefs;

/// The kubelet's name in managedFields and events.
pub const COMPONENT: &str = "kubelet";

/// The cluster as a pod worker sees it.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Fetches the named ConfigMaps and Secrets of `namespace`; absent ones
    /// are simply missing from the result.
    async fn refs(
        &self,
        namespace: &str,
        config_maps: &BTreeSet<String>,
        secrets: &BTreeSet<String>,
    ) -> Result<ObjectRefs, String>;
    /// Writes the pod's status.
    async fn patch_pod_status(&self, pod: &Pod, status: &PodStatus) -> Result<(), String>;
    /// Deletes the pod for good (grace 0), only if it is still the same pod (uid).
    async fn delete_pod(&self, pod: &Pod) -> Result<(), String>;
    /// Records an event about the pod; `field_path` names a container, e.g.
    /// `spec.containers{web}`. Failures are logged, not returned.
    async fn event(
        &self,
        pod: &Pod,
        field_path: Option<&str>,
        type_: &str,
        reason: &str,
        message: &str,
    );
}

/// The real cluster, through the kernel.
pub struct KernelCluster {
    client: KernelClient,
    events: EventSink,
}

impl KernelCluster {
    /// A cluster view for the kubelet of `node_name`.
    pub fn new(client: KernelClient, node_name: &str) -> Self {
        Self {
            events: EventSink::new(client.clone(), node_name),
            client,
        }
    }
}

fn pod_key(pod: &Pod) -> (String, String) {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

#[async_trait]
impl Cluster for KernelCluster {
    async fn refs(
        &self,
        namespace: &str,
        config_maps: &BTreeSet<String>,
        secrets: &BTreeSet<String>,
    ) -> Result<ObjectRefs, String> {
        let mut refs = ObjectRefs::default();
        let cms: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        for name in config_maps {
            if let Some(cm) = cms.get_opt(name).await.map_err(|e| e.to_string())? {
                refs.config_maps.insert(name.clone(), cm);
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        for name in secrets {
            if let Some(s) = secret_api.get_opt(name).await.map_err(|e| e.to_string())? {
                refs.secrets.insert(name.clone(), s);
            }
        }
        Ok(refs)
    }

    async fn patch_pod_status(&self, pod: &Pod, status: &PodStatus) -> Result<(), String> {
        let (namespace, name) = pod_key(pod);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let patch = serde_json::json!({ "status": status });
        let pp = PatchParams {
            field_manager: Some(COMPONENT.to_owned()),
            ..PatchParams::default()
        };
        pods.patch_status(&name, &pp, &Patch::Merge(patch))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn delete_pod(&self, pod: &Pod) -> Result<(), String> {
        let (namespace, name) = pod_key(pod);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        // The SDK has no uid precondition; a resourceVersion precondition on
        // the object we just read (with our uid) is as strict.
        for _ in 0..5 {
            let Some(current) = pods.get_opt(&name).await.map_err(|e| e.to_string())? else {
                return Ok(());
            };
            if current.metadata.uid != pod.metadata.uid {
                return Ok(());
            }
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                resource_version: current.metadata.resource_version.clone(),
                ..DeleteParams::default()
            };
            match pods.delete(&name, &dp).await {
                Ok(_) | Err(kerno_sdk::Error::NotFound(_)) => return Ok(()),
                Err(kerno_sdk::Error::Conflict(_)) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!(
            "pod {namespace}/{name} kept changing while being deleted"
        ))
    }

    async fn event(
        &self,
        pod: &Pod,
        field_path: Option<&str>,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        self.events
            .record(pod, field_path, type_, reason, message)
            .await;
    }
}
