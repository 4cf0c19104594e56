//! The kernel's side of plugins: the `kerno.plugin.v1` registry plugins
//! register with (one cluster-scoped `Plugin` object, `kerno.dev/v1`, per
//! plugin, so `kubectl get plugins` shows them), and the supervisor that
//! starts, watches, restarts and stops plugin processes.

pub mod defaults;
pub mod health;
pub mod progress;
pub mod registry;
pub mod spawn;
pub mod status;
pub mod supervisor;
