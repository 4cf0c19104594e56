//! Registration with the kernel's `PluginRegistry`, and heartbeats.

use std::time::Duration;

use kerno_proto::plugin::v1 as pb;

use super::{HealthReporter, PluginError};
use crate::client::{Error, KernelClient};

const MAX_RETRY: Duration = Duration::from_secs(5);
/// Used when the kernel answers 0.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

pub(super) struct Registration {
    pub client: KernelClient,
    pub request: pb::RegisterRequest,
    pub health: HealthReporter,
}

/// What registration settled on: heartbeat every `Some(interval)`, or not at
/// all when the kernel does not serve `PluginRegistry`.
pub(super) type Heartbeat = Option<Duration>;

impl Registration {
    /// Registers, retrying while the kernel is unreachable.
    pub async fn register(&self) -> Result<Heartbeat, PluginError> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self
                .client
                .plugin_registry()
                .register(self.request.clone())
                .await
            {
                Ok(reply) => {
                    let reply = reply.into_inner();
                    tracing::info!(
                        protocol_version = reply.protocol_version,
                        heartbeat_seconds = reply.heartbeat_interval_seconds,
                        "registered with the kernel"
                    );
                    let interval = match reply.heartbeat_interval_seconds {
                        0 => DEFAULT_HEARTBEAT,
                        s => Duration::from_secs(u64::from(s)),
                    };
                    return Ok(Some(interval));
                }
                Err(status) => match Error::from(status) {
                    Error::FailedPrecondition(message) => {
                        return Err(PluginError::Refused(message));
                    }
                    Error::Unimplemented(_) => {
                        // A kernel without the plugin runtime (or another API
                        // server): the plugin still works, unsupervised.
                        tracing::warn!(
                            "the kernel does not serve PluginRegistry; running unregistered"
                        );
                        return Ok(None);
                    }
                    e if e.is_transient() => {
                        tracing::debug!(error = %e, "kernel not reachable yet; retrying registration");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(MAX_RETRY);
                    }
                    e => return Err(PluginError::Refused(e.to_string())),
                },
            }
        }
    }

    /// Heartbeats forever; registers again if the kernel forgot the plugin
    /// (kernel restart).
    pub async fn heartbeat(self, interval: Heartbeat) {
        let Some(mut interval) = interval else {
            return;
        };
        loop {
            tokio::time::sleep(interval).await;
            let (serving, note) = self.health.get();
            let message = if serving {
                note
            } else {
                format!("not serving: {note}")
            };
            let request = pb::HeartbeatRequest {
                name: self.request.name.clone(),
                message,
            };
            match self.client.plugin_registry().heartbeat(request).await {
                Ok(_) => {}
                Err(status) => match Error::from(status) {
                    Error::NotFound(_) => match self.register().await {
                        Ok(Some(again)) => interval = again,
                        Ok(None) => return,
                        Err(e) => tracing::warn!(error = %e, "registering again failed"),
                    },
                    e => tracing::warn!(error = %e, "heartbeat failed"),
                },
            }
        }
    }
}
