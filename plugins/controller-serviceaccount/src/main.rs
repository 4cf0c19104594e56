//! `kerno-controller-serviceaccount`: the binary; the logic lives in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kerno_sdk::telemetry::init("kerno-controller-serviceaccount")?;
    kerno_sdk::plugin::PluginBuilder::new("controller", env!("CARGO_PKG_VERSION"))
        .run(kerno_controller_serviceaccount::run)
        .await?;
    Ok(())
}
