//! `kerno-controller-endpoints`: the binary; the logic is in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kerno_sdk::telemetry::init("kerno-controller-endpoints")?;
    kerno_sdk::plugin::PluginBuilder::new("controller", env!("CARGO_PKG_VERSION"))
        .capability("leader-election")
        .run(kerno_controller_endpoints::run)
        .await?;
    Ok(())
}
