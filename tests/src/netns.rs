//! Network namespaces for tests: a uniquely named `kt-<random>` namespace,
//! commands run inside it, plugins started inside it, and everything removed
//! on drop (processes killed, namespace deleted, which destroys the links in
//! it), also when the test fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::{Kerno, bin_dir};

/// A network namespace created by a test (`ip netns add`), deleted on drop.
pub struct TestNetns {
    name: String,
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mixed = nanos
        ^ std::process::id().rotate_left(16)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9);
    format!("{mixed:08x}")
}

impl TestNetns {
    /// Creates `kt-<random>` with its loopback up.
    pub fn create() -> Result<Self> {
        let ns = Self {
            name: format!("kt-{}", unique_suffix()),
        };
        let out = Command::new("ip")
            .args(["netns", "add", &ns.name])
            .output()
            .context("running ip netns add (iproute2 installed? root?)")?;
        if !out.status.success() {
            bail!(
                "ip netns add {}: {}",
                ns.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        ns.exec_ok(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's path, as a runtime hands it to a network driver.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// A command that runs `args` inside the namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }

    /// Runs `args` inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Result<Output> {
        self.command(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {args:?} in {}", self.name))
    }

    /// Runs `args` inside the namespace and returns its stdout; fails with
    /// its stderr when it fails.
    pub fn exec_ok(&self, args: &[&str]) -> Result<String> {
        let out = self.exec(args)?;
        if !out.status.success() {
            bail!(
                "{args:?} in {} failed ({}): {}{}",
                self.name,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts `args` inside the namespace in the background; killed on drop.
    pub fn spawn(&self, args: &[&str]) -> Result<BackgroundProcess> {
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("spawning {args:?} in {}", self.name))?;
        Ok(BackgroundProcess(child))
    }

    /// Starts a plugin binary of `target/<profile>` inside the namespace
    /// serving on `<socket_dir>/<name>.sock`; `kernel` adds the environment
    /// that reaches a kernel (for plugins that can). Waits for the handshake.
    pub fn spawn_plugin(
        &self,
        binary: &str,
        name: &str,
        config: serde_json::Value,
        socket_dir: &Path,
        kernel: Option<&Kerno>,
    ) -> Result<NetnsPlugin> {
        let bin = bin_dir().join(binary);
        if !bin.exists() {
            bail!(
                "{} is missing: build it first (cargo build -p {binary})",
                bin.display()
            );
        }
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name])
            .arg(&bin)
            .env("KERNO_PLUGIN_NAME", name)
            .env("KERNO_PLUGIN_CONFIG", config.to_string())
            .env("KERNO_PLUGIN_SOCKET_DIR", socket_dir)
            .env_remove("KERNO_TOKEN")
            // `ip netns exec` execs the plugin: its parent is this process.
            .env("KERNO_SUPERVISOR_PID", std::process::id().to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(k) = kernel {
            let pki = k.data_dir().join("pki");
            command
                .env("KERNO_KERNEL_ADDR", &k.addr)
                .env("KERNO_CA_FILE", pki.join("ca.crt"))
                .env("KERNO_CLIENT_CERT_FILE", pki.join("admin.crt"))
                .env("KERNO_CLIENT_KEY_FILE", pki.join("admin.key"));
        }
        let mut plugin = NetnsPlugin {
            child: None,
            stdout: None,
            command,
            name: name.to_owned(),
            socket: socket_dir.join(format!("{name}.sock")),
        };
        plugin.start()?;
        Ok(plugin)
    }

    fn kill_processes(&self) {
        let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        else {
            return;
        };
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        // A process left inside would keep the namespace (and its links) alive.
        self.kill_processes();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

impl Kerno {
    /// Starts a plugin inside `netns` with the environment of
    /// [`Kerno::spawn_plugin`] plus a unix socket in `socket_dir`. The kernel
    /// listens on the root namespace's loopback, which a plugin inside
    /// another namespace cannot reach over TCP: such a plugin must be able to
    /// work without the kernel (for example a network driver in standalone mode).
    pub fn spawn_plugin_in_netns(
        &self,
        binary: &str,
        name: &str,
        config: serde_json::Value,
        netns: &TestNetns,
        socket_dir: &Path,
    ) -> Result<NetnsPlugin> {
        netns.spawn_plugin(binary, name, config, socket_dir, Some(self))
    }
}

/// A background process inside a test namespace, killed on drop.
pub struct BackgroundProcess(Child);

impl Drop for BackgroundProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plugin started inside a namespace; killed on drop.
pub struct NetnsPlugin {
    child: Option<Child>,
    // Held so the plugin's stdout stays open after its handshake line.
    stdout: Option<BufReader<ChildStdout>>,
    command: Command,
    /// The plugin's name.
    pub name: String,
    socket: PathBuf,
}

impl NetnsPlugin {
    fn start(&mut self) -> Result<()> {
        let mut child = self
            .command
            .spawn()
            .with_context(|| format!("spawning plugin {}", self.name))?;
        let stdout = child.stdout.take().context("plugin stdout")?;
        self.child = Some(child);
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if !line.starts_with("KERNO_PLUGIN ") {
            let status = self.child.as_mut().and_then(|c| c.wait().ok());
            bail!(
                "plugin {} exited ({status:?}) without its handshake line (its stderr says why)",
                self.name
            );
        }
        self.stdout = Some(stdout);
        Ok(())
    }

    /// The unix socket the plugin serves on.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9` the plugin and wait for it to be gone.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        self.stdout = None;
        Ok(())
    }

    /// Starts the plugin again with the same environment; waits for its handshake.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.start()
    }
}

impl Drop for NetnsPlugin {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// A gRPC channel to a unix socket (a plugin's endpoint).
pub async fn unix_channel(socket: &Path) -> Result<tonic::transport::Channel> {
    let socket = socket.to_path_buf();
    tonic::transport::Endpoint::from_static("http://plugin")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .context("connecting to the plugin's unix socket")
}

/// The names of the network namespaces that exist now (`ip netns list`).
pub fn netns_names() -> Vec<String> {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
