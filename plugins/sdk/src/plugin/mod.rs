//! The plugin main: what every kerno plugin does around its own work.
//!
//! [`PluginBuilder::run`] (or [`plugin_main`]):
//! 1. reads the environment the supervisor sets ([`env`]);
//! 2. serves the `kerno.plugin.v1.Plugin` service (health, shutdown) and any
//!    service added with [`PluginBuilder::add_service`] on a unix socket in
//!    `KERNO_PLUGIN_SOCKET_DIR` (`<dir>/<name>.sock`), or on a TCP port of
//!    127.0.0.1 when that variable is unset;
//! 3. prints the handshake line `KERNO_PLUGIN 1 <endpoint>` on stdout (and
//!    nothing else: logs go to stderr);
//! 4. registers with the kernel's `PluginRegistry`, retrying while the kernel
//!    is unreachable, failing on a refusal (no shared protocol version), and
//!    heartbeats at the interval the kernel asked for;
//! 5. runs the plugin's own future with a [`PluginContext`];
//! 6. on SIGTERM, SIGINT or the Shutdown RPC, signals
//!    [`PluginContext::shutdown`], waits up to the grace period for the
//!    future to return, then stops serving and removes the socket.
//!
//! ```no_run
//! use kerno_sdk::plugin::{PluginBuilder, PluginContext};
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let _telemetry = kerno_sdk::telemetry::init("my-plugin")?;
//!     PluginBuilder::new("controller", env!("CARGO_PKG_VERSION"))
//!         .run(|ctx: PluginContext| async move {
//!             ctx.shutdown.wait().await; // a real plugin runs controllers here
//!             Ok::<(), std::convert::Infallible>(())
//!         })
//!         .await?;
//!     Ok(())
//! }
//! ```

pub mod handshake;
mod registration;
mod service;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use kerno_proto::plugin::v1 as pb;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::service::Routes;

pub use handshake::{Handshake, HandshakeError, PluginEndpoint};
pub use service::{HealthReporter, ShutdownSignal};

use crate::client::{ClientConfig, KernelClient};

/// The plugin protocol version this SDK speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Environment variables the kernel's supervisor sets for a plugin.
pub mod env {
    /// `host:port` of the kernel's TLS API.
    pub const KERNEL_ADDR: &str = "KERNO_KERNEL_ADDR";
    /// Path of the PEM file of the CA that signed the kernel's certificate.
    pub const CA_FILE: &str = "KERNO_CA_FILE";
    /// The plugin's bearer token, sent as `authorization: Bearer <token>`.
    pub const TOKEN: &str = "KERNO_TOKEN";
    /// The plugin's name in the cluster.
    pub const PLUGIN_NAME: &str = "KERNO_PLUGIN_NAME";
    /// The plugin's config section, as JSON.
    pub const PLUGIN_CONFIG: &str = "KERNO_PLUGIN_CONFIG";
    /// Directory in which to create the plugin's unix socket.
    pub const PLUGIN_SOCKET_DIR: &str = "KERNO_PLUGIN_SOCKET_DIR";
    /// Optional: a client certificate (PEM file) to authenticate with instead
    /// of a token, for plugins run by hand against a kernel and for tests.
    pub const CLIENT_CERT_FILE: &str = "KERNO_CLIENT_CERT_FILE";
    /// Optional: the key (PEM file) of `KERNO_CLIENT_CERT_FILE`.
    pub const CLIENT_KEY_FILE: &str = "KERNO_CLIENT_KEY_FILE";
    /// Optional: the name to check the kernel's certificate against, when it
    /// is not the host of `KERNO_KERNEL_ADDR` (loopback addresses use `localhost`).
    pub const TLS_SERVER_NAME: &str = "KERNO_TLS_SERVER_NAME";
}

/// Why a plugin could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// A required variable is missing or malformed.
    #[error("environment: {0}")]
    Env(String),
    /// The plugin's socket or port could not be set up.
    #[error("cannot listen on {endpoint}: {source}")]
    Listen {
        /// What it tried.
        endpoint: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The handshake line could not be written.
    #[error("cannot write the handshake line: {0}")]
    Handshake(#[source] std::io::Error),
    /// The kernel client could not be configured.
    #[error("kernel client: {0}")]
    Client(#[from] crate::client::Error),
    /// The kernel refused the registration (for example no shared protocol version).
    #[error("the kernel refused the plugin: {0}")]
    Refused(String),
    /// The plugin's gRPC server failed.
    #[error("grpc server: {0}")]
    Serve(#[source] tonic::transport::Error),
    /// The plugin's own future failed.
    #[error("plugin failed: {0}")]
    Main(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What the supervisor tells a plugin, normally read from [`env`].
#[derive(Clone, Debug, Default)]
pub struct PluginEnv {
    /// The plugin's name.
    pub name: String,
    /// The plugin's config section (`{}` when unset).
    pub config: serde_json::Value,
    /// How to reach the kernel.
    pub client: ClientConfig,
    /// Where to create the unix socket; `None` serves on TCP 127.0.0.1.
    pub socket_dir: Option<PathBuf>,
}

impl PluginEnv {
    /// Reads the variables of [`env`].
    pub fn from_env() -> Result<Self, PluginError> {
        let name = std::env::var(env::PLUGIN_NAME)
            .ok()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| PluginError::Env(format!("{} is not set", env::PLUGIN_NAME)))?;
        let config = match std::env::var(env::PLUGIN_CONFIG) {
            Ok(json) if !json.trim().is_empty() => serde_json::from_str(&json).map_err(|e| {
                PluginError::Env(format!("{} is not valid JSON: {e}", env::PLUGIN_CONFIG))
            })?,
            _ => serde_json::Value::Object(serde_json::Map::new()),
        };
        Ok(Self {
            name,
            config,
            client: ClientConfig::from_env()?,
            socket_dir: std::env::var_os(env::PLUGIN_SOCKET_DIR)
                .filter(|d| !d.is_empty())
                .map(PathBuf::from),
        })
    }
}

/// What a plugin's own future gets.
pub struct PluginContext {
    /// The plugin's name.
    pub name: String,
    /// The plugin's config section.
    pub config: serde_json::Value,
    /// A client of the kernel, authenticated as this plugin.
    pub client: KernelClient,
    /// Completes when the plugin must stop; return soon after.
    pub shutdown: ShutdownSignal,
    /// Where to report health (answered to the kernel's Health calls).
    pub health: HealthReporter,
    /// Where the plugin serves.
    pub endpoint: PluginEndpoint,
}

/// Configures and runs a plugin; see the module docs.
pub struct PluginBuilder {
    kind: String,
    version: String,
    capabilities: Vec<String>,
    admission: Vec<pb::AdmissionHook>,
    env: Option<PluginEnv>,
    routes: Routes,
    handshake_out: Option<Box<dyn Write + Send>>,
    default_grace: Duration,
}

/// Runs a plugin of `kind` at `version` configured from the environment;
/// shorthand for `PluginBuilder::new(kind, version).run(main)`.
pub async fn plugin_main<F, Fut, E>(kind: &str, version: &str, main: F) -> Result<(), PluginError>
where
    F: FnOnce(PluginContext) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    PluginBuilder::new(kind, version).run(main).await
}

impl PluginBuilder {
    /// A plugin of `kind` (for example "controller") at `version`.
    pub fn new(kind: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            version: version.into(),
            capabilities: Vec::new(),
            admission: Vec::new(),
            env: None,
            routes: Routes::default(),
            handshake_out: None,
            default_grace: Duration::from_secs(10),
        }
    }

    /// Announces a capability at registration.
    pub fn capability(mut self, capability: impl Into<String>) -> Self {
        self.capabilities.push(capability.into());
        self
    }

    /// Takes part in admission: serves `kerno.admission.v1.Admission` with
    /// `handler` and declares `hooks` at registration (the kernel calls the
    /// handler for every write a hook's rules match).
    pub fn admission(
        mut self,
        hooks: Vec<crate::admission::Hook>,
        handler: impl crate::admission::AdmissionHandler,
    ) -> Self {
        self.admission
            .extend(hooks.iter().map(crate::admission::Hook::to_proto));
        self.routes = self
            .routes
            .add_service(crate::admission::AdmissionService::new(handler).into_server());
        self
    }

    /// Uses this environment instead of reading the process's (tests,
    /// plugins started by hand).
    pub fn with_env(mut self, env: PluginEnv) -> Self {
        self.env = Some(env);
        self
    }

    /// Serves more gRPC services next to `Plugin` (the service of the
    /// plugin's kind: admission, runtime, network, ...):
    /// `.routes(|r| r.add_service(MyServer::new(my_impl)))`.
    pub fn routes(mut self, add: impl FnOnce(Routes) -> Routes) -> Self {
        self.routes = add(self.routes);
        self
    }

    /// Writes the handshake line here instead of stdout (tests).
    pub fn handshake_to(mut self, out: impl Write + Send + 'static) -> Self {
        self.handshake_out = Some(Box::new(out));
        self
    }

    /// Grace period for SIGTERM/SIGINT (the Shutdown RPC brings its own); default 10 s.
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.default_grace = grace;
        self
    }

    /// Runs the plugin until `main` returns or the plugin is told to stop.
    pub async fn run<F, Fut, E>(self, main: F) -> Result<(), PluginError>
    where
        F: FnOnce(PluginContext) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let env = match self.env {
            Some(env) => env,
            None => PluginEnv::from_env()?,
        };
        let client = KernelClient::connect_lazy(&env.client)?;
        let health = HealthReporter::new();
        let (trigger, shutdown) = service::shutdown_channel();
        let routes = self
            .routes
            .add_service(pb::plugin_server::PluginServer::new(
                service::PluginService {
                    health: health.clone(),
                    shutdown: trigger.clone(),
                },
            ));

        let (endpoint, server) = serve(&env, routes, shutdown.clone()).await?;
        let server = tokio::spawn(server);
        let line = Handshake {
            protocol_version: PROTOCOL_VERSION,
            endpoint: endpoint.clone(),
        };
        let mut out = self
            .handshake_out
            .unwrap_or_else(|| Box::new(std::io::stdout()));
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .map_err(PluginError::Handshake)?;
        tracing::info!(plugin = %env.name, endpoint = %endpoint, "serving");

        let registration = registration::Registration {
            client: client.clone(),
            request: pb::RegisterRequest {
                name: env.name.clone(),
                kind: self.kind,
                version: self.version,
                protocol_versions: vec![PROTOCOL_VERSION],
                capabilities: self.capabilities,
                endpoint: endpoint.to_string(),
                admission: self.admission,
            },
            health: health.clone(),
        };
        let signals = signals(trigger.clone(), self.default_grace);
        let result = async {
            // Registration first: a refused plugin must not start working.
            let heartbeat = tokio::select! {
                r = registration.register() => r?,
                _ = shutdown.wait() => return Ok(()),
            };
            let heartbeats = tokio::spawn(registration.heartbeat(heartbeat));
            let _stop_heartbeats = AbortOnDrop(heartbeats);
            let ctx = PluginContext {
                name: env.name.clone(),
                config: env.config.clone(),
                client,
                shutdown: shutdown.clone(),
                health,
                endpoint: endpoint.clone(),
            };
            let work = main(ctx);
            let mut work = std::pin::pin!(work);
            let outcome = tokio::select! {
                r = &mut work => Some(r),
                _ = shutdown.wait() => None,
            };
            let outcome = match outcome {
                Some(r) => r,
                None => {
                    let grace = shutdown.grace().unwrap_or(self.default_grace);
                    match tokio::time::timeout(grace, &mut work).await {
                        Ok(r) => r,
                        Err(_) => {
                            tracing::warn!(
                                grace_seconds = grace.as_secs(),
                                "plugin work did not stop within the grace period"
                            );
                            Ok(())
                        }
                    }
                }
            };
            outcome.map_err(|e| PluginError::Main(e.into()))
        };
        let result = tokio::select! {
            r = result => r,
            // Signals only trigger the shutdown above; this arm never completes first.
            () = signals => Ok(()),
        };
        trigger.trigger(Duration::ZERO);
        let served = server.await;
        if let PluginEndpoint::Unix(path) = &endpoint {
            let _ = std::fs::remove_file(path);
        }
        result?;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PluginError::Serve(e)),
            Err(_) => Ok(()),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Binds the plugin's socket or port and returns the server future.
async fn serve(
    env: &PluginEnv,
    routes: Routes,
    shutdown: ShutdownSignal,
) -> Result<
    (
        PluginEndpoint,
        impl Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
    ),
    PluginError,
> {
    let server = tonic::transport::Server::builder().add_routes(routes);
    let stop = async move {
        shutdown.wait().await;
    };
    match &env.socket_dir {
        Some(dir) => {
            let path =
                std::path::absolute(dir.join(format!("{}.sock", env.name))).map_err(|source| {
                    PluginError::Listen {
                        endpoint: dir.display().to_string(),
                        source,
                    }
                })?;
            // A socket left by a previous run of this plugin would make bind fail.
            let _ = tokio::fs::remove_file(&path).await;
            let listener =
                tokio::net::UnixListener::bind(&path).map_err(|source| PluginError::Listen {
                    endpoint: path.display().to_string(),
                    source,
                })?;
            let incoming = UnixListenerStream::new(listener);
            Ok((
                PluginEndpoint::Unix(path),
                futures::future::Either::Left(server.serve_with_incoming_shutdown(incoming, stop)),
            ))
        }
        None => {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|source| PluginError::Listen {
                    endpoint: "tcp://127.0.0.1:0".into(),
                    source,
                })?;
            let addr = listener
                .local_addr()
                .map_err(|source| PluginError::Listen {
                    endpoint: "tcp://127.0.0.1:0".into(),
                    source,
                })?;
            let incoming = TcpListenerStream::new(listener);
            Ok((
                PluginEndpoint::Tcp(addr),
                futures::future::Either::Right(server.serve_with_incoming_shutdown(incoming, stop)),
            ))
        }
    }
}

/// The variable in which the supervisor passes its own process id. A plugin
/// whose supervisor dies (`kill -9` of the kernel) stops, rather than live on
/// beside the copy that the restarted kernel starts.
pub const SUPERVISOR_PID_ENV: &str = "KERNO_SUPERVISOR_PID";

/// How often a supervised plugin checks that its supervisor still lives.
const SUPERVISOR_CHECK: Duration = Duration::from_millis(500);

/// Triggers the shutdown on SIGTERM or SIGINT, or when the supervisor is
/// gone; never completes.
async fn signals(trigger: service::ShutdownTrigger, grace: Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; only the Shutdown RPC stops this plugin");
        return futures::future::pending().await;
    };
    let supervisor = std::env::var(SUPERVISOR_PID_ENV)
        .ok()
        .and_then(|pid| pid.parse().ok());
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
        () = supervisor_gone(supervisor) => tracing::warn!("the supervisor is gone: stopping"),
    }
    trigger.trigger(grace);
    futures::future::pending().await
}

/// Completes once this process's parent is no longer `supervisor` (it died
/// and the process was re-parented); never, when there is no supervisor or
/// the parent was never it (the plugin was started some other way).
async fn supervisor_gone(supervisor: Option<u32>) {
    let parent = std::os::unix::process::parent_id;
    match supervisor {
        Some(pid) if parent() == pid => {
            while parent() == pid {
                tokio::time::sleep(SUPERVISOR_CHECK).await;
            }
        }
        _ => futures::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
