//! Starting the kernel: store, registry, service, the TLS listener that
//! serves REST and gRPC on one port, and the admin kubeconfig.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::grpc::KernelApi;
use crate::api::rest::{self, RestState};
use crate::auth::tls::Pki;
use crate::auth::tokens::{BootstrapToken, TokenAuthenticator};
use crate::registry::Registry;
use crate::service::{Service, Target, WriteOptions};
use crate::store::Store;
use crate::store::embedded::EmbeddedStore;
use crate::store::etcd::EtcdStore;

/// Which store backend to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChoice {
    /// The embedded store in `DATA_DIR/store`.
    Embedded,
    /// etcd at these endpoints.
    Etcd(Vec<String>),
}

/// What a kernel needs to start.
#[derive(Clone, Debug)]
pub struct KernelOptions {
    /// Where the store (embedded), certificates and kubeconfig live.
    pub data_dir: PathBuf,
    /// The address to listen on; port 0 picks a free one.
    pub listen: SocketAddr,
    /// The store backend.
    pub store: StoreChoice,
    /// Extra names or IPs for the serving certificate.
    pub extra_sans: Vec<String>,
    /// Events each watch cache keeps for resuming watches; older
    /// resourceVersions get 410 Gone.
    pub watch_cache_window: usize,
    /// How often the store's history is compacted: each run discards the
    /// revisions older than the one seen at the previous run, as the
    /// Kubernetes API server does with etcd.
    pub compaction_interval: Duration,
    /// Bootstrap tokens for plugins started outside the supervisor.
    pub bootstrap_tokens: Vec<BootstrapToken>,
    /// Shared-library admission modules to load, in order.
    pub admission_modules: Vec<PathBuf>,
    /// The static token file (`token,user,uid,"groups"` lines), if any.
    pub token_auth_file: Option<PathBuf>,
    /// Where to append the audit log (JSON lines), if anywhere.
    pub audit_log: Option<PathBuf>,
}

impl KernelOptions {
    /// Options with the defaults for everything but where to keep data.
    pub fn new(data_dir: PathBuf, listen: SocketAddr, store: StoreChoice) -> Self {
        Self {
            data_dir,
            listen,
            store,
            extra_sans: Vec::new(),
            watch_cache_window: crate::watch::CacheConfig::default().window,
            compaction_interval: DEFAULT_COMPACTION_INTERVAL,
            bootstrap_tokens: Vec::new(),
            admission_modules: Vec::new(),
            token_auth_file: None,
            audit_log: None,
        }
    }
}

/// Kubernetes compacts etcd every five minutes.
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(300);

/// Why the kernel could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened.
    #[error("opening the store: {0}")]
    Store(#[from] crate::store::Error),
    /// The data directory or a file in it could not be used.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Certificates or kubeconfig failed.
    #[error("setting up TLS: {0}")]
    Tls(String),
    /// The service layer failed to initialise.
    #[error("initialising the API: {0}")]
    Api(#[from] crate::error::ApiError),
    /// An admission module could not be loaded.
    #[error("{0}")]
    Admission(String),
    /// The token file, the token signing key or the audit log is unusable.
    #[error("{0}")]
    Auth(String),
}

/// A running kernel.
pub struct RunningKernel {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The service layer (for in-process callers such as benchmarks).
    pub service: Arc<Service>,
    /// Certificates.
    pub pki: Arc<Pki>,
    /// Bearer tokens; the plugin supervisor issues plugin tokens here.
    pub tokens: Arc<TokenAuthenticator>,
    server: tokio::task::JoinHandle<()>,
}

impl RunningKernel {
    /// Stops accepting connections.
    pub fn stop(&self) {
        self.server.abort();
    }
}

/// Opens the store, prepares the API and starts serving.
pub async fn start(opts: KernelOptions) -> Result<RunningKernel, StartError> {
    std::fs::create_dir_all(&opts.data_dir).map_err(|source| StartError::Io {
        context: format!("creating the data directory {}", opts.data_dir.display()),
        source,
    })?;
    let store: Arc<dyn Store> = match &opts.store {
        StoreChoice::Embedded => Arc::new(EmbeddedStore::open(&opts.data_dir.join("store")).await?),
        StoreChoice::Etcd(endpoints) => Arc::new(EtcdStore::connect(endpoints).await?),
    };
    let registry = Arc::new(Registry::new());
    crate::registry::builtin::register_builtins(&registry);
    let cache_config = crate::watch::CacheConfig {
        window: opts.watch_cache_window,
        ..Default::default()
    };
    let service = Service::new(store.clone(), registry, cache_config).await?;
    let remote_hooks = Arc::new(crate::admission::remote::RemoteHooks::default());
    service.set_admission(
        admission_chain(&service, &opts.admission_modules, &remote_hooks)
            .map_err(StartError::Admission)?,
    );
    tokio::spawn(compact_periodically(store, opts.compaction_interval));
    ensure_namespaces(&service).await?;
    // RBAC from the first start: the default roles, then the live policy.
    crate::auth::rbac::bootstrap::ensure_default_objects(&service).await?;
    let authorizer = crate::auth::rbac::RbacAuthorizer::start(&service).await?;

    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| StartError::Io {
            context: format!("listening on {}", opts.listen),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Io {
        context: "reading the listen address".into(),
        source,
    })?;
    let mut sans = opts.extra_sans.clone();
    sans.push(addr.ip().to_string());
    let pki = Arc::new(
        Pki::load_or_create(&opts.data_dir, &sans).map_err(|e| StartError::Tls(e.to_string()))?,
    );
    let kubeconfig =
        crate::kubeconfig::write_admin_kubeconfig(&opts.data_dir, &addr.to_string(), &pki)
            .map_err(|e| StartError::Tls(e.to_string()))?;
    let tls = pki
        .server_config()
        .map_err(|e| StartError::Tls(e.to_string()))?;

    let rest_state = Arc::new(RestState {
        service: service.clone(),
        openapi: crate::api::openapi::OpenApiCache::default(),
        authorizer: Some(authorizer.clone()),
    });
    let grpc = tonic::service::Routes::new(
        KernelApi::with_authorizer(service.clone(), authorizer.clone()).into_server(),
    )
    .add_service(
        crate::plugins::registry::PluginRegistryApi::new(service.clone())
            .with_admission(remote_hooks)
            .into_server(),
    )
    .prepare()
    .into_axum_router();
    let rest = rest::router(rest_state);
    let mut tokens = TokenAuthenticator::new(opts.bootstrap_tokens.clone());
    if let Some(file) = &opts.token_auth_file {
        let users =
            crate::auth::token_file::load(file).map_err(|e| StartError::Auth(e.to_string()))?;
        tracing::info!(file = %file.display(), users = users.len(), "static tokens loaded");
        tokens = tokens.with_static_tokens(users);
    }
    let tokens = Arc::new(tokens);
    let signer = Arc::new(
        crate::auth::serviceaccount::TokenSigner::load_or_create(pki.dir())
            .map_err(|e| StartError::Auth(e.to_string()))?,
    );
    service.set_token_signer(signer.clone());
    let audit = match &opts.audit_log {
        Some(path) => Some(
            crate::auth::audit::AuditLog::open(path)
                .map_err(|e| StartError::Auth(e.to_string()))?,
        ),
        None => None,
    };
    let gatekeeper = Arc::new(Gatekeeper {
        tokens: tokens.clone(),
        service_accounts: crate::auth::serviceaccount::Authenticator::new(signer, service.clone()),
        authorizer,
        audit,
    });
    let server = tokio::spawn(serve(
        listener,
        TlsAcceptor::from(tls),
        rest,
        grpc,
        gatekeeper,
    ));
    tracing::info!(%addr, "kernel serving");
    Ok(RunningKernel {
        addr,
        kubeconfig,
        service,
        pki,
        tokens,
        server,
    })
}

/// The admission chain: the built-in modules, then the shared libraries of
/// the config, then the hooks of admission plugins (registered at run time);
/// a library that is missing or refused stops the start.
fn admission_chain(
    service: &Arc<Service>,
    modules: &[PathBuf],
    remote: &Arc<crate::admission::remote::RemoteHooks>,
) -> Result<crate::admission::Chain, String> {
    let mut chain: Vec<Arc<dyn crate::admission::AdmissionModule>> = vec![
        Arc::new(crate::admission::builtin::ServiceAccountDefault),
        Arc::new(crate::admission::namespace_lifecycle::NamespaceLifecycle),
        Arc::new(crate::admission::limit_ranger::LimitRanger::new(service)),
        Arc::new(crate::admission::resource_quota::ResourceQuota::new(
            service,
        )),
    ];
    for path in modules {
        let module = crate::admission::dylib::DylibModule::load(path)
            .map_err(|e| format!("admission module {}: {e}", path.display()))?;
        tracing::info!(module = %path.display(), "admission module loaded");
        chain.push(Arc::new(module));
    }
    chain.extend(remote.modules());
    Ok(crate::admission::Chain::new(chain))
}

/// What every request passes before a router sees it: authentication,
/// REST authorization, and the audit log.
struct Gatekeeper {
    tokens: Arc<TokenAuthenticator>,
    service_accounts: crate::auth::serviceaccount::Authenticator,
    authorizer: Arc<crate::auth::rbac::RbacAuthorizer>,
    audit: Option<crate::auth::audit::AuditLog>,
}

/// Serves REST and gRPC on one listener, split by content type (gRPC
/// requests carry `content-type: application/grpc`).
async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    rest: axum::Router,
    grpc: axum::Router,
    gatekeeper: Arc<Gatekeeper>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let (rest, grpc) = (rest.clone(), grpc.clone());
        let gatekeeper = gatekeeper.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let tls = match acceptor.accept(stream).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            // The certificate was verified against the cluster CA in the handshake.
            let cert = crate::auth::tls::peer_identity(tls.get_ref().1)
                .map(|id| crate::auth::gate::cert_user(&id));
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let router = if is_grpc(&req) {
                        grpc.clone()
                    } else {
                        rest.clone()
                    };
                    serve_request(gatekeeper.clone(), cert.clone(), router, peer, req)
                });
            if let Err(e) = auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// One request: the gate, then the router as the request's user, then the
/// audit line (at the response's headers: metadata only, never a body).
async fn serve_request(
    gatekeeper: Arc<Gatekeeper>,
    cert: Option<crate::auth::user::UserInfo>,
    router: axum::Router,
    peer: SocketAddr,
    mut req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<axum::body::Body>, std::convert::Infallible> {
    let received = chrono::Utc::now();
    let grpc_request = is_grpc(&req);
    let refused = crate::auth::gate::admit(
        &gatekeeper.tokens,
        Some(&gatekeeper.service_accounts),
        &gatekeeper.authorizer,
        cert.as_ref(),
        &mut req,
        grpc_request,
    )
    .await
    .err();
    let record = gatekeeper
        .audit
        .as_ref()
        .map(|_| crate::auth::audit::RequestRecord::new(&req, peer, received, grpc_request));
    let response = match refused {
        Some(response) => *response,
        None => {
            let user = req
                .extensions()
                .get::<crate::auth::user::UserInfo>()
                .cloned()
                .unwrap_or_default();
            let served = router.oneshot(req.map(axum::body::Body::new));
            match crate::auth::user::REQUEST_USER.scope(user, served).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    };
    if let (Some(audit), Some(record)) = (&gatekeeper.audit, record) {
        let grpc_status = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok());
        audit.record(&record.event(response.status().as_u16(), grpc_status));
    }
    Ok(response)
}

fn is_grpc<B>(req: &http::Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// Compacts the store's history every `interval`, up to the revision seen at
/// the previous run: watches can resume across at least one interval.
async fn compact_periodically(store: Arc<dyn Store>, interval: Duration) {
    let mut previous = 0;
    loop {
        tokio::time::sleep(interval).await;
        if previous > 0 {
            match store.compact(previous).await {
                Ok(()) => tracing::debug!(revision = previous, "compacted the store"),
                Err(e) => tracing::warn!(error = %e, revision = previous, "compaction failed"),
            }
        }
        match store.current_revision().await {
            Ok(revision) => previous = revision,
            Err(e) => tracing::warn!(error = %e, "reading the store revision failed"),
        }
    }
}

/// The namespaces that exist from the start.
pub const INITIAL_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

async fn ensure_namespaces(service: &Arc<Service>) -> Result<(), StartError> {
    let rt = service
        .registry()
        .get("", "v1", "namespaces")
        .ok_or_else(|| {
            StartError::Api(crate::error::ApiError::Internal(
                "namespaces are not registered".into(),
            ))
        })?;
    for name in INITIAL_NAMESPACES {
        let target = Target {
            rt: rt.clone(),
            namespace: None,
            name: None,
        };
        let obj = serde_json::json!({ "metadata": { "name": name } });
        let opts = WriteOptions {
            field_manager: "kerno".into(),
            ..Default::default()
        };
        match service.create(&target, obj, &opts).await {
            Ok(_) | Err(crate::error::ApiError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
