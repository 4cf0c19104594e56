//! The per-request cost of each admission path: no module, an in-process
//! shared-library module (the C ABI), measured on the kernel's admission
//! chain with a realistic pod. Target (issue 4): an in-process module adds
//! ≤ 20 µs per request.
//!
//! ```sh
//! cargo build --release -p kerno-bench -p kerno-admission-add-label -p kerno-admission-require-image-tag
//! target/release/kerno-bench-admission --requests 100000
//! ```

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use kerno_kernel::admission::dylib::DylibModule;
use kerno_kernel::admission::{AdmissionModule, AdmissionRequest, Chain};

#[derive(Parser)]
#[command(about = "Per-request cost of the admission paths")]
struct Args {
    /// Requests per path.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
}

fn pod_request() -> AdmissionRequest {
    let containers: Vec<_> = (0..3)
        .map(|i| {
            serde_json::json!({
                "name": format!("c{i}"), "image": "registry.local/team/app:1.4.2",
                "command": ["sh", "-c", "exec httpd -f -p 8080"],
                "env": [{"name": "MODE", "value": "prod"}, {"name": "LEVEL", "value": "info"}],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}
            })
        })
        .collect();
    AdmissionRequest {
        operation: "CREATE".into(),
        version: "v1".into(),
        kind: "Pod".into(),
        resource: "pods".into(),
        namespace: "default".into(),
        name: "web-7d9f8".into(),
        user: "alice".into(),
        object: serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-7d9f8", "namespace": "default",
                "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "7d9f8"}},
            "spec": {"containers": containers, "restartPolicy": "Always"}
        }),
        ..AdmissionRequest::default()
    }
}

fn module(lib: &str) -> Result<Arc<dyn AdmissionModule>> {
    let path = std::env::current_exe()?.with_file_name(lib);
    let module = DylibModule::load(&path).with_context(|| {
        format!(
            "{} (build the example modules in the same profile)",
            path.display()
        )
    })?;
    Ok(Arc::new(module))
}

async fn measure(what: &str, chain: &Chain, requests: u64) -> Result<f64> {
    let req = pod_request();
    let mut hist = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    for _ in 0..requests {
        let t = Instant::now();
        let object = chain.admit(req.clone()).await?;
        std::hint::black_box(object);
        hist.record(t.elapsed().as_nanos() as u64)?;
    }
    let mean_us = started.elapsed().as_secs_f64() * 1e6 / requests as f64;
    println!(
        "{what:<40} mean {mean_us:>7.2} µs  p50 {:>7.2} µs  p99 {:>7.2} µs",
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0
    );
    Ok(mean_us)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    println!(
        "admission chain, {} requests per path, a 3-container pod",
        args.requests
    );
    let none = measure("no module", &Chain::default(), args.requests).await?;
    let mutating = Chain::new(vec![module("libkerno_admission_add_label.so")?]);
    let one = measure("in-process module (mutating)", &mutating, args.requests).await?;
    let both = Chain::new(vec![
        module("libkerno_admission_add_label.so")?,
        module("libkerno_admission_require_image_tag.so")?,
    ]);
    let two = measure(
        "in-process modules (mutating+validating)",
        &both,
        args.requests,
    )
    .await?;
    println!(
        "added per request: one module {:.2} µs, two modules {:.2} µs (target <= 20 µs per module)",
        one - none,
        two - none
    );
    Ok(())
}
