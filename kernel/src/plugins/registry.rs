//! `PluginRegistry`: registration with protocol-version negotiation, and
//! heartbeats, both recorded on the plugin's `Plugin` object.

use std::sync::Arc;

use kerno_proto::plugin::v1 as pb;
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::admission::remote::{RemoteHooks, hooks_from_registration};
use crate::auth::tokens::TokenIdentity;
use crate::service::write::Part;
use crate::service::{PatchType, Service, Target, WriteOptions};

/// Protocol versions of `kerno.plugin.v1` this kernel speaks.
pub const SUPPORTED_PROTOCOL_VERSIONS: [u32; 1] = [1];

/// How often plugins are asked to heartbeat.
pub const HEARTBEAT_INTERVAL_SECONDS: u32 = 10;

/// The field manager the registry writes Plugin objects as.
const FIELD_MANAGER: &str = "kerno-plugin-registry";

/// The gRPC `PluginRegistry` service.
pub struct PluginRegistryApi {
    service: Arc<Service>,
    admission: Option<Arc<RemoteHooks>>,
}

impl PluginRegistryApi {
    /// A registry writing through `service`.
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            service,
            admission: None,
        }
    }

    /// Records the admission hooks plugins declare in `hooks` (the chain's
    /// plugin modules read them); without it, declaring hooks is refused.
    pub fn with_admission(mut self, hooks: Arc<RemoteHooks>) -> Self {
        self.admission = Some(hooks);
        self
    }

    /// The tonic service to mount.
    pub fn into_server(self) -> pb::plugin_registry_server::PluginRegistryServer<Self> {
        pb::plugin_registry_server::PluginRegistryServer::new(self)
    }

    fn target(&self, name: &str) -> Result<Target, Status> {
        let rt = self
            .service
            .registry()
            .get("kerno.dev", "v1", "plugins")
            .ok_or_else(|| Status::internal("the Plugin type is not registered"))?;
        Ok(Target {
            rt,
            namespace: None,
            name: Some(name.to_owned()),
        })
    }

    /// Sets status fields with a merge patch of the status subresource.
    async fn patch_status(&self, target: &Target, status: serde_json::Value) -> Result<(), Status> {
        let patch = serde_json::to_vec(&json!({ "status": status }))
            .map_err(|e| Status::internal(e.to_string()))?;
        let opts = WriteOptions {
            field_manager: FIELD_MANAGER.into(),
            ..Default::default()
        };
        self.service
            .patch(target, PatchType::Merge, &patch, Part::Status, &opts)
            .await?;
        Ok(())
    }
}

/// A plugin authenticated by its own token may speak only for itself.
fn check_caller<T>(request: &Request<T>, name: &str) -> Result<(), Status> {
    match request.extensions().get::<TokenIdentity>() {
        Some(TokenIdentity::Plugin(own)) if own != name => Err(Status::permission_denied(format!(
            "the token of plugin {own:?} cannot act for plugin {name:?}"
        ))),
        _ => Ok(()),
    }
}

fn now() -> String {
    crate::service::meta::now_rfc3339()
}

#[tonic::async_trait]
impl pb::plugin_registry_server::PluginRegistry for PluginRegistryApi {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        check_caller(&request, &request.get_ref().name)?;
        let req = request.into_inner();
        if req.name.is_empty() {
            return Err(Status::invalid_argument("the plugin name is required"));
        }
        let Some(version) = SUPPORTED_PROTOCOL_VERSIONS
            .iter()
            .rev()
            .find(|v| req.protocol_versions.contains(v))
            .copied()
        else {
            return Err(Status::failed_precondition(format!(
                "plugin {:?} speaks kerno.plugin protocol versions {:?}; this kernel supports {:?}",
                req.name, req.protocol_versions, SUPPORTED_PROTOCOL_VERSIONS
            )));
        };
        let hooks = hooks_from_registration(&req.name, &req.endpoint, &req.admission)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let declared_hooks: Vec<serde_json::Value> = hooks
            .iter()
            .map(|h| {
                json!({
                    "name": h.name,
                    "type": if h.phase == crate::admission::Phase::Mutating { "Mutating" } else { "Validating" },
                    "timeoutMillis": u64::try_from(h.timeout.as_millis()).unwrap_or(u64::MAX),
                    "failurePolicy": format!("{:?}", h.failure_policy),
                })
            })
            .collect();
        match &self.admission {
            Some(admission) => admission.set(&req.name, hooks),
            None if !hooks.is_empty() => {
                return Err(Status::failed_precondition(
                    "this kernel does not take admission plugins",
                ));
            }
            None => {}
        }
        let target = self.target(&req.name)?;
        // The spec is applied, so a re-registration (a restart, an upgrade)
        // replaces what the plugin declared before.
        let applied = json!({
            "apiVersion": "kerno.dev/v1",
            "kind": "Plugin",
            "metadata": { "name": req.name },
            "spec": {
                "kind": req.kind,
                "version": req.version,
                "endpoint": req.endpoint,
                "capabilities": req.capabilities,
                "admission": declared_hooks,
            },
        });
        let body = serde_json::to_vec(&applied).map_err(|e| Status::internal(e.to_string()))?;
        let opts = WriteOptions {
            field_manager: FIELD_MANAGER.into(),
            force: true,
            ..Default::default()
        };
        self.service
            .patch(&target, PatchType::Apply, &body, Part::Main, &opts)
            .await?;
        self.patch_status(
            &target,
            json!({ "phase": "Running", "lastHeartbeatTime": now() }),
        )
        .await?;
        tracing::info!(plugin = %req.name, kind = %req.kind, version = %req.version, protocol = version, "plugin registered");
        Ok(Response::new(pb::RegisterResponse {
            protocol_version: version,
            heartbeat_interval_seconds: HEARTBEAT_INTERVAL_SECONDS,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        check_caller(&request, &request.get_ref().name)?;
        let req = request.into_inner();
        let target = self.target(&req.name)?;
        // A plugin the kernel does not know (deleted, or a kernel with a new
        // store) gets NOT_FOUND and registers again.
        self.service.get(&target).await?;
        self.patch_status(
            &target,
            json!({ "phase": "Running", "lastHeartbeatTime": now() }),
        )
        .await?;
        Ok(Response::new(pb::HeartbeatResponse {}))
    }
}
