//! `kerno-test-plugin`: a plugin for the supervisor's tests whose behaviour
//! its config (`KERNO_PLUGIN_CONFIG`) chooses with `mode`:
//! - `healthy`: an SDK plugin that registers and serves until stopped;
//! - `exit`: exits with status 3 at once;
//! - `garbled`: prints a line that is no handshake, then waits;
//! - `future-protocol`: announces protocol version 99, then waits;
//! - `ignore-sigterm`: serves health by hand, ignores SIGTERM and Shutdown.
//!
//! With `startsFile`, every start appends its Unix time in milliseconds
//! there. With `impersonate` (healthy mode), it registers under that other
//! name with its own token and writes the outcome to `resultFile`.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use kerno_proto::plugin::v1 as pb;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: serde_json::Value = std::env::var("KERNO_PLUGIN_CONFIG")
        .ok()
        .and_then(|c| serde_json::from_str(&c).ok())
        .unwrap_or_default();
    let setting = |key: &str| config.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    if let Some(file) = setting("startsFile") {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)?;
        writeln!(f, "{millis}")?;
    }
    match setting("mode").as_deref().unwrap_or("healthy") {
        "exit" => std::process::exit(3),
        "garbled" => {
            println!("hello, I am not a handshake");
            wait_forever().await
        }
        "future-protocol" => {
            println!("KERNO_PLUGIN 99 unix:///tmp/kerno-test-plugin-future.sock");
            wait_forever().await
        }
        "ignore-sigterm" => ignore_sigterm().await,
        _ => healthy(setting("impersonate"), setting("resultFile")).await,
    }
}

async fn wait_forever() -> anyhow::Result<()> {
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

async fn healthy(impersonate: Option<String>, result_file: Option<String>) -> anyhow::Result<()> {
    kerno_sdk::plugin::PluginBuilder::new("test", "0.0.1")
        .run(move |ctx: kerno_sdk::plugin::PluginContext| async move {
            if let (Some(victim), Some(file)) = (impersonate, result_file) {
                let outcome = match register_as(&victim).await {
                    Ok(()) => "OK".to_owned(),
                    Err(status) => format!("{:?}: {}", status.code(), status.message()),
                };
                std::fs::write(file, outcome)?;
            }
            ctx.shutdown.wait().await;
            Ok::<(), anyhow::Error>(())
        })
        .await?;
    Ok(())
}

/// Registers as `name` with this process's token, as a misbehaving plugin would.
async fn register_as(name: &str) -> Result<(), tonic::Status> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
    let internal = |e: String| tonic::Status::internal(e);
    let addr = std::env::var("KERNO_KERNEL_ADDR").map_err(|e| internal(e.to_string()))?;
    let ca = std::fs::read(std::env::var("KERNO_CA_FILE").map_err(|e| internal(e.to_string()))?)
        .map_err(|e| internal(e.to_string()))?;
    let token = std::env::var("KERNO_TOKEN").map_err(|e| internal(e.to_string()))?;
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .and_then(|e| e.tls_config(tls))
        .map_err(|e| internal(e.to_string()))?
        .connect()
        .await
        .map_err(|e| internal(e.to_string()))?;
    let bearer: tonic::metadata::MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .map_err(|_| internal("bad token".into()))?;
    let mut client = pb::plugin_registry_client::PluginRegistryClient::with_interceptor(
        channel,
        move |mut req: tonic::Request<()>| {
            req.metadata_mut().insert("authorization", bearer.clone());
            Ok(req)
        },
    );
    client
        .register(pb::RegisterRequest {
            name: name.to_owned(),
            kind: "test".into(),
            version: "0.0.1".into(),
            protocol_versions: vec![1],
            capabilities: vec![],
            endpoint: "tcp://127.0.0.1:1".into(),
            ..Default::default()
        })
        .await
        .map(|_| ())
}

/// Serves `Plugin` on loopback TCP but never stops when asked.
struct Stubborn;

#[tonic::async_trait]
impl pb::plugin_server::Plugin for Stubborn {
    async fn health(
        &self,
        _: tonic::Request<pb::HealthRequest>,
    ) -> Result<tonic::Response<pb::HealthResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::HealthResponse {
            status: pb::health_response::ServingStatus::Serving as i32,
            message: String::new(),
        }))
    }

    async fn shutdown(
        &self,
        _: tonic::Request<pb::ShutdownRequest>,
    ) -> Result<tonic::Response<pb::ShutdownResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::ShutdownResponse {}))
    }
}

async fn ignore_sigterm() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        while term.recv().await.is_some() {
            eprintln!("SIGTERM ignored");
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("KERNO_PLUGIN 1 tcp://{addr}");
    tonic::transport::Server::builder()
        .add_service(pb::plugin_server::PluginServer::new(Stubborn))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await?;
    Ok(())
}
