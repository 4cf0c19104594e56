//! Pod start-up on one real node: create → Running observed through a
//! watch, for 1, 10 and 30 pods created at once, next to `ctr run` of the
//! same image on the same containerd in the same run (the floor), and the
//! idle RSS of the kubelet and its drivers.
//!
//! Runs what the node e2e tests run: a kernel, the scheduler, the kubelet,
//! cri-containerd on a private containerd and cni-bridge in a network
//! namespace this program creates (no route leaves it). Needs root,
//! containerd, runc and busybox-static; build first with
//! `cargo build --release -p kerno-kernel -p kerno-kubelet -p kerno-cri-containerd
//! -p kerno-cni-bridge -p kerno-scheduler-default -p kerno-bench`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kerno_tests::containerd::Containerd;
use kerno_tests::netns::TestNetns;
use kerno_tests::node::{node_ready_within, start_node};
use kerno_tests::{Kerno, eventually};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

const NODE: &str = "bench-node";
const POD_CIDR: &str = "10.244.7.0/24";
const IMAGE: &str = "docker.io/library/busybox:latest";

#[derive(Parser)]
#[command(about = "Pod start-up latency on one real node, against `ctr run` as the floor")]
struct Args {
    /// Batch sizes: pods created at once.
    #[arg(long, value_delimiter = ',', default_value = "1,10,30")]
    batches: Vec<usize>,
    /// Rounds per batch size (latencies of all rounds are pooled).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// `ctr run --rm` repetitions for the floor.
    #[arg(long, default_value_t = 10)]
    ctr_runs: usize,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let kerno = Kerno::up().context("kerno up")?;
    let containerd = Containerd::start().context("a private containerd")?;
    let dir = tempfile::Builder::new()
        .prefix("kerno-bench-podstartup-")
        .tempdir()?;
    let ns = TestNetns::create().context("the node's network namespace")?;
    let node = start_node(
        &kerno,
        &containerd,
        dir.path(),
        NODE,
        POD_CIDR,
        "127.0.0.1",
        ns,
    );
    let _scheduler = kerno.spawn_plugin(
        "kerno-scheduler-default",
        "scheduler-default",
        serde_json::json!({}),
    )?;
    let client = kube_client(&kerno).await?;
    if !node_ready_within(&kerno, NODE, Duration::from_secs(60)) {
        bail!("the node never became Ready");
    }

    // Idle: registered, heartbeating, no pods. Let start-up allocations settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("idle RSS (node Ready, no pods):");
    for (name, pid) in [
        ("kernel", kerno.pid()),
        ("kubelet", node.kubelet.pid()),
        ("cri-containerd", node.runtime_driver.pid()),
        ("cni-bridge", node.network.pid()),
    ] {
        match pid.and_then(rss_mib) {
            Some(mib) => println!("  {name:<15} {mib:6.1} MiB"),
            None => println!("  {name:<15} (not running)"),
        }
    }

    let floor = ctr_run_floor(&containerd, &node.containerd_namespace, args.ctr_runs)?;
    println!(
        "ctr run --rm {IMAGE} true, {} runs: p50 {:.0} ms, p99 {:.0} ms",
        args.ctr_runs,
        ms(percentile(&floor, 50.0)),
        ms(percentile(&floor, 99.0))
    );

    let pods: Api<Pod> = Api::namespaced(client, "default");
    println!(
        "create -> Running (observed through a watch), {} rounds each:",
        args.rounds
    );
    println!(
        "  pods at once |    p50 |    p99 |    max | p50 / ctr-run p50 | ctr run -d x N at once: p50, p99"
    );
    for &batch in &args.batches {
        let parallel = ctr_run_parallel(&containerd, &node.containerd_namespace, batch)?;
        let mut latencies = Vec::new();
        for round in 0..args.rounds {
            latencies.extend(start_batch(&pods, batch, round).await?);
            delete_all(&pods).await?;
            // Each round starts from an empty node.
            let cleaned = eventually(Duration::from_secs(60), || {
                let containers = containerd
                    .ids(&node.containerd_namespace, "containers")
                    .ok()?;
                (containers.is_empty() && node.pod_links(&[]).is_empty()).then_some(())
            });
            if cleaned.is_none() {
                bail!("containers or veths were left after deleting the pods");
            }
        }
        let p50 = percentile(&latencies, 50.0);
        println!(
            "  {batch:>12} | {:>4.0} ms | {:>4.0} ms | {:>4.0} ms | {:>16.2}x | {:.0} ms, {:.0} ms",
            ms(p50),
            ms(percentile(&latencies, 99.0)),
            ms(percentile(&latencies, 100.0)),
            p50.as_secs_f64() / percentile(&floor, 50.0).as_secs_f64(),
            ms(percentile(&parallel, 50.0)),
            ms(percentile(&parallel, 99.0)),
        );
    }
    Ok(())
}

/// Creates `batch` pods at once and returns each one's create → Running.
async fn start_batch(pods: &Api<Pod>, batch: usize, round: usize) -> Result<Vec<Duration>> {
    let list = pods.list(&ListParams::default()).await?;
    let version = list.metadata.resource_version.unwrap_or_default();
    let mut events = pods
        .watch(&WatchParams::default().timeout(120), &version)
        .await?
        .boxed();
    let names: Vec<String> = (0..batch)
        .map(|i| format!("start-{batch}-{round}-{i}"))
        .collect();
    let mut created: HashMap<String, Instant> = HashMap::new();
    let creates = names.iter().map(|name| {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "main",
                    "image": "busybox",
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"],
                }],
            },
        }))
        .expect("a valid pod");
        async move {
            let at = Instant::now();
            pods.create(&PostParams::default(), &pod).await.map(|_| at)
        }
    });
    let started = futures::future::try_join_all(creates).await?;
    for (name, at) in names.iter().zip(started) {
        created.insert(name.clone(), at);
    }
    let mut running: HashMap<String, Duration> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while running.len() < batch {
        let next = tokio::time::timeout_at(deadline.into(), events.try_next()).await;
        let event = match next {
            Ok(Ok(Some(event))) => event,
            Ok(Ok(None)) => bail!("the watch ended"),
            Ok(Err(e)) => bail!("watch: {e}"),
            Err(_) => bail!("only {} of {batch} pods reached Running", running.len()),
        };
        let (WatchEvent::Added(pod) | WatchEvent::Modified(pod)) = event else {
            continue;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase == Some("Running")
            && let Some(at) = created.get(&name)
        {
            running.entry(name).or_insert_with(|| at.elapsed());
        }
    }
    Ok(running.into_values().collect())
}

async fn delete_all(pods: &Api<Pod>) -> Result<()> {
    let list = pods.list(&ListParams::default()).await?;
    for pod in list {
        let name = pod.metadata.name.unwrap_or_default();
        pods.delete(&name, &DeleteParams::default().grace_period(0))
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pods.list(&ListParams::default()).await?.items.is_empty() {
        if Instant::now() > deadline {
            bail!("pods were not deleted within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// `ctr run --rm` of the image, `runs` times: create, start, exit, delete.
fn ctr_run_floor(containerd: &Containerd, namespace: &str, runs: usize) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let id = format!("floor-{}-{i}", std::process::id());
        let at = Instant::now();
        containerd
            .ctr(namespace, &["run", "--rm", IMAGE, &id, "true"])
            .with_context(|| format!("ctr run {id}"))?;
        times.push(at.elapsed());
    }
    Ok(times)
}

/// `ctr run -d` of `count` containers at once (each returns once its task
/// started): the machine's own floor for starting that many together.
fn ctr_run_parallel(
    containerd: &Containerd,
    namespace: &str,
    count: usize,
) -> Result<Vec<Duration>> {
    let ids: Vec<String> = (0..count)
        .map(|i| format!("par-{}-{count}-{i}", std::process::id()))
        .collect();
    let times = std::thread::scope(|scope| {
        let runs: Vec<_> = ids
            .iter()
            .map(|id| {
                scope.spawn(move || {
                    let at = Instant::now();
                    containerd
                        .ctr(namespace, &["run", "-d", IMAGE, id, "sleep", "3600"])
                        .map(|_| at.elapsed())
                })
            })
            .collect();
        runs.into_iter()
            .map(|r| {
                r.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("ctr thread panicked")))
            })
            .collect::<Result<Vec<_>>>()
    });
    for id in &ids {
        let _ = containerd.ctr(namespace, &["tasks", "kill", "-s", "SIGKILL", id]);
    }
    for id in &ids {
        let gone = eventually(Duration::from_secs(20), || {
            let _ = containerd.ctr(namespace, &["tasks", "rm", "-f", id]);
            containerd.ctr(namespace, &["containers", "rm", id]).ok()
        });
        if gone.is_none() {
            bail!("container {id} could not be removed");
        }
    }
    times
}

async fn kube_client(kerno: &Kerno) -> Result<kube::Client> {
    let kubeconfig = Kubeconfig::read_from(kerno.kubeconfig())?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Resident memory of a process, from /proc.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn percentile(samples: &[Duration], pct: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
