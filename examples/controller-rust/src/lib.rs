//! A minimal third-party kerno controller, written on `kerno-sdk`.
//!
//! What it does: every ConfigMap labelled `example.kerno.dev/mirror=true` gets
//! a copy named `<name>-mirror` in the same namespace, with the same `data`
//! and `binaryData`, labelled `example.kerno.dev/mirror-of=<name>` and owned
//! by the source (so deleting the source lets garbage collection remove the
//! copy). Editing the source updates the copy; editing the copy is undone.
//!
//! Only one replica works at a time: replicas campaign for the Lease
//! `kerno-example-controller` (in the namespace `leaseNamespace` of the
//! plugin config, default `default`) and only the holder runs the controller.
//!
//! Config (`KERNO_PLUGIN_CONFIG`, JSON): `{"leaseNamespace": "default"}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kerno_sdk::leader::{LeaderConfig, LeaderElector, LeaseApi};
use kerno_sdk::plugin::PluginContext;
use kerno_sdk::{Action, Api, Controller, Error, KernelClient, ListParams, PostParams};

/// The label that asks for a mirror.
pub const MIRROR_LABEL: &str = "example.kerno.dev/mirror";
/// The label a mirror carries, naming its source.
pub const MIRROR_OF_LABEL: &str = "example.kerno.dev/mirror-of";
/// The Lease replicas campaign for.
pub const LEASE_NAME: &str = "kerno-example-controller";
/// Our name in `managedFields`.
const FIELD_MANAGER: &str = "kerno-example-controller";

/// What every reconcile gets: here just a kernel client.
pub struct Context {
    /// Authenticated as this plugin.
    pub client: KernelClient,
}

/// Why a reconcile failed; the error policy retries with back-off.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The source has no name or namespace (cannot happen for stored objects).
    #[error("configmap without name or namespace")]
    Unaddressable,
    /// A kernel call failed.
    #[error("kernel: {0}")]
    Kernel(#[from] Error),
}

/// The plugin's work: campaign for the lease, and while holding it run the
/// controller. Returns when the plugin is told to stop.
pub async fn run(ctx: PluginContext) -> anyhow::Result<()> {
    // Read our config section; a missing field falls back to a default.
    let lease_namespace = ctx.config["leaseNamespace"]
        .as_str()
        .unwrap_or("default")
        .to_owned();
    // Each replica needs a unique identity: the plugin name plus the process id.
    let identity = format!("{}-{}", ctx.name, std::process::id());
    // The Lease lives in the kernel; the elector compares-and-swaps it.
    let lease = LeaseApi::new(ctx.client.clone(), &lease_namespace, LEASE_NAME);
    let elector = LeaderElector::new(lease, LeaderConfig::new(identity));
    // A standby is healthy; its health note says it waits for the lease.
    ctx.health.set_serving("standby: waiting for the lease");
    let client = ctx.client.clone();
    let health = ctx.health.clone();
    let shutdown = ctx.shutdown.clone();
    elector
        .run(
            // Called each time we become leader; dropped when we lose the lease.
            || {
                health.set_serving("leading");
                controller(client.clone())
            },
            // Stop campaigning (and release the lease) when the plugin stops.
            async move {
                shutdown.wait().await;
            },
        )
        .await?;
    Ok(())
}

/// Runs the mirror controller until dropped.
pub async fn controller(client: KernelClient) {
    // Watch only labelled ConfigMaps, in every namespace.
    let sources: Api<ConfigMap> = Api::all(client.clone());
    let params = ListParams::default().labels(format!("{MIRROR_LABEL}=true"));
    Controller::new(sources, Arc::new(Context { client }))
        .with_params(params)
        .run(reconcile, error_policy)
        .await;
}

/// Moves the world one step toward "the source has an up-to-date mirror".
pub async fn reconcile(
    source: Arc<ConfigMap>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    // A source being deleted needs nothing: its mirror is owned by it.
    if source.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let desired = desired_mirror(&source).ok_or(ReconcileError::Unaddressable)?;
    let namespace = desired.metadata.namespace.clone().unwrap_or_default();
    let name = desired.metadata.name.clone().unwrap_or_default();
    let mirrors: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &namespace);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    // Read the current mirror (level-based: never trust what we wrote before).
    match mirrors.get_opt(&name).await? {
        // Missing: create it.
        None => {
            mirrors.create(&pp, &desired).await?;
            tracing::info!(mirror = %name, "created mirror");
        }
        // Out of date: replace it, at the revision we read (a concurrent
        // writer makes this fail with Conflict, and we retry).
        Some(current) if needs_update(&current, &desired) => {
            let mut next = desired;
            next.metadata.resource_version = current.metadata.resource_version;
            mirrors.replace(&name, &pp, &next).await?;
            tracing::info!(mirror = %name, "updated mirror");
        }
        // Already right: nothing to do.
        Some(_) => {}
    }
    // Nothing to poll: wake us when the source changes.
    Ok(Action::await_change())
}

/// On failure, retry with the queue's exponential back-off.
pub fn error_policy(
    _source: Arc<ConfigMap>,
    _error: &ReconcileError,
    _ctx: Arc<Context>,
) -> Action {
    Action::backoff()
}

/// The mirror `source` should have; `None` if the source is not addressable.
pub fn desired_mirror(source: &ConfigMap) -> Option<ConfigMap> {
    let name = source.metadata.name.as_deref()?;
    let namespace = source.metadata.namespace.as_deref()?;
    let uid = source.metadata.uid.clone().unwrap_or_default();
    Some(ConfigMap {
        metadata: ObjectMeta {
            name: Some(format!("{name}-mirror")),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                MIRROR_OF_LABEL.to_owned(),
                name.to_owned(),
            )])),
            // Owned by the source: deleting the source deletes the mirror.
            owner_references: (!uid.is_empty()).then(|| {
                vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: name.to_owned(),
                    uid,
                    controller: Some(true),
                    block_owner_deletion: None,
                }]
            }),
            ..ObjectMeta::default()
        },
        data: source.data.clone(),
        binary_data: source.binary_data.clone(),
        immutable: None,
    })
}

/// Whether `current` differs from `desired` in anything we own.
pub fn needs_update(current: &ConfigMap, desired: &ConfigMap) -> bool {
    current.data != desired.data
        || current.binary_data != desired.binary_data
        || current.metadata.labels != desired.metadata.labels
        || current.metadata.owner_references != desired.metadata.owner_references
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(data: &[(&str, &str)]) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("settings".into()),
                namespace: Some("team".into()),
                uid: Some("uid-1".into()),
                labels: Some(BTreeMap::from([(
                    MIRROR_LABEL.to_owned(),
                    "true".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn mirror_copies_data_and_points_at_its_source() {
        let Some(mirror) = desired_mirror(&source(&[("a", "1")])) else {
            panic!("addressable source");
        };
        assert_eq!(mirror.metadata.name.as_deref(), Some("settings-mirror"));
        assert_eq!(mirror.metadata.namespace.as_deref(), Some("team"));
        assert_eq!(mirror.data, source(&[("a", "1")]).data);
        let labels = mirror.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(MIRROR_OF_LABEL).map(String::as_str),
            Some("settings")
        );
        // The mirror must not carry the mirror label, or it would be mirrored too.
        assert!(!labels.contains_key(MIRROR_LABEL));
        let owners = mirror.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].uid, "uid-1");
    }

    #[test]
    fn only_drift_in_owned_fields_needs_an_update() {
        let Some(desired) = desired_mirror(&source(&[("a", "1")])) else {
            panic!("addressable source");
        };
        let mut current = desired.clone();
        current.metadata.resource_version = Some("9".into());
        current.metadata.annotations = Some(BTreeMap::from([("x".to_owned(), "y".to_owned())]));
        assert!(!needs_update(&current, &desired));
        current.data = Some(BTreeMap::from([("a".to_owned(), "2".to_owned())]));
        assert!(needs_update(&current, &desired));
    }

    #[test]
    fn unnamed_source_has_no_mirror() {
        let mut cm = source(&[]);
        cm.metadata.namespace = None;
        assert!(desired_mirror(&cm).is_none());
    }
}
