//! Events about pods (`Pulled`, `Created`, `Started`, `Killing`, `BackOff`,
//! `Unhealthy`, `FailedMount`, ...), written as core/v1 Event objects.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kerno_sdk::{Api, KernelClient, PostParams};

use crate::time::now;

/// Writes events as the kubelet of one node.
pub struct EventSink {
    client: KernelClient,
    node_name: String,
}

impl EventSink {
    /// A sink reporting as `kubelet` on `node_name`.
    pub fn new(client: KernelClient, node_name: &str) -> Self {
        Self {
            client,
            node_name: node_name.to_owned(),
        }
    }

    /// Creates one event; a failure is logged (events are best effort).
    pub async fn record(
        &self,
        pod: &Pod,
        field_path: Option<&str>,
        type_: &str,
        reason: &str,
        message: &str,
    ) {
        let event = pod_event(pod, field_path, type_, reason, message, &self.node_name);
        let namespace = event.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(error = %e, reason, "cannot record event");
        }
    }
}

/// The Event object for one occurrence.
pub fn pod_event(
    pod: &Pod,
    field_path: Option<&str>,
    type_: &str,
    reason: &str,
    message: &str,
    node_name: &str,
) -> Event {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let at = now();
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{stamp:x}")),
            namespace: Some(namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(name),
            namespace: Some(namespace),
            uid: pod.metadata.uid.clone(),
            field_path: field_path.map(str::to_owned),
            resource_version: pod.metadata.resource_version.clone(),
        },
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        type_: Some(type_.to_owned()),
        count: Some(1),
        first_timestamp: Some(at.clone()),
        last_timestamp: Some(at.clone()),
        event_time: Some(MicroTime(at.0)),
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some(node_name.to_owned()),
        }),
        reporting_component: Some("kubelet".into()),
        reporting_instance: Some(node_name.to_owned()),
        action: None,
        related: None,
        series: None,
    }
}
