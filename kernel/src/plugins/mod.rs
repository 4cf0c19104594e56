//! The kernel's side of the plugin protocol (`kerno.plugin.v1`). Plugins
//! register here and heartbeat; the kernel keeps one cluster-scoped `Plugin`
//! object (`kerno.dev/v1`) per plugin, so `kubectl get plugins` shows them.
//! The supervisor that starts plugin processes is still to come.

pub mod registry;
