//! `kerno-dns`: the binary; the logic is in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kerno_sdk::telemetry::init("kerno-dns")?;
    kerno_sdk::plugin::PluginBuilder::new("dns", env!("CARGO_PKG_VERSION"))
        .run(kerno_dns::run)
        .await?;
    Ok(())
}
