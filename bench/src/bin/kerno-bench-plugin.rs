//! The plugin side of the process-boundary benchmark (`kerno-bench-boundary`):
//! a real SDK plugin (handshake, registration, heartbeat) whose controller
//! reconciles ConfigMaps labelled `bench.kerno.dev/boundary=true` and prints
//! `R <namespace>/<name> <unix nanos>` on stdout for each reconcile, so the
//! driver can match each write to its reconcile.

use std::io::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ConfigMap;
use kerno_sdk::plugin::{PluginBuilder, PluginContext};
use kerno_sdk::{Action, Api, Controller, ListParams};

/// The label of the ConfigMaps the benchmark writes.
const LABEL: &str = "bench.kerno.dev/boundary=true";

async fn reconcile(cm: Arc<ConfigMap>, _ctx: Arc<()>) -> Result<Action, std::io::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let ns = cm.metadata.namespace.as_deref().unwrap_or_default();
    let name = cm.metadata.name.as_deref().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    writeln!(out, "R {ns}/{name} {now}")?;
    out.flush()?;
    Ok(Action::await_change())
}

async fn run(ctx: PluginContext) -> anyhow::Result<()> {
    let configmaps: Api<ConfigMap> = Api::all(ctx.client.clone());
    let controller = Controller::new(configmaps, Arc::new(()))
        .with_params(ListParams::default().labels(LABEL))
        .run(reconcile, |_, _, _| Action::backoff());
    tokio::select! {
        () = controller => {}
        _ = ctx.shutdown.wait() => {}
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kerno_sdk::telemetry::init("kerno-bench-plugin")?;
    PluginBuilder::new("controller", env!("CARGO_PKG_VERSION"))
        .run(run)
        .await?;
    Ok(())
}
