//! `kerno-cri-containerd`: the node's container runtime driver. It serves
//! `kerno.runtime.v1` (the kubelet is its client) over containerd and runc,
//! in one containerd namespace per node.
//!
//! - [`sandbox`]: sandboxes as bind-mounted namespaces (no pause process);
//! - [`containers`]: containers, tasks and their state in containerd labels;
//! - [`spec`]: OCI specs built in code;
//! - [`logs`]: CRI-format log files written by the shim's logging binary
//!   (this same executable) and read back;
//! - [`exec`]: exec over FIFOs;
//! - [`images`]: image lookup, listing and import;
//! - [`service`]: the gRPC service.

pub mod backend;
pub mod containers;
pub mod error;
pub mod exec;
pub mod images;
pub mod logs;
pub mod sandbox;
pub mod service;
pub mod spec;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

pub use error::{Error, Result};

/// The runtime handler of pods without a RuntimeClass.
pub const DEFAULT_RUNTIME: &str = "io.containerd.runc.v2";

/// The plugin's config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// containerd's socket.
    #[serde(default = "default_address")]
    pub address: PathBuf,
    /// The containerd namespace of this node.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Where sandboxes and exec FIFOs live.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Where logs go when a sandbox names no log directory.
    #[serde(default)]
    pub log_dir: Option<PathBuf>,
    /// RuntimeClass handler → containerd runtime type; `runc` and the empty
    /// handler are always known.
    #[serde(default)]
    pub runtime_classes: HashMap<String, String>,
}

fn default_address() -> PathBuf {
    PathBuf::from("/run/containerd/containerd.sock")
}
fn default_namespace() -> String {
    "kerno".into()
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/kerno/cri-containerd")
}

/// The driver: containerd, the sandbox store and where things go.
#[derive(Clone)]
pub struct Runtime {
    /// containerd.
    pub cd: backend::Containerd,
    /// Sandboxes.
    pub sandboxes: sandbox::SandboxStore,
    /// The state directory.
    pub state_dir: PathBuf,
    /// This executable (the logging binary the shim runs).
    pub exe: PathBuf,
    /// Known runtime handlers.
    pub handlers: HashMap<String, String>,
}

impl Runtime {
    /// A driver from its config.
    pub fn new(config: &Config) -> Result<Self> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::io("finding the driver's own executable", e))?;
        let mut state_dir = config.state_dir.clone();
        if let Some(log_dir) = &config.log_dir {
            std::fs::create_dir_all(log_dir)
                .map_err(|e| Error::io(format!("creating {}", log_dir.display()), e))?;
        }
        if state_dir.is_relative() {
            state_dir = std::env::current_dir()
                .map_err(|e| Error::io("current dir", e))?
                .join(state_dir);
        }
        let mut handlers: HashMap<String, String> = config.runtime_classes.clone();
        handlers.insert(String::new(), DEFAULT_RUNTIME.into());
        handlers
            .entry("runc".into())
            .or_insert_with(|| DEFAULT_RUNTIME.into());
        Ok(Self {
            cd: backend::Containerd::new(&config.address, &config.namespace)?,
            sandboxes: sandbox::SandboxStore::new(&state_dir)?,
            state_dir,
            exe,
            handlers,
        })
    }
}
