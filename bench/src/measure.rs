//! The measurements. Each prints one line per figure.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use hdrhistogram::Histogram;
use kerno_proto::kernel::v1 as pb;
use serde_json::json;

use crate::Args;
use crate::client::{self, core};
use crate::kernel::KernelProcess;

const CONCURRENCY: [usize; 3] = [1, 16, 64];

fn configmap(ns: &str, name: &str, round: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": ns, "labels": { "app": "bench", "round": round.to_string() } },
        "data": { "payload": "x".repeat(200), "round": round.to_string() },
    }))
    .unwrap_or_default()
}

struct Cell {
    ops: usize,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Cell {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, label: &str) {
        println!(
            "{label:<28} {:>9.0} ops/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
            self.rate(),
            self.latency.value_at_quantile(0.5) as f64 / 1000.0,
            self.latency.value_at_quantile(0.99) as f64 / 1000.0,
        );
    }
}

/// Runs `ops` calls of `op(i)` from `concurrency` tasks.
async fn run<F, Fut>(ops: usize, concurrency: usize, op: F) -> Result<Cell>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let op = op.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3)?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ops {
                    return Ok::<_, anyhow::Error>(hist);
                }
                let t = Instant::now();
                op(i).await?;
                hist.record(t.elapsed().as_micros() as u64)?;
            }
        }));
    }
    let mut latency = Histogram::<u64>::new(3)?;
    for task in tasks {
        latency.add(task.await??)?;
    }
    Ok(Cell {
        ops,
        elapsed: started.elapsed(),
        latency,
    })
}

/// Create, update, get and list over gRPC and REST at 1, 16 and 64 clients.
pub async fn throughput(args: &Args, kernel: &KernelProcess) -> Result<()> {
    let grpc = client::grpc(kernel).await?;
    let rest = client::rest(kernel)?;
    let base = format!("https://{}", kernel.addr);
    println!("-- throughput and latency ({} ops per cell)", args.ops);
    for protocol in ["grpc", "rest"] {
        for concurrency in CONCURRENCY {
            let ns = format!("bench-{protocol}-{concurrency}");
            grpc.clone()
                .create(pb::CreateRequest {
                    resource: core("namespaces", "", ""),
                    json: serde_json::to_vec(&json!({ "metadata": { "name": ns } }))?,
                    ..Default::default()
                })
                .await?;
            for verb in ["create", "update", "get", "list"] {
                let ns = ns.clone();
                let grpc = grpc.clone();
                let rest = rest.clone();
                let base = base.clone();
                let ops = args.ops;
                let cell = run(ops, concurrency, move |i| {
                    let (ns, mut grpc, rest, base) =
                        (ns.clone(), grpc.clone(), rest.clone(), base.clone());
                    async move {
                        let name = format!("cm-{}", i % ops);
                        let url = format!("{base}/api/v1/namespaces/{ns}/configmaps");
                        match (protocol, verb) {
                            ("grpc", "create") => {
                                grpc.create(pb::CreateRequest {
                                    resource: core("configmaps", &ns, ""),
                                    json: configmap(&ns, &name, 0),
                                    ..Default::default()
                                })
                                .await?;
                            }
                            ("grpc", "update") => {
                                grpc.update(pb::UpdateRequest {
                                    resource: core("configmaps", &ns, &name),
                                    json: configmap(&ns, &name, 1),
                                    ..Default::default()
                                })
                                .await?;
                            }
                            ("grpc", "get") => {
                                grpc.get(pb::GetRequest {
                                    resource: core("configmaps", &ns, &name),
                                })
                                .await?;
                            }
                            ("grpc", _) => {
                                grpc.list(pb::ListRequest {
                                    resource: core("configmaps", &ns, ""),
                                    limit: 50,
                                    ..Default::default()
                                })
                                .await?;
                            }
                            (_, "create") => {
                                check(
                                    rest.post(url)
                                        .header("Content-Type", "application/json")
                                        .body(configmap(&ns, &name, 0))
                                        .send()
                                        .await?,
                                )
                                .await?;
                            }
                            (_, "update") => {
                                check(
                                    rest.put(format!("{url}/{name}"))
                                        .header("Content-Type", "application/json")
                                        .body(configmap(&ns, &name, 1))
                                        .send()
                                        .await?,
                                )
                                .await?;
                            }
                            (_, "get") => {
                                check(rest.get(format!("{url}/{name}")).send().await?).await?;
                            }
                            _ => {
                                check(rest.get(format!("{url}?limit=50")).send().await?).await?;
                            }
                        }
                        Ok(())
                    }
                })
                .await?;
                cell.print(&format!("{protocol} {verb} c={concurrency}"));
            }
        }
    }
    Ok(())
}

async fn check(response: reqwest::Response) -> Result<()> {
    let status = response.status();
    let body = response.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(())
}

/// The raw etcd put rate at the same concurrencies: the baseline of the
/// etcd backend.
pub async fn raw_etcd(args: &Args, endpoint: &str) -> Result<()> {
    let client = etcd_client::Client::connect([endpoint], None).await?;
    println!("-- raw etcd put (baseline)");
    for concurrency in CONCURRENCY {
        let client = client.clone();
        let cell = run(args.ops, concurrency, move |i| {
            let mut kv = client.kv_client();
            async move {
                kv.put(
                    format!("/raw/{concurrency}/{i}"),
                    configmap("raw", &format!("cm-{i}"), 0),
                    None,
                )
                .await?;
                Ok(())
            }
        })
        .await?;
        cell.print(&format!("etcd put c={concurrency}"));
    }
    println!("   (compare with 'grpc create' above: target >= 70% of the raw rate)");
    Ok(())
}

/// Many watchers on one type; writes to it; events delivered per second.
pub async fn fan_out(args: &Args, kernel: &KernelProcess) -> Result<()> {
    let mut grpc = client::grpc(kernel).await?;
    let ns = "fan";
    grpc.create(pb::CreateRequest {
        resource: core("namespaces", "", ""),
        json: serde_json::to_vec(&json!({ "metadata": { "name": ns } }))?,
        ..Default::default()
    })
    .await?;
    grpc.create(pb::CreateRequest {
        resource: core("configmaps", ns, ""),
        json: configmap(ns, "hot", 0),
        ..Default::default()
    })
    .await?;
    let writes = args.watch_writes;
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut watchers = Vec::new();
    // HTTP/2 limits concurrent streams per connection: 100 watchers a channel.
    let mut channel = client::grpc(kernel).await?;
    for w in 0..args.watchers {
        if w % 100 == 0 {
            channel = client::grpc(kernel).await?;
        }
        let mut stream = channel
            .watch(pb::WatchRequest {
                resource: core("configmaps", ns, ""),
                ..Default::default()
            })
            .await?
            .into_inner();
        let delivered = delivered.clone();
        watchers.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < writes {
                match stream.next().await {
                    Some(Ok(_)) => {
                        seen += 1;
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => break,
                }
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let writer = grpc.clone();
    run(writes, 16, move |i| {
        let mut writer = writer.clone();
        async move {
            writer
                .update(pb::UpdateRequest {
                    resource: core("configmaps", ns, "hot"),
                    json: configmap(ns, "hot", i + 1),
                    ..Default::default()
                })
                .await?;
            Ok(())
        }
    })
    .await?;
    let write_time = started.elapsed();
    report_fan_out(
        "watch fan-out over gRPC",
        args,
        watchers,
        &delivered,
        started,
        write_time,
    )
    .await?;
    Ok(())
}

fn pod(ns: &str, i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": format!("pod-{i}"), "namespace": ns, "labels": { "app": format!("app-{}", i % 100), "tier": "web" } },
        "spec": {
            "containers": [{
                "name": "app", "image": "busybox:1.36",
                "command": ["sh", "-c", "sleep 3600"],
                "ports": [{ "containerPort": 8080 }],
                "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } },
            }],
        },
    }))
    .unwrap_or_default()
}

/// Kernel RSS with many pods stored, against the stored JSON's size.
pub async fn memory(args: &Args, kernel: &KernelProcess) -> Result<()> {
    let mut grpc = client::grpc(kernel).await?;
    let ns = "mem";
    grpc.create(pb::CreateRequest {
        resource: core("namespaces", "", ""),
        json: serde_json::to_vec(&json!({ "metadata": { "name": ns } }))?,
        ..Default::default()
    })
    .await?;
    let rss_before = kernel.rss_bytes()?;
    let writer = grpc.clone();
    let cell = run(args.pods, 64, move |i| {
        let mut writer = writer.clone();
        async move {
            writer
                .create(pb::CreateRequest {
                    resource: core("pods", ns, ""),
                    json: pod(ns, i),
                    ..Default::default()
                })
                .await?;
            Ok(())
        }
    })
    .await?;
    cell.print("grpc create pod c=64");
    // A full paged list fills the watch cache and measures the JSON size.
    let mut json_bytes = 0usize;
    let mut count = 0usize;
    let mut token = String::new();
    loop {
        let page = grpc
            .list(pb::ListRequest {
                resource: core("pods", ns, ""),
                limit: 5000,
                continue_token: token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        count += page.items.len();
        json_bytes += page.items.iter().map(Vec::len).sum::<usize>();
        if page.continue_token.is_empty() {
            break;
        }
        token = page.continue_token;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = kernel.rss_bytes()?;
    println!("-- memory with {count} pods stored");
    println!(
        "kernel RSS {:.1} MiB (idle before: {:.1} MiB); stored JSON {:.1} MiB; RSS / JSON = {:.2} (target <= 2.5)",
        rss as f64 / 1048576.0,
        rss_before as f64 / 1048576.0,
        json_bytes as f64 / 1048576.0,
        rss as f64 / json_bytes as f64
    );
    Ok(())
}

/// The same fan-out inside the kernel process: watchers of the service
/// layer's watch cache, no gRPC encoding or client decoding in the way.
pub async fn fan_out_in_process(args: &Args) -> Result<()> {
    use kerno_kernel::server::{KernelOptions, StoreChoice, start};
    use kerno_kernel::service::{Target, WatchOptions, WriteOptions, write::Part};
    let dir = tempfile::tempdir()?;
    let opts = KernelOptions::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse()?,
        StoreChoice::Embedded,
    );
    let kernel = start(opts).await?;
    let service = kernel.service.clone();
    let rt = service
        .registry()
        .get("", "v1", "configmaps")
        .context("configmaps registered")?;
    let target = Target {
        rt,
        namespace: Some("default".into()),
        name: None,
    };
    let write = WriteOptions {
        field_manager: "bench".into(),
        ..Default::default()
    };
    let hot: serde_json::Value = serde_json::from_slice(&configmap("default", "hot", 0))?;
    service.create(&target, hot, &write).await?;
    let writes = args.watch_writes;
    let delivered = Arc::new(AtomicUsize::new(0));
    let mut watchers = Vec::new();
    for _ in 0..args.watchers {
        let mut watcher = service.watch(&target, &WatchOptions::default()).await?;
        let delivered = delivered.clone();
        watchers.push(tokio::spawn(async move {
            let mut seen = 0;
            while seen < writes {
                match watcher.recv().await {
                    Some(Ok(_)) => {
                        seen += 1;
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => break,
                }
            }
            seen
        }));
    }
    let started = Instant::now();
    let one = Target {
        name: Some("hot".into()),
        ..target.clone()
    };
    let writer = (service.clone(), one, write.clone());
    run(writes, 16, move |i| {
        let (service, one, write) = writer.clone();
        async move {
            let body: serde_json::Value =
                serde_json::from_slice(&configmap("default", "hot", i + 1))?;
            service.update(&one, body, Part::Main, &write).await?;
            Ok(())
        }
    })
    .await?;
    let write_time = started.elapsed();
    report_fan_out(
        "watch fan-out in the kernel process",
        args,
        watchers,
        &delivered,
        started,
        write_time,
    )
    .await?;
    kernel.stop();
    Ok(())
}

/// Waits for every watcher and prints the delivered-events rate.
async fn report_fan_out(
    label: &str,
    args: &Args,
    watchers: Vec<tokio::task::JoinHandle<usize>>,
    delivered: &AtomicUsize,
    started: Instant,
    write_time: Duration,
) -> Result<()> {
    let writes = args.watch_writes;
    let mut complete = 0;
    for w in watchers {
        if tokio::time::timeout(Duration::from_secs(120), w)
            .await
            .context("watchers stalled")??
            == writes
        {
            complete += 1;
        }
    }
    let elapsed = started.elapsed();
    let total = delivered.load(Ordering::Relaxed);
    println!("-- {label}: {} watchers x {writes} writes", args.watchers);
    println!(
        "watch events delivered       {:>9.0} events/s   ({total} events in {:.2?}; writes took {:.2?}; {complete}/{} watchers saw every write)",
        total as f64 / elapsed.as_secs_f64(),
        elapsed,
        write_time,
        args.watchers
    );
    Ok(())
}
