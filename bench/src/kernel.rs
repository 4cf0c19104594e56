//! A `kerno kernel` child process for the benchmark.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

/// A running kernel process with a private data dir.
pub struct KernelProcess {
    child: Child,
    /// Its data dir (certificates live in `pki/`).
    pub data_dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl KernelProcess {
    /// Starts `kerno kernel` over the embedded store, or etcd at `etcd`.
    pub fn start(etcd: Option<String>) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let bin: PathBuf = exe.with_file_name("kerno");
        let data_dir = tempfile::tempdir()?;
        let mut cmd = Command::new(&bin);
        cmd.arg("kernel")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--listen", "127.0.0.1:0"]);
        if let Some(endpoint) = etcd {
            cmd.args(["--store", "etcd", "--etcd-endpoints", &endpoint]);
        }
        cmd.env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {} (build it with the benchmark)", bin.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("https://").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .context("the kernel did not start")?;
        Ok(Self {
            child,
            data_dir,
            addr,
        })
    }

    /// The kernel's resident set size in bytes.
    pub fn rss_bytes(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("VmRSS")?;
        Ok(kb * 1024)
    }
}

impl Drop for KernelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
