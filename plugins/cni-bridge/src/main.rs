//! `kerno-cni-bridge`: the binary; the logic lives in the library.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr; stdout carries only the handshake line.
    let _telemetry = kerno_sdk::telemetry::init("kerno-cni-bridge")?;
    kerno_cni_bridge::run_from_env().await?;
    Ok(())
}
