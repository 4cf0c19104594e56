//! `kerno-scheduler-default`: the binary; the logic is in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kerno_sdk::telemetry::init("kerno-scheduler-default")?;
    kerno_sdk::plugin::PluginBuilder::new("scheduler", env!("CARGO_PKG_VERSION"))
        .run(kerno_scheduler_default::run)
        .await?;
    Ok(())
}
