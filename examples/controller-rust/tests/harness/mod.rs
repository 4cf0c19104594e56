//! A small harness for these tests: a real `kerno up` on a free loopback port
//! with a private data dir, killed on drop.

// Shared by several test crates; each uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kerno_sdk::ClientConfig;
use kerno_sdk::plugin::env;

/// `target/<profile>`, where the workspace's binaries are.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let deps = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    deps.parent().map(Path::to_path_buf).unwrap_or(deps)
}

/// A running kernel.
pub struct Kernel {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Kernel {
    /// Starts `kerno up`; fails clearly when the binary was not built.
    pub fn up() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut kernel = Self {
            child: None,
            dir,
            addr: String::new(),
        };
        kernel.spawn("127.0.0.1:0")?;
        Ok(kernel)
    }

    fn spawn(&mut self, listen: &str) -> Result<()> {
        let bin = bin_dir().join("kerno");
        if !bin.exists() {
            bail!(
                "{} is missing: build it first (cargo build -p kerno-kernel)",
                bin.display()
            );
        }
        let mut child = Command::new(bin)
            .args(["up", "--no-default-plugins"])
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["--listen", listen])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning kerno")?;
        let stdout = child.stdout.take().context("kerno stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("https://").nth(1) {
                    let _ = tx.send(addr.trim().trim_end_matches('/').to_owned());
                }
            }
        });
        self.child = Some(child);
        self.addr = rx
            .recv_timeout(Duration::from_secs(30))
            .context("kerno did not print its API address within 30 s")?;
        Ok(())
    }

    /// Kills the kernel with SIGKILL and starts it again on the same port and data.
    pub fn kill9_and_restart(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        let addr = self.addr.clone();
        self.spawn(&addr)
    }

    fn pki(&self, file: &str) -> PathBuf {
        self.dir.path().join("pki").join(file)
    }

    /// A client config authenticated as the admin (by client certificate).
    pub fn client_config(&self) -> Result<ClientConfig> {
        Ok(ClientConfig::new(self.addr.clone())
            .with_ca_pem(std::fs::read(self.pki("ca.crt"))?)
            .with_identity(
                std::fs::read(self.pki("admin.crt"))?,
                std::fs::read(self.pki("admin.key"))?,
            ))
    }

    /// Sets the environment a plugin needs to reach this kernel.
    pub fn plugin_env(&self, cmd: &mut Command, name: &str) {
        cmd.env(env::KERNEL_ADDR, &self.addr)
            .env(env::CA_FILE, self.pki("ca.crt"))
            .env(env::CLIENT_CERT_FILE, self.pki("admin.crt"))
            .env(env::CLIENT_KEY_FILE, self.pki("admin.key"))
            .env(env::PLUGIN_NAME, name)
            .env(env::PLUGIN_CONFIG, r#"{"leaseNamespace":"default"}"#)
            .env_remove(env::PLUGIN_SOCKET_DIR)
            .env_remove(env::TOKEN);
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` until it returns `Some`, for at most `patience`.
pub async fn eventually<T, F, Fut>(what: &str, patience: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out after {patience:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
