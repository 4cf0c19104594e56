//! `kerno`: the kernel binary. `kerno up` starts the all-in-one control
//! plane; `kerno kernel` runs the kernel alone; `kerno image` manages a
//! node's images.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kerno_kernel::auth::tokens::BootstrapToken;
use kerno_kernel::config::{Config, Overrides, PluginConfig, StoreConfig, StoreKind};
use kerno_kernel::plugins::spawn::SpawnEnv;
use kerno_kernel::plugins::supervisor::{Supervisor, SupervisorTiming};
use kerno_kernel::plugins::{defaults, progress};
use kerno_kernel::server::{self, KernelOptions, StoreChoice};

#[derive(Parser, Debug)]
#[command(
    name = "kerno",
    version,
    about = "kerno: a Kubernetes-compatible cluster manager built as a microkernel",
    // A flag given twice (say by `./dev up --sim-nodes 2` plus the user's
    // own) takes its last value.
    args_override_self = true
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true, env = "KERNO_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the all-in-one control plane (the kernel with the embedded store)
    /// and write an admin kubeconfig to DATA_DIR/kubeconfig.yaml.
    Up {
        #[command(flatten)]
        common: CommonArgs,
        /// Start no plugins unless the config file lists them (by default
        /// `kerno up` runs the default plugins installed next to `kerno`).
        #[arg(long)]
        no_default_plugins: bool,
        /// Also run `node-sim` with this many simulated nodes (pods bound to
        /// them report Running without containers).
        #[arg(long, default_value_t = 0)]
        sim_nodes: usize,
    },
    /// Run the kernel alone, over the embedded store or etcd.
    Kernel {
        #[command(flatten)]
        common: CommonArgs,
        /// Store backend [default: embedded, or the config file's].
        #[arg(long, value_enum)]
        store: Option<StoreKind>,
        /// etcd client URLs, comma-separated; given alone they select the etcd store.
        #[arg(long, value_delimiter = ',')]
        etcd_endpoints: Vec<String>,
    },
    /// Client certificates for users.
    Certs {
        #[command(subcommand)]
        action: CertsAction,
    },
    /// Images on this node, through its runtime driver.
    Image {
        #[command(subcommand)]
        action: ImageAction,
    },
}

#[derive(Subcommand, Debug)]
enum CertsAction {
    /// Sign a client certificate for a user with the cluster's CA and write
    /// a kubeconfig for it (the user can do what RBAC grants it).
    Issue {
        /// The user name (certificate CN).
        #[arg(long)]
        user: String,
        /// A group (certificate O); repeatable, at most two.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The cluster's data directory (its `pki/ca.*` sign the certificate).
        #[arg(long, env = "KERNO_DATA_DIR", default_value = "kerno-data")]
        data_dir: PathBuf,
        /// Where to write the kubeconfig [default: DATA_DIR/users/USER.kubeconfig].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The API URL [default: the admin kubeconfig's].
        #[arg(long)]
        server: Option<String>,
    },
}

fn certs_command(action: CertsAction) -> anyhow::Result<()> {
    let CertsAction::Issue {
        user,
        groups,
        data_dir,
        out,
        server,
    } = action;
    anyhow::ensure!(!user.is_empty(), "--user must not be empty");
    anyhow::ensure!(
        groups.len() <= 2,
        "at most two --group values are supported"
    );
    let server = match server {
        Some(s) => s,
        None => {
            let admin = data_dir.join("kubeconfig.yaml");
            let text = std::fs::read_to_string(&admin)
                .with_context(|| format!("reading {} for the server URL", admin.display()))?;
            let doc: serde_yaml::Value = serde_yaml::from_str(&text)
                .with_context(|| format!("parsing {}", admin.display()))?;
            doc["clusters"][0]["cluster"]["server"]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no server URL in {}", admin.display()))?
        }
    };
    let (ca, cert, key) =
        kerno_kernel::auth::tls::issue_client_cert_with_ca(&data_dir, &user, &groups)
            .context("issuing the certificate")?;
    let out = out.unwrap_or_else(|| {
        data_dir
            .join("users")
            .join(format!("{}.kubeconfig", user.replace([':', '/'], "_")))
    });
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    kerno_kernel::kubeconfig::write_kubeconfig(&out, &server, &ca, &user, &cert, &key)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("{}", out.display());
    Ok(())
}

#[derive(Subcommand, Debug)]
enum ImageAction {
    /// Import an OCI or Docker image archive (`.tar`), for pods with
    /// `imagePullPolicy: IfNotPresent` or `Never`.
    Import {
        /// The archive.
        file: PathBuf,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// List the node's images.
    Ls {
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
}

#[derive(clap::Args, Debug)]
struct RuntimeArgs {
    /// The runtime driver's socket [default: the supervised cri-containerd's,
    /// DATA_DIR/plugins/sockets/cri-containerd.sock].
    #[arg(long)]
    runtime_endpoint: Option<String>,
    /// The data directory of the `kerno up` running this node.
    #[arg(long, env = "KERNO_DATA_DIR", default_value = "kerno-data")]
    data_dir: PathBuf,
}

impl RuntimeArgs {
    fn endpoint(&self) -> String {
        self.runtime_endpoint.clone().unwrap_or_else(|| {
            kerno_kernel::images::default_endpoint(&self.data_dir, "cri-containerd")
        })
    }
}

async fn image_command(action: ImageAction) -> anyhow::Result<()> {
    let print = |images: Vec<kerno_proto::runtime::v1::Image>| {
        println!("{:<60} {:<20} {:>10}", "IMAGE", "ID", "SIZE");
        for image in images {
            let id = image.id.trim_start_matches("sha256:");
            let size = format!("{:.1}MiB", image.size_bytes as f64 / (1024.0 * 1024.0));
            for tag in &image.repo_tags {
                println!("{tag:<60} {:<20} {size:>10}", &id[..id.len().min(12)]);
            }
        }
    };
    match action {
        ImageAction::Import { file, runtime } => {
            let images = kerno_kernel::images::import(&runtime.endpoint(), &file).await?;
            print(images);
        }
        ImageAction::Ls { runtime } => {
            print(kerno_kernel::images::list(&runtime.endpoint()).await?)
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
struct CommonArgs {
    /// Directory for the store, certificates and kubeconfig; a second start on
    /// the same directory keeps all data [default: ./kerno-data].
    #[arg(long, env = "KERNO_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the API, REST and gRPC on one TLS port; port 0 picks a free
    /// one [default: 127.0.0.1:6443].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Cluster config file (YAML, see README); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Extra DNS names or IPs for the serving certificate, comma-separated.
    #[arg(long, value_delimiter = ',')]
    tls_san: Vec<String>,
    /// Events each watch cache keeps so that watches can resume; older
    /// resourceVersions get 410 Gone.
    #[arg(long, default_value_t = 10_000)]
    watch_cache_window: usize,
    /// Seconds between compactions of the store's history (each keeps the
    /// revisions of the last interval).
    #[arg(long, default_value_t = 300)]
    compaction_interval: u64,
    /// A bootstrap token for plugins started outside the supervisor,
    /// `<id>.<secret>[@<RFC 3339 expiry>]`; repeatable.
    #[arg(long = "bootstrap-token")]
    bootstrap_tokens: Vec<String>,
    /// A static token file, Kubernetes' CSV format: `token,user,uid,"group1,group2"`
    /// [default: the config file's kernel.tokenAuthFile].
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Append an audit log of every request (JSON lines, metadata only) to
    /// this file [default: the config file's kernel.auditLog].
    #[arg(long)]
    audit_log: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let (common, store, etcd_endpoints, all_in_one, default_plugins, sim_nodes) = match cli.command
    {
        Command::Up {
            common,
            no_default_plugins,
            sim_nodes,
        } => (
            common,
            Some(StoreKind::Embedded),
            Vec::new(),
            true,
            !no_default_plugins,
            sim_nodes,
        ),
        Command::Kernel {
            common,
            store,
            etcd_endpoints,
        } => (common, store, etcd_endpoints, false, false, 0),
        Command::Image { action } => return image_command(action).await,
        Command::Certs { action } => return certs_command(action),
    };
    let overrides = Overrides {
        data_dir: common.data_dir,
        listen: common.listen,
        store,
        etcd_endpoints,
    };
    let config = Config::resolve(common.config.as_deref(), &overrides)?;
    let mut extra_sans = config.kernel.tls_sans.clone();
    extra_sans.extend(common.tls_san);
    let store = match &config.kernel.store {
        StoreConfig::Embedded(_) => StoreChoice::Embedded,
        StoreConfig::Etcd(etcd) => StoreChoice::Etcd(etcd.endpoints.clone()),
    };
    let mut opts = KernelOptions::new(config.data_dir.clone(), config.kernel.listen, store);
    opts.extra_sans = extra_sans;
    opts.watch_cache_window = common.watch_cache_window.max(1);
    opts.compaction_interval = std::time::Duration::from_secs(common.compaction_interval.max(1));
    opts.admission_modules = config.kernel.admission.modules.clone();
    opts.token_auth_file = common
        .token_auth_file
        .or_else(|| config.kernel.token_auth_file.clone());
    opts.audit_log = common.audit_log.or_else(|| config.kernel.audit_log.clone());
    let mut bootstrap_tokens = config.kernel.bootstrap_tokens.clone();
    bootstrap_tokens.extend(common.bootstrap_tokens);
    opts.bootstrap_tokens = bootstrap_tokens
        .iter()
        .map(|t| t.parse::<BootstrapToken>())
        .collect::<Result<_, _>>()
        .context("--bootstrap-token")?;
    let kerno_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(std::path::Path::to_path_buf));
    // A config file decides the plugins; without one `kerno up` runs the
    // default plugins that are installed.
    let mut plugins = if common.config.is_none() && default_plugins {
        defaults::discover(kerno_dir.as_deref())
    } else {
        config.plugins.clone()
    };
    if sim_nodes > 0 {
        defaults::with_sim_nodes(&mut plugins, sim_nodes);
    }
    let started = std::time::Instant::now();
    let kernel = server::start(opts.clone())
        .await
        .context("starting the kernel")?;
    let supervisor = start_plugins(&kernel, &config, kerno_dir, &plugins)?;
    if all_in_one {
        // The address line comes first: scripts and tests wait for it.
        println!("kerno is up in {:.2?}", started.elapsed());
        println!("  API:        https://{}", kernel.addr);
        let reports = progress::print_progress(
            supervisor.reports(),
            PLUGIN_PROGRESS_PATIENCE,
            &mut std::io::stdout(),
        )
        .await;
        println!(
            "  store:      {}",
            match &opts.store {
                StoreChoice::Embedded =>
                    format!("embedded ({})", opts.data_dir.join("store").display()),
                StoreChoice::Etcd(e) => format!("etcd ({})", e.join(",")),
            }
        );
        println!("  kubeconfig: {}", kernel.kubeconfig.display());
        if reports.is_empty() {
            println!("  plugins:    none");
        } else {
            println!("  plugins:");
            for (name, report) in &reports {
                println!(
                    "    {name:<32} {:<18} restarts: {}",
                    report.phase, report.restarts
                );
            }
        }
        println!(
            "  try:        kubectl --kubeconfig {} get namespaces",
            kernel.kubeconfig.display()
        );
    } else {
        println!("kernel listening on https://{}", kernel.addr);
    }
    shutdown_signal().await;
    tracing::info!("shutting down: stopping plugins");
    supervisor.shutdown().await;
    kernel.stop();
    Ok(())
}

/// How long `kerno up` waits for plugins before printing its summary.
const PLUGIN_PROGRESS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Starts the supervisor for `plugins` against the running kernel.
fn start_plugins(
    kernel: &server::RunningKernel,
    config: &Config,
    kerno_dir: Option<PathBuf>,
    plugins: &[PluginConfig],
) -> anyhow::Result<Supervisor> {
    let data_dir = std::path::absolute(&config.data_dir).context("resolving the data directory")?;
    // Plugins reach a kernel listening on all interfaces over loopback.
    let mut addr = kernel.addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let env = SpawnEnv {
        kernel_addr: addr.to_string(),
        ca_file: kernel.pki.dir().join("ca.crt"),
        socket_dir: data_dir.join("plugins").join("sockets"),
        log_dir: data_dir.join("plugins").join("logs"),
        kerno_dir,
    };
    let timing = SupervisorTiming {
        grace_period: std::time::Duration::from_secs(config.kernel.plugin_grace_period_seconds),
        ..Default::default()
    };
    Ok(Supervisor::start(
        kernel.service.clone(),
        kernel.tokens.clone(),
        env,
        timing,
        plugins,
    ))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
