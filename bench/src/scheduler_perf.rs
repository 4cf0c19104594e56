//! `scheduler_perf`-style: a real kernel (embedded store), `kerno-node-sim`
//! with thousands of nodes and `kerno-scheduler-default`, all separate
//! processes; pods created at once by concurrent creators; create → bound
//! observed through a watch.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use hdrhistogram::Histogram;
use kerno_proto::kernel::v1 as pb;
use serde_json::{Value, json};

use crate::client::{self, core};
use crate::kernel::KernelProcess;

/// A plugin process started like the supervisor would, killed on drop.
struct Plugin(Child);

impl Plugin {
    fn start(kernel: &KernelProcess, binary: &str, name: &str, config: &Value) -> Result<Self> {
        let bin = std::env::current_exe()?.with_file_name(binary);
        let pki = kernel.data_dir.path().join("pki");
        let child = Command::new(&bin)
            .env("KERNO_KERNEL_ADDR", &kernel.addr)
            .env("KERNO_CA_FILE", pki.join("ca.crt"))
            .env("KERNO_CLIENT_CERT_FILE", pki.join("admin.crt"))
            .env("KERNO_CLIENT_KEY_FILE", pki.join("admin.key"))
            .env("KERNO_PLUGIN_NAME", name)
            .env("KERNO_PLUGIN_CONFIG", config.to_string())
            .env_remove("KERNO_PLUGIN_SOCKET_DIR")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} (build it with the benchmark)", bin.display()))?;
        Ok(Self(child))
    }

    fn rss_bytes(&self) -> u64 {
        rss_of(self.0.id())
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The shape of one run.
pub struct Shape {
    /// Simulated nodes.
    pub nodes: usize,
    /// Pods created at once.
    pub pods: usize,
    /// Concurrent creators.
    pub creators: usize,
    /// Whether node-sim also moves pods to Running (extra status writes).
    pub run_pods: bool,
}

async fn count(
    grpc: &mut pb::kernel_client::KernelClient<tonic::transport::Channel>,
    plural: &str,
    ns: &str,
) -> Result<usize> {
    let list = grpc
        .list(pb::ListRequest {
            resource: core(plural, ns, ""),
            ..Default::default()
        })
        .await?
        .into_inner();
    Ok(list.items.len())
}

/// Runs one shape against a fresh kernel and prints the figures.
pub async fn run(shape: &Shape) -> Result<()> {
    println!(
        "\n=== scheduler_perf: {} nodes, {} pods, {} creators ===",
        shape.nodes, shape.pods, shape.creators
    );
    let kernel = KernelProcess::start(None)?;
    let mut grpc = client::grpc(&kernel).await?;
    let started = Instant::now();
    let sim = Plugin::start(
        &kernel,
        "kerno-node-sim",
        "node-sim",
        &json!({ "nodes": shape.nodes, "cpu": "32", "memory": "256Gi", "pods": 110,
                 "zones": 3, "runPods": shape.run_pods, "concurrency": 128 }),
    )?;
    loop {
        let n = count(&mut grpc, "nodes", "").await?;
        if n >= shape.nodes {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("only {n}/{} nodes registered", shape.nodes);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("nodes registered in {:.1?}", started.elapsed());
    let scheduler = Plugin::start(&kernel, "kerno-scheduler-default", "scheduler", &json!({}))?;
    let ns = "perf";
    grpc.create(pb::CreateRequest {
        resource: core("namespaces", "", ""),
        json: serde_json::to_vec(&json!({ "metadata": { "name": ns } }))?,
        ..Default::default()
    })
    .await?;
    // Bound times, by pod name, from a watch opened before any pod exists.
    let bound: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut stream = grpc
        .watch(pb::WatchRequest {
            resource: core("pods", ns, ""),
            ..Default::default()
        })
        .await?
        .into_inner();
    let seen = bound.clone();
    let watcher = tokio::spawn(async move {
        while let Some(Ok(event)) = stream.next().await {
            let Ok(pod) = serde_json::from_slice::<Value>(&event.object) else {
                continue;
            };
            let node = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if node.is_empty() {
                continue;
            }
            let name = pod
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name)
                .or_insert_with(Instant::now);
        }
    });
    // Warm-up: one pod bound proves the scheduler's caches are synced.
    create_pod(&mut grpc, ns, "warmup").await?;
    let warm = Instant::now();
    while !bound
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains_key("warmup")
    {
        if warm.elapsed() > Duration::from_secs(120) {
            bail!("the scheduler did not bind the warm-up pod");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_before = (kernel.rss_bytes()?, sim.rss_bytes(), scheduler.rss_bytes());
    // All pods at once, from concurrent creators.
    let created: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let begin = Instant::now();
    let creators: Vec<_> = (0..shape.creators)
        .map(|c| {
            let mut grpc = grpc.clone();
            let created = created.clone();
            let (pods, creators) = (shape.pods, shape.creators);
            tokio::spawn(async move {
                let mut i = c;
                while i < pods {
                    let name = format!("pod-{i}");
                    let t = Instant::now();
                    create_pod(&mut grpc, ns, &name).await?;
                    created
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(name, t);
                    i += creators;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for c in creators {
        c.await??;
    }
    let create_elapsed = begin.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n = bound.lock().unwrap_or_else(|e| e.into_inner()).len() - 1;
        if n >= shape.pods {
            break;
        }
        if Instant::now() > deadline {
            println!("timed out: {n}/{} pods bound", shape.pods);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    watcher.abort();
    let bound = bound.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let created = created.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut latency = Histogram::<u64>::new(3)?;
    let mut last = begin;
    for (name, t0) in &created {
        if let Some(t1) = bound.get(name) {
            latency.record(t1.saturating_duration_since(*t0).as_micros() as u64)?;
            last = last.max(*t1);
        }
    }
    let total = last.duration_since(begin);
    let n = latency.len();
    println!(
        "created {} pods in {:.2?} ({:.0} creates/s)",
        shape.pods,
        create_elapsed,
        shape.pods as f64 / create_elapsed.as_secs_f64()
    );
    println!(
        "scheduled {n} pods in {:.2?}: {:.0} pods/s (create -> bound, end to end)",
        total,
        n as f64 / total.as_secs_f64()
    );
    println!(
        "create -> bound latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0
    );
    println!(
        "RSS before -> after: kernel {:.0} -> {:.0} MiB, node-sim {:.0} -> {:.0} MiB, scheduler {:.0} -> {:.0} MiB",
        mib(rss_before.0),
        mib(kernel.rss_bytes()?),
        mib(rss_before.1),
        mib(sim.rss_bytes()),
        mib(rss_before.2),
        mib(scheduler.rss_bytes())
    );
    Ok(())
}

async fn create_pod(
    grpc: &mut pb::kernel_client::KernelClient<tonic::transport::Channel>,
    ns: &str,
    name: &str,
) -> Result<()> {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": ns, "labels": { "app": "perf" } },
        "spec": { "containers": [{ "name": "c", "image": "busybox",
            "resources": { "requests": { "cpu": "100m", "memory": "128Mi" } } }] },
    });
    grpc.create(pb::CreateRequest {
        resource: core("pods", ns, ""),
        json: serde_json::to_vec(&pod)?,
        ..Default::default()
    })
    .await?;
    Ok(())
}
