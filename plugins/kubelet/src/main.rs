//! `kerno-kubelet`: the binary; the logic lives in the library.

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let _telemetry = kerno_sdk::telemetry::init("kerno-kubelet")?;
    kerno_sdk::plugin::PluginBuilder::new("node-agent", env!("CARGO_PKG_VERSION"))
        .capability("pods")
        .capability("container-logs")
        .run(kerno_kubelet::run)
        .await?;
    Ok(())
}
