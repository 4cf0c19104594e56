//! The `kerno-cri-containerd` binary: the plugin, `import`, and the
//! `log-writer` mode containerd's shim runs.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kerno_cri_containerd::{Config, Runtime, service::RuntimeService};
use kerno_sdk::plugin::{PluginBuilder, PluginContext};

#[derive(Parser)]
#[command(version, about = "kerno's containerd runtime driver")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Imports an OCI or Docker image archive into a containerd namespace.
    Import {
        /// containerd's socket.
        #[arg(long, default_value = "/run/containerd/containerd.sock")]
        address: PathBuf,
        /// The containerd namespace (one per node).
        #[arg(long, default_value = "kerno")]
        namespace: String,
        /// The archive.
        file: PathBuf,
    },
    /// Run by containerd's shim: writes a container's output as a CRI log.
    #[command(name = "log-writer", hide = true)]
    LogWriter {
        /// The log file.
        path: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::LogWriter { path }) => Ok(kerno_cri_containerd::logs::run_log_writer(&path)?),
        Some(Command::Import {
            address,
            namespace,
            file,
        }) => tokio::runtime::Runtime::new()?.block_on(async move {
            let cd = kerno_cri_containerd::backend::Containerd::new(address, namespace)?;
            for image in cd.import_archive(&file).await? {
                println!("{} {}", image.id, image.repo_tags.join(","));
            }
            Ok(())
        }),
        None => tokio::runtime::Runtime::new()?.block_on(serve()),
    }
}

async fn serve() -> anyhow::Result<()> {
    let _telemetry = kerno_sdk::telemetry::init("kerno-cri-containerd")?;
    let env = kerno_sdk::plugin::PluginEnv::from_env()?;
    let config: Config = serde_json::from_value(env.config.clone())
        .map_err(|e| anyhow::anyhow!("invalid config of plugin {}: {e}", env.name))?;
    let runtime = Runtime::new(&config)?;
    let service = RuntimeService::new(runtime).into_server();
    PluginBuilder::new("runtime", env!("CARGO_PKG_VERSION"))
        .with_env(env)
        .routes(|r| r.add_service(service))
        .run(|ctx: PluginContext| async move {
            ctx.shutdown.wait().await;
            Ok::<(), std::convert::Infallible>(())
        })
        .await?;
    Ok(())
}
