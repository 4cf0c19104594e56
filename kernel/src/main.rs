//! `kerno`: the kernel binary. `kerno up` starts the all-in-one control
//! plane; `kerno kernel` runs the kernel alone.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use kerno_kernel::server::{self, KernelOptions, StoreChoice};

#[derive(Parser, Debug)]
#[command(name = "kerno", version, about = "kerno: a Kubernetes-compatible cluster manager built as a microkernel")]
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
        /// Directory for the store, certificates and kubeconfig; a second start
        /// on the same directory keeps all data.
        #[arg(long, default_value = "./kerno-data", env = "KERNO_DATA_DIR")]
        data_dir: PathBuf,
        /// Address of the API (REST and gRPC on one TLS port).
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: SocketAddr,
        /// Cluster config file (YAML); command-line flags override it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the kernel alone, over the embedded store or etcd.
    Kernel {
        /// Directory for the embedded store, certificates and kubeconfig.
        #[arg(long, default_value = "./kerno-data", env = "KERNO_DATA_DIR")]
        data_dir: PathBuf,
        /// Address of the API (REST and gRPC on one TLS port).
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: SocketAddr,
        /// Store backend.
        #[arg(long, value_enum, default_value_t = StoreKind::Embedded)]
        store: StoreKind,
        /// etcd client URLs, comma-separated (with --store etcd).
        #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
        etcd_endpoints: Vec<String>,
        /// Extra DNS names or IPs for the serving certificate, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tls_san: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum StoreKind {
    Embedded,
    Etcd,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let (opts, all_in_one) = match cli.command {
        Command::Up { data_dir, listen, config } => {
            let mut opts = KernelOptions {
                data_dir,
                listen,
                store: StoreChoice::Embedded,
                extra_sans: Vec::new(),
            };
            if let Some(path) = config {
                let config = kerno_kernel::config::Config::load(&path)?;
                config.apply_to(&mut opts);
            }
            (opts, true)
        }
        Command::Kernel { data_dir, listen, store, etcd_endpoints, tls_san } => {
            let store = match store {
                StoreKind::Embedded => StoreChoice::Embedded,
                StoreKind::Etcd => StoreChoice::Etcd(etcd_endpoints),
            };
            (KernelOptions { data_dir, listen, store, extra_sans: tls_san }, false)
        }
    };
    let started = std::time::Instant::now();
    let kernel = server::start(opts.clone()).await.context("starting the kernel")?;
    if all_in_one {
        println!("kerno is up in {:.2?}", started.elapsed());
        println!("  API:        https://{}", kernel.addr);
        println!("  store:      {}", match &opts.store {
            StoreChoice::Embedded => format!("embedded ({})", opts.data_dir.join("store").display()),
            StoreChoice::Etcd(e) => format!("etcd ({})", e.join(",")),
        });
        println!("  kubeconfig: {}", kernel.kubeconfig.display());
        println!("  try:        kubectl --kubeconfig {} get namespaces", kernel.kubeconfig.display());
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
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
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
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
