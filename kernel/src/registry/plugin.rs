//! The `Plugin` resource (`kerno.dev/v1`, cluster-scoped): one object per
//! plugin the supervisor runs or that registered itself.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FieldError;

/// A plugin as stored and served.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.kerno.v1.Plugin")]
pub struct Plugin {
    /// `kerno.dev/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `Plugin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    /// What the plugin is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<PluginSpec>,
    /// How the plugin is doing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PluginStatus>,
}

/// Desired state of a plugin, as it registered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.kerno.v1.PluginSpec")]
pub struct PluginSpec {
    /// Plugin kind: `scheduler`, `controller`, `admission`, `runtime`, ...
    #[serde(default)]
    pub kind: String,
    /// The plugin's own version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Where its gRPC service listens (`unix:///path` or `host:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Capabilities it offers, e.g. `admission.validating`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,
    /// The admission hooks it serves, as it declared them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission: Option<Vec<PluginAdmissionHook>>,
}

/// One admission hook of a plugin, as recorded on its Plugin object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.kerno.v1.PluginAdmissionHook")]
pub struct PluginAdmissionHook {
    /// The hook's name.
    #[serde(default)]
    pub name: String,
    /// `Mutating` or `Validating`.
    #[serde(default)]
    pub r#type: String,
    /// How long the kernel waits for it, in milliseconds.
    #[serde(default)]
    pub timeout_millis: u64,
    /// `Fail` or `Ignore`.
    #[serde(default)]
    pub failure_policy: String,
}

/// Observed state of a plugin, kept by the supervisor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "dev.kerno.v1.PluginStatus")]
pub struct PluginStatus {
    /// `Pending`, `Starting`, `Running`, `CrashLoopBackOff`, `Stopped`,
    /// `Unreachable`, `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// How often the supervisor restarted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<i32>,
    /// Last successful health check or heartbeat (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    /// The last failure, for `kubectl describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Process id of the running plugin, when the supervisor runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
}

/// The phases a plugin can be in.
pub const PLUGIN_PHASES: &[&str] = &[
    "Pending",
    "Starting",
    "Running",
    "CrashLoopBackOff",
    "Stopped",
    "Unreachable",
    "Failed",
];

/// Plugin validation: `spec.kind` required, known phase, restarts ≥ 0.
pub fn validate(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if obj
        .pointer("/spec/kind")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        errs.push(FieldError::required("spec.kind"));
    }
    if let Some(phase) = obj.pointer("/status/phase").filter(|v| !v.is_null())
        && !phase.as_str().is_some_and(|p| PLUGIN_PHASES.contains(&p))
    {
        errs.push(FieldError::not_supported(
            "status.phase",
            phase,
            PLUGIN_PHASES,
        ));
    }
    if let Some(r) = obj.pointer("/status/restarts")
        && r.as_i64().is_some_and(|n| n < 0)
    {
        errs.push(FieldError::invalid(
            "status.restarts",
            r,
            "must be greater than or equal to 0",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trips_and_validates() {
        let obj = json!({"apiVersion": "kerno.dev/v1", "kind": "Plugin", "metadata": {"name": "dns"},
            "spec": {"kind": "dns", "version": "0.1.0", "endpoint": "unix:///run/dns.sock", "capabilities": ["dns"]},
            "status": {"phase": "Running", "restarts": 1, "lastHeartbeatTime": "2025-01-10T12:00:00Z", "lastError": "x"}});
        let p: Plugin = serde_json::from_value(obj.clone()).unwrap_or_default();
        assert_eq!(p.spec.as_ref().map(|s| s.kind.as_str()), Some("dns"));
        assert_eq!(serde_json::to_value(&p).ok(), Some(obj.clone()));
        assert!(validate(&obj, None).is_empty());
        let bad = json!({"spec": {}, "status": {"phase": "Dancing", "restarts": -1}});
        let msgs: Vec<_> = validate(&bad, None)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(msgs[0], "spec.kind: Required value");
        assert!(msgs[1].starts_with(r#"status.phase: Unsupported value: "Dancing""#));
        assert_eq!(msgs.len(), 3);
    }
}
