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
//!
//! `--only scheduler` runs the `scheduler_perf`-style benchmark instead:
//! kernel + `kerno-node-sim` (`--sim-nodes`, default 5,000) +
//! `kerno-scheduler-default`, `--sched-pods` (default 10,000) pods created
//! at once; `--large` adds the 5,000-node / 50,000-pod shape. Build the two
//! plugin binaries in the same profile first.

mod client;
mod kernel;
mod measure;
mod scheduler_perf;

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
    /// Simulated nodes for `--only scheduler`.
    #[arg(long, default_value_t = 5000)]
    sim_nodes: usize,
    /// Pods created at once for `--only scheduler`.
    #[arg(long, default_value_t = 10_000)]
    sched_pods: usize,
    /// Concurrent pod creators for `--only scheduler`.
    #[arg(long, default_value_t = 64)]
    creators: usize,
    /// Also run the 5,000-node / 50,000-pod shape.
    #[arg(long)]
    large: bool,
    /// Let node-sim move pods to Running during the run (more writes).
    #[arg(long)]
    run_pods: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.only.iter().any(|o| o == "scheduler") {
        let mut shapes = vec![(args.sim_nodes, args.sched_pods)];
        if args.large {
            shapes.push((5000, 50_000));
        }
        for (nodes, pods) in shapes {
            scheduler_perf::run(&scheduler_perf::Shape {
                nodes,
                pods,
                creators: args.creators,
                run_pods: args.run_pods,
            })
            .await?;
        }
        return Ok(());
    }
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
