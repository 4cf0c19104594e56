//! The datapath behind one trait: the sync loop hands it the whole state
//! and it makes the kernel match. [`NftDatapath`] is the nftables one; a
//! fake records what it was given, for tests of the loop.

use std::path::PathBuf;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::model::ProxyState;
use crate::nft::{RenderOptions, render};

/// Why programming the datapath failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `nft` program could not be run.
    #[error("running nft: {0}")]
    Spawn(#[source] std::io::Error),
    /// An IPVS request or the virtual addresses failed.
    #[error("ipvs: {0}")]
    Ipvs(#[source] std::io::Error),
    /// `nft` refused the script.
    #[error("nft failed ({status}): {stderr}")]
    Nft {
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed.
        stderr: String,
    },
}

/// A datapath the proxy programs.
#[async_trait]
pub trait Datapath: Send {
    /// A short name, shown on the Plugin object (`nftables`, `ipvs`).
    fn name(&self) -> &'static str;
    /// Makes the kernel's state exactly `state`.
    async fn sync(&mut self, state: &ProxyState) -> Result<(), Error>;
}

/// Runs `nft -f -` with a script.
#[async_trait]
pub trait NftRunner: Send + Sync {
    /// Applies `script` as one transaction.
    async fn apply(&self, script: &str) -> Result<(), Error>;
}

/// The real `nft`, optionally inside another network namespace (a node
/// agent whose network lives in a namespace; tests).
#[derive(Clone, Debug, Default)]
pub struct NftCommand {
    /// `/run/netns/<name>` to enter with `nsenter --net=`; `None`: our own.
    pub netns: Option<PathBuf>,
}

#[async_trait]
impl NftRunner for NftCommand {
    async fn apply(&self, script: &str) -> Result<(), Error> {
        let mut command = match &self.netns {
            Some(path) => {
                let mut c = tokio::process::Command::new("nsenter");
                c.arg(format!("--net={}", path.display())).arg("nft");
                c
            }
            None => tokio::process::Command::new("nft"),
        };
        let mut child = command
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(Error::Spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(script.as_bytes())
                .await
                .map_err(Error::Spawn)?;
            // Dropping stdin closes it: nft reads to EOF, then commits.
        }
        let out = child.wait_with_output().await.map_err(Error::Spawn)?;
        if !out.status.success() {
            return Err(Error::Nft {
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(())
    }
}

/// The nftables datapath: renders the state and applies it when the
/// rendered text differs from what it applied last.
pub struct NftDatapath<R> {
    runner: R,
    options: RenderOptions,
    applied: Option<String>,
}

impl<R: NftRunner> NftDatapath<R> {
    /// A datapath applying through `runner`.
    pub fn new(runner: R, options: RenderOptions) -> Self {
        Self {
            runner,
            options,
            applied: None,
        }
    }
}

#[async_trait]
impl<R: NftRunner> Datapath for NftDatapath<R> {
    fn name(&self) -> &'static str {
        "nftables"
    }

    async fn sync(&mut self, state: &ProxyState) -> Result<(), Error> {
        let script = render(state, &self.options);
        if self.applied.as_deref() == Some(script.as_str()) {
            return Ok(());
        }
        // Forget the last script first: after a failure the next sync applies again.
        self.applied = None;
        self.runner.apply(&script).await?;
        tracing::debug!(
            services = state.len(),
            bytes = script.len(),
            "nftables ruleset replaced"
        );
        self.applied = Some(script);
        Ok(())
    }
}

#[async_trait]
impl Datapath for Box<dyn Datapath> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    async fn sync(&mut self, state: &ProxyState) -> Result<(), Error> {
        (**self).sync(state).await
    }
}

/// Which datapath to use, and why (shown on the Plugin object). IPVS only
/// when asked for and the kernel has it; nftables otherwise (it also does
/// NodePorts and rejection, which the IPVS datapath leaves out).
pub fn choose(
    ip_vs_available: bool,
    requested: Option<&str>,
) -> Result<(&'static str, String), String> {
    match (requested, ip_vs_available) {
        (Some("ipvs"), true) => Ok(("ipvs", "ipvs: asked for in the plugin config, and the kernel has IPVS".into())),
        (Some("ipvs"), false) => Err("datapath ipvs asked for, but the kernel has no IPVS (/proc/net/ip_vs is missing)".into()),
        (Some("nftables"), _) => Ok(("nftables", "nftables: asked for in the plugin config".into())),
        (Some(other), _) => Err(format!("unknown datapath {other:?} (ipvs or nftables)")),
        (None, false) => Ok((
            "nftables",
            "nftables: the kernel has no IPVS (/proc/net/ip_vs is missing)".into(),
        )),
        (None, true) => Ok((
            "nftables",
            "nftables: the default (the IPVS datapath serves ClusterIPs only; ask for it with datapath: ipvs)".into(),
        )),
    }
}

/// Fakes for tests.
pub mod fake {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Records every script; fails while `fail` is set.
    #[derive(Clone, Default)]
    pub struct RecordingRunner {
        /// Scripts applied, in order.
        pub scripts: Arc<Mutex<Vec<String>>>,
        /// Refuse the next scripts.
        pub fail: Arc<std::sync::atomic::AtomicBool>,
    }

    #[async_trait]
    impl NftRunner for RecordingRunner {
        async fn apply(&self, script: &str) -> Result<(), Error> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::Spawn(std::io::Error::other("refused by the fake")));
            }
            if let Ok(mut s) = self.scripts.lock() {
                s.push(script.to_owned());
            }
            Ok(())
        }
    }

    /// A datapath recording the states it was given.
    #[derive(Clone, Default)]
    pub struct FakeDatapath {
        /// States synced, in order.
        pub synced: Arc<Mutex<Vec<ProxyState>>>,
    }

    #[async_trait]
    impl Datapath for FakeDatapath {
        fn name(&self) -> &'static str {
            "fake"
        }

        async fn sync(&mut self, state: &ProxyState) -> Result<(), Error> {
            if let Ok(mut s) = self.synced.lock() {
                s.push(state.clone());
            }
            Ok(())
        }
    }
}
