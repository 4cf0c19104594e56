//! The built-in plugin set of `kerno up` without a config file: every known
//! default plugin whose binary `kerno-<name>` lies next to `kerno`.

use std::path::Path;

use crate::config::PluginConfig;

/// Plugins `kerno up` runs by default when their binaries exist, in start order.
/// The node agents (`kubelet` with its drivers, or `node-sim`) and `dns` (its
/// listen address and ClusterIP) need per-node settings, so a config file
/// enables them.
pub const DEFAULT_PLUGINS: &[&str] = &[
    "scheduler-default",
    "controller-deployment",
    "controller-replicaset",
    "controller-endpoints",
    "controller-namespace",
    "controller-serviceaccount",
    "controller-gc",
    "controller-job",
    "controller-daemonset",
    "controller-statefulset",
    "controller-node",
    "controller-service",
    "proxy-ipvs",
];

/// The default plugins found in `kerno_dir`; missing ones are logged and skipped.
pub fn discover(kerno_dir: Option<&Path>) -> Vec<PluginConfig> {
    let Some(dir) = kerno_dir else {
        tracing::info!("the kerno binary's directory is unknown; no default plugins");
        return Vec::new();
    };
    DEFAULT_PLUGINS
        .iter()
        .filter_map(|name| {
            let binary = dir.join(format!("kerno-{name}"));
            if binary.is_file() {
                Some(PluginConfig {
                    name: (*name).to_owned(),
                    command: None,
                    enabled: true,
                    config: Default::default(),
                })
            } else {
                tracing::debug!(plugin = name, path = %binary.display(), "default plugin not installed; skipping");
                None
            }
        })
        .collect()
}

/// Adds `node-sim` with `nodes` simulated nodes (`kerno up --sim-nodes N`),
/// or sets the node count of a `node-sim` entry the config already has.
pub fn with_sim_nodes(plugins: &mut Vec<PluginConfig>, nodes: usize) {
    let count = serde_json::Value::from(nodes);
    match plugins.iter_mut().find(|p| p.name == "node-sim") {
        Some(existing) => {
            existing.enabled = true;
            existing.config.insert("nodes".into(), count);
        }
        None => {
            let mut config = serde_json::Map::new();
            config.insert("nodes".into(), count);
            plugins.push(PluginConfig {
                name: "node-sim".into(),
                command: None,
                enabled: true,
                config,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_nodes_add_or_resize_node_sim() {
        let mut plugins = Vec::new();
        with_sim_nodes(&mut plugins, 3);
        assert_eq!(plugins.len(), 1);
        assert_eq!(plugins[0].name, "node-sim");
        assert_eq!(plugins[0].config["nodes"], 3);
        plugins[0].enabled = false;
        plugins[0].config.insert("zones".into(), 2.into());
        with_sim_nodes(&mut plugins, 5);
        assert_eq!(plugins.len(), 1);
        assert!(plugins[0].enabled);
        assert_eq!(plugins[0].config["nodes"], 5);
        assert_eq!(plugins[0].config["zones"], 2);
    }

    #[test]
    fn discovers_only_installed_defaults() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("kerno-scheduler-default"), "")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("kerno-unknown"), "").unwrap_or_else(|e| panic!("{e}"));
        let found: Vec<_> = discover(Some(dir.path()))
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(found, ["scheduler-default"]);
        assert!(discover(None).is_empty());
    }
}
