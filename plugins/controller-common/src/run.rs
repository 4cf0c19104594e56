//! The plugin main of a controller: run it directly, or only while holding a
//! Lease when the plugin config says `{"leaderElection": true}`.

use std::future::Future;

use kerno_sdk::leader::{LeaderConfig, LeaderElector, LeaseApi};
use kerno_sdk::plugin::PluginContext;

/// Runs `controller` until the plugin is told to stop. With
/// `leaderElection: true` in the config, replicas campaign for the Lease
/// `lease_name` (namespace `leaseNamespace`, default `kube-system`) and only
/// the holder runs it.
pub async fn run_controller<F, Fut>(
    ctx: PluginContext,
    lease_name: &str,
    controller: F,
) -> anyhow::Result<()>
where
    F: Fn(kerno_sdk::KernelClient) -> Fut,
    Fut: Future<Output = ()>,
{
    let leader_election = ctx.config["leaderElection"].as_bool().unwrap_or(false);
    if !leader_election {
        ctx.health.set_serving("running");
        tokio::select! {
            () = controller(ctx.client.clone()) => {}
            _ = ctx.shutdown.wait() => {}
        }
        return Ok(());
    }
    let namespace = ctx.config["leaseNamespace"]
        .as_str()
        .unwrap_or("kube-system")
        .to_owned();
    let identity = format!("{}-{}", ctx.name, std::process::id());
    let lease = LeaseApi::new(ctx.client.clone(), &namespace, lease_name);
    let elector = LeaderElector::new(lease, LeaderConfig::new(identity));
    ctx.health.set_serving("standby: waiting for the lease");
    let client = ctx.client.clone();
    let health = ctx.health.clone();
    let shutdown = ctx.shutdown.clone();
    elector
        .run(
            || {
                health.set_serving("leading");
                controller(client.clone())
            },
            async move {
                shutdown.wait().await;
            },
        )
        .await?;
    Ok(())
}
