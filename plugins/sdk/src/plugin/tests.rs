//! The plugin main against an in-process fake kernel serving TLS.

use std::sync::{Arc, Mutex};

use kerno_proto::plugin::v1 as pb;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

use super::*;
use crate::client::bearer_token;

/// Test PKI: a CA and a serving certificate for "localhost".
pub(crate) struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub(crate) fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap_or_else(|e| panic!("ca key: {e}"));
    let mut ca_params =
        CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("ca params: {e}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .unwrap_or_else(|e| panic!("ca cert: {e}"));
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap_or_else(|e| panic!("key: {e}"));
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .and_then(|p| p.signed_by(&key, &issuer))
        .unwrap_or_else(|e| panic!("cert: {e}"));
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// What the fake kernel saw.
#[derive(Default)]
struct Seen {
    registrations: Vec<(pb::RegisterRequest, Option<String>)>,
    heartbeats: Vec<pb::HeartbeatRequest>,
}

#[derive(Clone)]
struct FakeRegistry {
    seen: Arc<Mutex<Seen>>,
    /// Protocol versions this fake kernel speaks.
    speaks: Vec<u32>,
}

#[tonic::async_trait]
impl pb::plugin_registry_server::PluginRegistry for FakeRegistry {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let token = bearer_token(request.metadata()).map(str::to_owned);
        let req = request.into_inner();
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .registrations
            .push((req.clone(), token));
        let Some(version) = req
            .protocol_versions
            .iter()
            .filter(|v| self.speaks.contains(v))
            .max()
        else {
            return Err(Status::failed_precondition(format!(
                "plugin {} speaks protocol versions {:?}, the kernel speaks {:?}",
                req.name, req.protocol_versions, self.speaks
            )));
        };
        Ok(Response::new(pb::RegisterResponse {
            protocol_version: *version,
            heartbeat_interval_seconds: 1,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .heartbeats
            .push(request.into_inner());
        Ok(Response::new(pb::HeartbeatResponse {}))
    }
}

/// Starts the fake kernel; returns its address and what it sees.
async fn fake_kernel(pki: &Pki, speaks: Vec<u32>) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    let registry = FakeRegistry {
        seen: seen.clone(),
        speaks,
    };
    let server = Server::builder()
        .tls_config(
            ServerTlsConfig::new().identity(Identity::from_pem(&pki.cert_pem, &pki.key_pem)),
        )
        .unwrap_or_else(|e| panic!("tls: {e}"))
        .add_service(pb::plugin_registry_server::PluginRegistryServer::new(
            registry,
        ))
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);
    (addr.to_string(), seen)
}

/// Collects what the plugin writes as its handshake.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

fn plugin_env(pki: &Pki, addr: &str, socket_dir: Option<PathBuf>) -> PluginEnv {
    PluginEnv {
        name: "test-plugin".into(),
        config: serde_json::json!({"answer": 42}),
        client: ClientConfig::new(addr)
            .with_ca_pem(pki.ca_pem.clone())
            .with_token("plugin-token"),
        socket_dir,
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_heartbeats_serves_health_and_stops_on_shutdown_rpc() {
    let pki = pki();
    let (addr, seen) = fake_kernel(&pki, vec![1]).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let handshake = Captured::default();
    let (config_tx, config_rx) = tokio::sync::oneshot::channel();
    let plugin = tokio::spawn(
        PluginBuilder::new("controller", "0.1.0")
            .capability("leader-election")
            .with_env(plugin_env(&pki, &addr, Some(dir.path().to_owned())))
            .handshake_to(handshake.clone())
            .run(|ctx: PluginContext| async move {
                let _ = config_tx.send(ctx.config.clone());
                ctx.health.set_serving("all good");
                let grace = ctx.shutdown.wait().await;
                assert_eq!(grace, Duration::from_secs(3));
                Ok::<(), std::convert::Infallible>(())
            }),
    );

    // The handshake names the socket in the socket dir.
    eventually("handshake", || !handshake.text().is_empty()).await;
    let line: Handshake = handshake
        .text()
        .parse()
        .unwrap_or_else(|e| panic!("handshake: {e}"));
    let socket = dir.path().join("test-plugin.sock");
    assert_eq!(line.protocol_version, 1);
    assert_eq!(line.endpoint, PluginEndpoint::Unix(socket.clone()));
    assert!(handshake.text().ends_with('\n'));
    let config = tokio::time::timeout(Duration::from_secs(10), config_rx).await;
    assert!(matches!(config, Ok(Ok(c)) if c["answer"] == 42));

    // Registered with its token and details, then heartbeats.
    eventually("heartbeat", || {
        !seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .heartbeats
            .is_empty()
    })
    .await;
    {
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        let (req, token) = &seen.registrations[0];
        assert_eq!(token.as_deref(), Some("plugin-token"));
        assert_eq!(req.name, "test-plugin");
        assert_eq!(req.kind, "controller");
        assert_eq!(req.protocol_versions, vec![1]);
        assert_eq!(req.capabilities, vec!["leader-election"]);
        assert_eq!(req.endpoint, format!("unix://{}", socket.display()));
        assert_eq!(seen.heartbeats[0].message, "all good");
    }

    // The kernel's view: Health over the unix socket, then Shutdown.
    let channel = tonic::transport::Endpoint::from_static("http://plugin")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .unwrap_or_else(|e| panic!("connect to plugin: {e}"));
    let mut client = pb::plugin_client::PluginClient::new(channel);
    let health = client
        .health(pb::HealthRequest {})
        .await
        .map(|r| r.into_inner());
    assert!(
        matches!(&health, Ok(h) if h.status == pb::health_response::ServingStatus::Serving as i32 && h.message == "all good"),
        "{health:?}"
    );
    let ack = client
        .shutdown(pb::ShutdownRequest { grace_seconds: 3 })
        .await;
    assert!(ack.is_ok());
    let result = tokio::time::timeout(Duration::from_secs(10), plugin).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    // The socket is removed on the way out.
    assert!(!dir.path().join("test-plugin.sock").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kernel_without_a_shared_protocol_version_refuses_the_plugin() {
    let pki = pki();
    let (addr, _seen) = fake_kernel(&pki, vec![7]).await;
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ran2 = ran.clone();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        PluginBuilder::new("controller", "0.1.0")
            .with_env(plugin_env(&pki, &addr, None))
            .handshake_to(Captured::default())
            .run(move |_ctx: PluginContext| async move {
                ran2.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok::<(), std::convert::Infallible>(())
            }),
    )
    .await;
    let Ok(Err(PluginError::Refused(message))) = result else {
        panic!("expected a refusal, got {result:?}");
    };
    assert!(
        message.contains("[1]") && message.contains("[7]"),
        "{message}"
    );
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_waits_for_the_kernel_to_come_up() {
    let pki = pki();
    // Reserve a port, free it, and start the kernel there only later.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        l.local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"))
            .port()
    };
    let addr = format!("127.0.0.1:{port}");
    let handshake = Captured::default();
    let plugin = tokio::spawn(
        PluginBuilder::new("controller", "0.1.0")
            .with_env(plugin_env(&pki, &addr, None))
            .handshake_to(handshake.clone())
            .run(|ctx: PluginContext| async move {
                ctx.shutdown.wait().await;
                Ok::<(), std::convert::Infallible>(())
            }),
    );
    // The handshake comes before registration, so the supervisor is not blocked.
    eventually("handshake", || {
        handshake
            .text()
            .starts_with("KERNO_PLUGIN 1 tcp://127.0.0.1:")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let server = Server::builder()
        .tls_config(
            ServerTlsConfig::new().identity(Identity::from_pem(&pki.cert_pem, &pki.key_pem)),
        )
        .unwrap_or_else(|e| panic!("tls: {e}"))
        .add_service(pb::plugin_registry_server::PluginRegistryServer::new(
            FakeRegistry {
                seen: seen.clone(),
                speaks: vec![1],
            },
        ))
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);
    eventually("registration", || {
        !seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .registrations
            .is_empty()
    })
    .await;
    plugin.abort();
}
