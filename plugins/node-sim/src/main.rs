//! `kerno-node-sim`: the binary; the logic is in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kerno_sdk::telemetry::init("kerno-node-sim")?;
    kerno_sdk::plugin::PluginBuilder::new("node-sim", env!("CARGO_PKG_VERSION"))
        .run(kerno_node_sim::run)
        .await?;
    Ok(())
}
