//! The cost of kerno's process boundary for plugins: informer event latency
//! from a write to the reconcile in a separate plugin process, at a steady
//! write rate, next to the same controller running inside the driver process
//! (the baseline without a process boundary), plus the RSS of the idle plugin.
//!
//! Targets (issue 3): p99 ≤ 5 ms at 1,000 writes/s; idle plugin ≤ 10 MiB RSS.
//!
//! ```sh
//! cargo build --release -p kerno-kernel -p kerno-bench
//! target/release/kerno-bench-boundary --rate 1000 --seconds 10
//! ```

#[path = "../kernel.rs"]
mod kernel;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kerno_sdk::{Action, Api, ClientConfig, Controller, KernelClient, ListParams, PostParams};

use kernel::KernelProcess;

#[derive(Parser)]
#[command(about = "Write-to-reconcile latency across the plugin process boundary")]
struct Args {
    /// Writes per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// How long to write.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// Reconcile times (unix nanos) by `namespace/name`, from one observer.
type Seen = Arc<Mutex<HashMap<String, u128>>>;

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")?;
    Ok(kb * 1024)
}

/// The plugin process; killed on drop.
struct PluginProcess(Child);

impl Drop for PluginProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kerno-bench-plugin` against the kernel and records its reconciles in `seen`.
fn start_plugin(kernel: &KernelProcess, seen: Seen) -> Result<PluginProcess> {
    let bin = std::env::current_exe()?.with_file_name("kerno-bench-plugin");
    let pki = kernel.data_dir.path().join("pki");
    let mut child = Command::new(&bin)
        .env("KERNO_KERNEL_ADDR", &kernel.addr)
        .env("KERNO_CA_FILE", pki.join("ca.crt"))
        .env("KERNO_CLIENT_CERT_FILE", pki.join("admin.crt"))
        .env("KERNO_CLIENT_KEY_FILE", pki.join("admin.key"))
        .env("KERNO_PLUGIN_NAME", "bench-plugin")
        .env("RUST_LOG", "warn")
        .env_remove("KERNO_PLUGIN_SOCKET_DIR")
        .env_remove("KERNO_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {} (build it with the benchmark)", bin.display()))?;
    let stdout = child.stdout.take().context("plugin stdout")?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("KERNO_PLUGIN ") {
                let _ = ready_tx.send(());
            } else if let Some(rest) = line.strip_prefix("R ") {
                let mut parts = rest.split(' ');
                if let (Some(key), Some(Ok(at))) = (parts.next(), parts.next().map(str::parse))
                    && let Ok(mut seen) = seen.lock()
                {
                    seen.entry(key.to_owned()).or_insert(at);
                }
            }
        }
    });
    let plugin = PluginProcess(child);
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .context("the plugin printed no handshake line within 30 s")?;
    Ok(plugin)
}

/// The same controller inside this process: the baseline without a process boundary.
fn start_in_process(client: KernelClient, seen: Seen) {
    let configmaps: Api<ConfigMap> = Api::all(client);
    let controller = Controller::new(configmaps, Arc::new(seen))
        .with_params(ListParams::default().labels("bench.kerno.dev/boundary=true"))
        .run(
            |cm: Arc<ConfigMap>, seen: Arc<Seen>| async move {
                let at = unix_nanos();
                let key = format!(
                    "{}/{}",
                    cm.metadata.namespace.as_deref().unwrap_or_default(),
                    cm.metadata.name.as_deref().unwrap_or_default()
                );
                if let Ok(mut seen) = seen.lock() {
                    seen.entry(key).or_insert(at);
                }
                Ok::<_, std::convert::Infallible>(Action::await_change())
            },
            |_, _, _| Action::backoff(),
        );
    tokio::spawn(controller);
}

fn report(what: &str, writes: &HashMap<String, u128>, seen: &Seen) -> Result<()> {
    let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut hist = Histogram::<u64>::new(3)?;
    let mut missing = 0;
    for (key, written) in writes {
        match seen.get(key) {
            Some(at) => hist.record(at.saturating_sub(*written).max(1) as u64 / 1_000)?,
            None => missing += 1,
        }
    }
    println!(
        "{what:<28} reconciled {:>6}/{:<6} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        hist.len(),
        writes.len(),
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
    );
    if missing > 0 {
        bail!("{what}: {missing} writes were never reconciled");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let kernel = KernelProcess::start(None)?;
    let pki = kernel.data_dir.path().join("pki");
    let config = ClientConfig::new(kernel.addr.clone())
        .with_ca_pem(std::fs::read(pki.join("ca.crt"))?)
        .with_identity(
            std::fs::read(pki.join("admin.crt"))?,
            std::fs::read(pki.join("admin.key"))?,
        );
    let client = KernelClient::connect(&config).await?;

    let plugin_seen: Seen = Arc::default();
    let local_seen: Seen = Arc::default();
    let plugin = start_plugin(&kernel, plugin_seen.clone())?;
    start_in_process(client.clone(), local_seen.clone());
    // Let the plugin register, sync its informer and settle before reading its idle RSS.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = rss_bytes(plugin.0.id())?;

    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let total = args.rate * args.seconds;
    let mut ticker = tokio::time::interval(Duration::from_nanos(1_000_000_000 / args.rate.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    let started = std::time::Instant::now();
    for i in 0..total {
        ticker.tick().await;
        let api = api.clone();
        tasks.spawn(async move {
            let name = format!("boundary-{i}");
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some([("bench.kerno.dev/boundary".into(), "true".into())].into()),
                    ..ObjectMeta::default()
                },
                data: Some([("i".into(), i.to_string())].into()),
                ..ConfigMap::default()
            };
            let at = unix_nanos();
            api.create(&PostParams::default(), &cm).await?;
            Ok::<_, kerno_sdk::Error>((format!("default/{name}"), at))
        });
    }
    let mut writes = HashMap::new();
    while let Some(done) = tasks.join_next().await {
        let (key, at) = done??;
        writes.insert(key, at);
    }
    let elapsed = started.elapsed();
    // Give the last events time to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded_rss = rss_bytes(plugin.0.id())?;

    println!(
        "plugin boundary: {} writes in {:.2} s ({:.0} writes/s asked {}), one kernel (embedded store)",
        writes.len(),
        elapsed.as_secs_f64(),
        writes.len() as f64 / elapsed.as_secs_f64(),
        args.rate
    );
    report("in-process controller", &writes, &local_seen)?;
    report("plugin process controller", &writes, &plugin_seen)?;
    println!(
        "plugin RSS: idle {:.1} MiB (target <= 10 MiB), after {} objects {:.1} MiB",
        idle_rss as f64 / 1048576.0,
        writes.len(),
        loaded_rss as f64 / 1048576.0
    );
    println!(
        "kernel RSS: {:.1} MiB",
        kernel.rss_bytes()? as f64 / 1048576.0
    );
    drop(plugin);
    Ok(())
}
