//! The supervisor's writes to a plugin's `Plugin` object: it creates the
//! object before the plugin first registers and keeps `status` current.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::service::write::Part;
use crate::service::{PatchType, Service, Target, WriteOptions};

/// The field manager the supervisor writes Plugin objects as.
const FIELD_MANAGER: &str = "kerno-plugin-supervisor";

/// `spec.kind` of a Plugin the supervisor started but that has not
/// registered yet (registration replaces it with the plugin's own kind).
pub const UNREGISTERED_KIND: &str = "unregistered";

/// Phases the supervisor reports.
pub mod phase {
    /// Started, handshake or first health check pending.
    pub const STARTING: &str = "Starting";
    /// Handshake done and healthy.
    pub const RUNNING: &str = "Running";
    /// Exiting quickly again and again; restarts are delayed.
    pub const CRASH_LOOP_BACK_OFF: &str = "CrashLoopBackOff";
    /// Stopped by the supervisor (the kernel stopped).
    pub const STOPPED: &str = "Stopped";
    /// Running but not answering health checks.
    pub const UNREACHABLE: &str = "Unreachable";
    /// Refused (bad handshake, unsupported protocol, binary missing); retried with back-off.
    pub const FAILED: &str = "Failed";
}

/// Writes one plugin's object.
#[derive(Clone)]
pub struct StatusWriter {
    service: Arc<Service>,
    name: String,
}

impl StatusWriter {
    /// A writer for plugin `name`.
    pub fn new(service: Arc<Service>, name: &str) -> Self {
        Self {
            service,
            name: name.to_owned(),
        }
    }

    fn target(&self) -> Result<Target, ApiError> {
        let rt = self
            .service
            .registry()
            .get("kerno.dev", "v1", "plugins")
            .ok_or_else(|| ApiError::Internal("the Plugin type is not registered".into()))?;
        Ok(Target {
            rt,
            namespace: None,
            name: Some(self.name.clone()),
        })
    }

    /// Creates the object unless it exists (a plugin that registered before
    /// keeps its spec).
    pub async fn ensure(&self) -> Result<(), ApiError> {
        let target = self.target()?;
        let obj = json!({
            "apiVersion": "kerno.dev/v1",
            "kind": "Plugin",
            "metadata": { "name": self.name },
            "spec": { "kind": UNREGISTERED_KIND },
        });
        let opts = WriteOptions {
            field_manager: FIELD_MANAGER.into(),
            ..Default::default()
        };
        let create = Target {
            name: None,
            ..target
        };
        match self.service.create(&create, obj, &opts).await {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Merges `status` into the object's status (a `null` removes a field).
    pub async fn patch(&self, status: Value) -> Result<(), ApiError> {
        let target = self.target()?;
        let body = serde_json::to_vec(&json!({ "status": status }))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let opts = WriteOptions {
            field_manager: FIELD_MANAGER.into(),
            ..Default::default()
        };
        match self
            .service
            .patch(&target, PatchType::Merge, &body, Part::Status, &opts)
            .await
        {
            Ok(_) => Ok(()),
            // Deleted by a user while running: create it again and retry once.
            Err(ApiError::NotFound(_)) => {
                self.ensure().await?;
                self.service
                    .patch(&target, PatchType::Merge, &body, Part::Status, &opts)
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        }
    }
}

/// The current time as the API writes it.
pub fn now() -> String {
    crate::service::meta::now_rfc3339()
}
