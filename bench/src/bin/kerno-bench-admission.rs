//! The per-request cost of each admission path: no module, an in-process
//! shared-library module (the C ABI), and an admission plugin over gRPC (an
//! SDK `AdmissionHandler` served on a unix socket by its own thread and
//! runtime, as a plugin process would), measured on the kernel's admission
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
use kerno_kernel::admission::remote::{RemoteHooks, hooks_from_registration};
use kerno_kernel::admission::{AdmissionModule, AdmissionRequest, Chain};
use kerno_sdk::admission::{AdmissionHandler, AdmissionService, Hook, Review, Verdict};

#[derive(Parser)]
#[command(about = "Per-request cost of the admission paths")]
struct Args {
    /// Requests per path.
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// Requests per gRPC path (each is a round trip; default: requests / 10).
    #[arg(long)]
    grpc_requests: Option<u64>,
}

/// The plugin side: the same work as the two example modules.
struct PluginHooks;

#[kerno_sdk::async_trait]
impl AdmissionHandler for PluginHooks {
    async fn review(&self, review: Review) -> Verdict {
        if review.hook == "add-label" {
            let mut pod = review.object;
            pod["metadata"]["labels"]["kerno.dev/admitted-by"] = serde_json::json!("grpc");
            return Verdict::mutate(&pod);
        }
        let untagged = review.object["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| !c["image"].as_str().unwrap_or_default().contains(':'));
        if untagged {
            Verdict::deny("an image without a tag")
        } else {
            Verdict::allow()
        }
    }
}

/// Serves the plugin's Admission service on a unix socket in its own thread
/// and runtime; returns the socket's endpoint.
fn serve_plugin(dir: &std::path::Path) -> Result<String> {
    let path = dir.join("bench-admission.sock");
    let std_listener = std::os::unix::net::UnixListener::bind(&path)?;
    std_listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let Ok(rt) = rt else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::UnixListener::from_std(std_listener) else {
                return;
            };
            let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
            let served = tonic::transport::Server::builder()
                .add_service(AdmissionService::new(PluginHooks).into_server())
                .serve_with_incoming(incoming)
                .await;
            if let Err(e) = served {
                eprintln!("plugin server: {e}");
            }
        });
    });
    Ok(format!("unix://{}", path.display()))
}

fn plugin_chain(endpoint: &str, validating: bool) -> Result<Chain> {
    let mut hooks = vec![
        Hook::mutating("add-label")
            .on(&["CREATE"], &[""], &["pods"])
            .to_proto(),
    ];
    if validating {
        hooks.push(
            Hook::validating("require-image-tag")
                .on(&["CREATE"], &[""], &["pods"])
                .to_proto(),
        );
    }
    let remote = Arc::new(RemoteHooks::default());
    remote.set("bench", hooks_from_registration("bench", endpoint, &hooks)?);
    Ok(Chain::new(remote.modules().to_vec()))
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

    let dir = tempfile::tempdir()?;
    let endpoint = serve_plugin(dir.path())?;
    let grpc_requests = args.grpc_requests.unwrap_or(args.requests / 10).max(1);
    let mutating = plugin_chain(&endpoint, false)?;
    // A first call connects; the figures are for a warm connection.
    mutating.admit(pod_request()).await?;
    let grpc_one = measure("gRPC plugin (mutating hook)", &mutating, grpc_requests).await?;
    let both = plugin_chain(&endpoint, true)?;
    both.admit(pod_request()).await?;
    let grpc_two = measure(
        "gRPC plugin (mutating+validating hooks)",
        &both,
        grpc_requests,
    )
    .await?;
    println!(
        "added per request: one gRPC hook {:.2} µs, two gRPC hooks {:.2} µs ({grpc_requests} requests each, unix socket)",
        grpc_one - none,
        grpc_two - none
    );
    Ok(())
}
