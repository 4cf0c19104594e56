//! OTLP export end to end: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, the
//! example's reconcile spans, with the object's reference, reach a collector.

mod harness;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use harness::{Kernel, eventually};
use k8s_openapi::api::core::v1::ConfigMap;
use kerno_example_controller::MIRROR_LABEL;
use kerno_sdk::{Api, KernelClient, PostParams};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// Spans received, as "name key=value ...".
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<String>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for resource in &request.get_ref().resource_spans {
            for scope in &resource.scope_spans {
                for span in &scope.spans {
                    let mut line = span.name.clone();
                    for attr in &span.attributes {
                        if let Some(Value::StringValue(v)) =
                            attr.value.as_ref().and_then(|v| v.value.as_ref())
                        {
                            line.push_str(&format!(" {}={v}", attr.key));
                        }
                    }
                    seen.push(line);
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_spans_are_exported_over_otlp() -> Result<()> {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let otlp_addr = listener.local_addr()?;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let kernel = Kernel::up()?;
    let logs = tempfile::tempdir()?;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kerno-example-controller"));
    kernel.plugin_env(&mut cmd, "traced");
    let mut child = cmd
        .env("RUST_LOG", "info")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp_addr}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(logs.path().join("traced.log"))?)
        .spawn()
        .context("spawning the example")?;

    let client = KernelClient::connect(&kernel.client_config()?).await?;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut source = ConfigMap::default();
    source.metadata.name = Some("traced".into());
    source.metadata.labels = Some(BTreeMap::from([(
        MIRROR_LABEL.to_owned(),
        "true".to_owned(),
    )]));
    cms.create(&PostParams::default(), &source).await?;
    let waited = eventually("the mirror", Duration::from_secs(30), || {
        let cms = cms.clone();
        async move { cms.get_opt("traced-mirror").await.ok().flatten() }
    })
    .await;

    // SIGTERM: the plugin stops and flushes its spans on the way out.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let exported = eventually("exported spans", Duration::from_secs(20), || {
        let spans = collector
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        async move {
            spans
                .iter()
                .any(|s| s.starts_with("reconcile "))
                .then_some(spans)
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    waited?;
    let spans = exported?;
    assert!(
        spans
            .iter()
            .any(|s| s.starts_with("reconcile ") && s.contains("object.ref=default/traced")),
        "{spans:?}"
    );
    Ok(())
}
