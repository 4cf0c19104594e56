//! kerno's kernel benchmark, run by hand; it prints figures and ratios.
//!
//! ```text
//! cargo run --release -p kerno-bench -- [--backend embedded|etcd|both] [--ops N] [--pods N] [--watchers N]
//! ```
//!
//! For each backend it starts a real `kerno kernel` process (the binary next
//! to this one) and measures, over gRPC and REST at 1, 16 and 64 concurrent
//! clients: create, update, get and list throughput with p50/p99 latency.
//! Then watch fan-out to many watchers, and the kernel's RSS with many pods
//! stored against their JSON size. With etcd, the raw etcd put rate at the
//! same concurrency is measured in the same run as the baseline.

mod client;
mod kernel;
mod measure;

use clap::Parser;

#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmarks of the kerno kernel")]
pub struct Args {
    /// embedded, etcd or both.
    #[arg(long, default_value = "both")]
    backend: String,
    /// Operations per (verb, concurrency, protocol) cell.
    #[arg(long, default_value_t = 4000)]
    ops: usize,
    /// Pods stored for the memory measurement.
    #[arg(long, default_value_t = 100_000)]
    pods: usize,
    /// Watchers for the fan-out measurement.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Writes observed by every watcher in the fan-out measurement.
    #[arg(long, default_value_t = 2000)]
    watch_writes: usize,
    /// Measurements to run, comma-separated: throughput, fanout (over gRPC,
    /// and inside the kernel process), memory.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "throughput,fanout,memory"
    )]
    only: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backends: Vec<&str> = match args.backend.as_str() {
        "both" => vec!["embedded", "etcd"],
        one => vec![one],
    };
    for backend in backends {
        println!("\n=== backend: {backend} ===");
        let etcd = if backend == "etcd" {
            Some(kerno_kernel::testing::EtcdServer::start().await)
        } else {
            None
        };
        let kernel = kernel::KernelProcess::start(etcd.as_ref().map(|e| e.endpoint()))?;
        let wants = |name: &str| args.only.iter().any(|o| o == name);
        if wants("throughput") {
            measure::throughput(&args, &kernel).await?;
            if let Some(etcd) = &etcd {
                measure::raw_etcd(&args, &etcd.endpoint()).await?;
            }
        }
        if wants("fanout") {
            measure::fan_out(&args, &kernel).await?;
            if backend == "embedded" {
                measure::fan_out_in_process(&args).await?;
            }
        }
        if wants("memory") {
            measure::memory(&args, &kernel).await?;
        }
    }
    Ok(())
}
