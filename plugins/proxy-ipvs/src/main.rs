//! `kerno-proxy-ipvs`: the binary; the logic is in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kerno_sdk::telemetry::init("kerno-proxy-ipvs")?;
    // The Plugin object's capabilities say which datapath serves and why.
    let (datapath, reason) =
        kerno_proxy_ipvs::datapath::choose(kerno_proxy_ipvs::ip_vs_available(), None);
    kerno_sdk::plugin::PluginBuilder::new("proxy", env!("CARGO_PKG_VERSION"))
        .capability(format!("datapath={datapath}"))
        .capability(format!("datapath-reason={reason}"))
        .run(kerno_proxy_ipvs::run)
        .await?;
    Ok(())
}
