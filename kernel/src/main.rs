//! `kerno`: the kernel binary. `kerno up` starts the all-in-one control
//! plane; `kerno kernel` runs the kernel alone.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kerno_kernel::config::{Config, Overrides, StoreConfig, StoreKind};
use kerno_kernel::server::{self, KernelOptions, StoreChoice};

#[derive(Parser, Debug)]
#[command(
    name = "kerno",
    version,
    about = "kerno: a Kubernetes-compatible cluster manager built as a microkernel"
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let (common, store, etcd_endpoints, all_in_one) = match cli.command {
        Command::Up { common } => (common, Some(StoreKind::Embedded), Vec::new(), true),
        Command::Kernel {
            common,
            store,
            etcd_endpoints,
        } => (common, store, etcd_endpoints, false),
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
    let started = std::time::Instant::now();
    let kernel = server::start(opts.clone())
        .await
        .context("starting the kernel")?;
    if all_in_one {
        println!("kerno is up in {:.2?}", started.elapsed());
        println!("  API:        https://{}", kernel.addr);
        println!(
            "  store:      {}",
            match &opts.store {
                StoreChoice::Embedded =>
                    format!("embedded ({})", opts.data_dir.join("store").display()),
                StoreChoice::Etcd(e) => format!("etcd ({})", e.join(",")),
            }
        );
        println!("  kubeconfig: {}", kernel.kubeconfig.display());
        println!(
            "  try:        kubectl --kubeconfig {} get namespaces",
            kernel.kubeconfig.display()
        );
    } else {
        println!("kernel listening on https://{}", kernel.addr);
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    kernel.stop();
    Ok(())
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
