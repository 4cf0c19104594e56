//! The `kerno.plugin.v1.Plugin` service every plugin serves: health and shutdown.

use std::time::Duration;

use kerno_proto::plugin::v1 as pb;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// Tells the kernel whether the plugin can do its work. Clone it freely.
#[derive(Clone)]
pub struct HealthReporter {
    state: watch::Sender<(bool, String)>,
}

impl HealthReporter {
    pub(crate) fn new() -> Self {
        Self {
            state: watch::channel((true, String::new())).0,
        }
    }

    /// Reports SERVING with an optional note.
    pub fn set_serving(&self, message: impl Into<String>) {
        self.state.send_replace((true, message.into()));
    }

    /// Reports NOT_SERVING and why.
    pub fn set_not_serving(&self, message: impl Into<String>) {
        self.state.send_replace((false, message.into()));
    }

    /// Whether the plugin reports SERVING, and its note.
    pub fn get(&self) -> (bool, String) {
        self.state.borrow().clone()
    }
}

/// Completes when the plugin is asked to stop (Shutdown RPC, SIGTERM, SIGINT).
/// Clone it freely; every clone sees the same signal.
#[derive(Clone)]
pub struct ShutdownSignal {
    rx: watch::Receiver<Option<Duration>>,
}

/// Triggers a [`ShutdownSignal`].
#[derive(Clone)]
pub(crate) struct ShutdownTrigger {
    tx: watch::Sender<Option<Duration>>,
}

pub(crate) fn shutdown_channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(None);
    (ShutdownTrigger { tx }, ShutdownSignal { rx })
}

impl ShutdownTrigger {
    /// Asks for a stop within `grace`; the first request's grace wins.
    pub(crate) fn trigger(&self, grace: Duration) {
        self.tx.send_if_modified(|state| {
            if state.is_none() {
                *state = Some(grace);
                true
            } else {
                false
            }
        });
    }
}

impl ShutdownSignal {
    /// Whether a stop was requested.
    pub fn is_requested(&self) -> bool {
        self.rx.borrow().is_some()
    }

    /// The grace period of the stop request, once there is one.
    pub fn grace(&self) -> Option<Duration> {
        *self.rx.borrow()
    }

    /// Waits for a stop request and returns its grace period.
    pub async fn wait(&self) -> Duration {
        let mut rx = self.rx.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(grace) => grace.unwrap_or_default(),
            // The trigger is gone: the plugin is stopping anyway.
            Err(_) => Duration::ZERO,
        }
    }
}

/// The `Plugin` service implementation.
pub(crate) struct PluginService {
    pub health: HealthReporter,
    pub shutdown: ShutdownTrigger,
}

#[tonic::async_trait]
impl pb::plugin_server::Plugin for PluginService {
    async fn health(
        &self,
        _request: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        let (serving, message) = self.health.get();
        let status = if serving {
            pb::health_response::ServingStatus::Serving
        } else {
            pb::health_response::ServingStatus::NotServing
        };
        Ok(Response::new(pb::HealthResponse {
            status: status.into(),
            message,
        }))
    }

    async fn shutdown(
        &self,
        request: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        let grace = Duration::from_secs(u64::from(request.get_ref().grace_seconds));
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutdown requested by the kernel"
        );
        self.shutdown.trigger(grace);
        Ok(Response::new(pb::ShutdownResponse {}))
    }
}
