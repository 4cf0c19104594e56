//! `kerno-proxy-ipvs`: the binary; the logic is in the library.

use kerno_sdk::plugin::{PluginBuilder, PluginEnv};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kerno_sdk::telemetry::init("kerno-proxy-ipvs")?;
    let env = PluginEnv::from_env()?;
    // The Plugin object's capabilities say which datapath serves and why.
    let (datapath, reason) = kerno_proxy_ipvs::datapath::choose(
        kerno_proxy_ipvs::ip_vs_available(),
        env.config["datapath"].as_str(),
    )
    .map_err(anyhow::Error::msg)?;
    PluginBuilder::new("proxy", env!("CARGO_PKG_VERSION"))
        .with_env(env)
        .capability(format!("datapath={datapath}"))
        .capability(format!("datapath-reason={reason}"))
        .run(kerno_proxy_ipvs::run)
        .await?;
    Ok(())
}
