//! `kerno-example-controller`: the binary. All logic lives in the library so
//! tests can drive it in-process; see `lib.rs` for the line-by-line tour.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr (stdout carries only the handshake line), OTLP export
    // when OTEL_EXPORTER_OTLP_ENDPOINT is set. Keep the guard alive until exit.
    let _telemetry = kerno_sdk::telemetry::init("kerno-example-controller")?;
    // Serve health/shutdown, print the handshake, register, heartbeat, and run
    // our controller until SIGTERM or the kernel's Shutdown call.
    kerno_sdk::plugin::PluginBuilder::new("controller", env!("CARGO_PKG_VERSION"))
        .capability("leader-election")
        .run(kerno_example_controller::run)
        .await?;
    Ok(())
}
