//! The test harness: starts real kerno processes (and etcd), runs the real
//! `kubectl` against them, and cleans up on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub use kerno_kernel::testing::EtcdServer;

pub mod containerd;
pub mod image;
pub mod netns;
pub mod node;

/// The directory holding the workspace's built binaries (`target/<profile>`).
pub fn bin_dir() -> PathBuf {
    // Test binaries live in target/<profile>/deps, binaries (benchmarks
    // using this harness) in target/<profile> itself.
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// The `kerno` binary; fails with a clear message when it was not built.
pub fn kerno_bin() -> Result<PathBuf> {
    let bin = bin_dir().join("kerno");
    if !bin.exists() {
        bail!(
            "{} is missing: build it first (cargo build --workspace --all-targets)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Which store a started kernel uses.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded store in the data dir.
    Embedded,
    /// `kerno up` as a user runs it: the embedded store and the default
    /// plugins installed next to `kerno`, supervised.
    AllInOne,
    /// etcd at this endpoint.
    Etcd(String),
}

/// A kerno kernel process on a free loopback port with a private data dir.
pub struct Kerno {
    child: Option<Child>,
    data_dir: tempfile::TempDir,
    backend: Backend,
    extra_args: Vec<String>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    cache_dir: tempfile::TempDir,
    /// Where the kernel's stderr (its log) goes and at which `RUST_LOG`,
    /// when not inherited.
    log: Option<(PathBuf, String)>,
}

impl Kerno {
    /// `kerno up` with the embedded store.
    pub fn up() -> Result<Self> {
        Self::start(Backend::Embedded)
    }

    /// A kernel over the given backend.
    pub fn start(backend: Backend) -> Result<Self> {
        Self::start_with(backend, &[])
    }

    /// A kernel over the given backend, with extra command-line flags.
    pub fn start_with(backend: Backend, extra_args: &[&str]) -> Result<Self> {
        Self::start_inner(backend, extra_args, None)
    }

    /// A kernel with extra flags whose log (stderr) is appended to `log`
    /// at `RUST_LOG=rust_log`, for tests that read what the kernel logs.
    pub fn start_logged(
        backend: Backend,
        extra_args: &[&str],
        log: &Path,
        rust_log: &str,
    ) -> Result<Self> {
        Self::start_inner(
            backend,
            extra_args,
            Some((log.to_path_buf(), rust_log.to_owned())),
        )
    }

    fn start_inner(
        backend: Backend,
        extra_args: &[&str],
        log: Option<(PathBuf, String)>,
    ) -> Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let cache_dir = tempfile::tempdir()?;
        let mut kerno = Self {
            child: None,
            data_dir,
            backend,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            addr: String::new(),
            cache_dir,
            log,
        };
        kerno.spawn("127.0.0.1:0")?;
        Ok(kerno)
    }

    fn spawn(&mut self, listen: &str) -> Result<()> {
        let mut cmd = Command::new(kerno_bin()?);
        match &self.backend {
            Backend::Embedded => {
                // Tests start the plugins they need themselves.
                cmd.args(["up", "--no-default-plugins"]);
            }
            Backend::AllInOne => {
                cmd.arg("up");
            }
            Backend::Etcd(endpoint) => {
                cmd.args(["kernel", "--store", "etcd", "--etcd-endpoints", endpoint]);
            }
        }
        cmd.arg("--data-dir")
            .arg(self.data_dir.path())
            .args(["--listen", listen]);
        cmd.args(&self.extra_args);
        cmd.stdout(Stdio::piped()).stdin(Stdio::null());
        match &self.log {
            Some((file, rust_log)) => {
                let log = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(file)
                    .with_context(|| format!("opening {}", file.display()))?;
                cmd.stderr(log).env("RUST_LOG", rust_log);
            }
            None => {
                cmd.stderr(Stdio::inherit()).env(
                    "RUST_LOG",
                    std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
                );
            }
        }
        let mut child = cmd.spawn().context("spawning kerno")?;
        let stdout = child.stdout.take().context("kerno stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("https://").nth(1) {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        self.child = Some(child);
        self.addr = rx
            .recv_timeout(Duration::from_secs(30))
            .context("kerno did not report its address within 30s")?;
        Ok(())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.path().join("kubeconfig.yaml")
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`, then start again on the same port and data dir.
    pub fn kill9_and_restart(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        let addr = self.addr.clone();
        self.spawn(&addr)
    }

    /// Runs `kubectl` with this cluster's kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    /// Runs `kubectl` feeding `stdin`.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("/usr/bin/kubectl");
        cmd.arg("--kubeconfig").arg(self.kubeconfig());
        cmd.arg("--cache-dir").arg(self.cache_dir.path());
        cmd.args(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot run /usr/bin/kubectl: {e}"),
        };
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            let _ = pipe.write_all(text.as_bytes());
        }
        match child.wait_with_output() {
            Ok(out) => out,
            Err(e) => panic!("kubectl failed to run: {e}"),
        }
    }

    /// Runs kubectl, asserts success and returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts failure and returns stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {} should have failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// An HTTPS client with the admin certificate.
    pub fn http(&self) -> Result<reqwest::Client> {
        let pki = self.data_dir.path().join("pki");
        let ca = std::fs::read(pki.join("ca.crt"))?;
        let mut identity = std::fs::read(pki.join("admin.crt"))?;
        identity.extend(std::fs::read(pki.join("admin.key"))?);
        Ok(reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
            .identity(reqwest::Identity::from_pem(&identity)?)
            .build()?)
    }

    /// `https://ADDR`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

/// How long a kernel gets to stop its plugins after SIGTERM.
const KERNEL_STOP_GRACE: Duration = Duration::from_secs(15);

impl Drop for Kerno {
    fn drop(&mut self) {
        // SIGTERM first, so the kernel stops the plugins it supervises the
        // way `kerno up` does on Ctrl-C; SIGKILL only if that hangs.
        if let Some(mut child) = self.child.take() {
            let asked = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            let deadline = Instant::now() + KERNEL_STOP_GRACE;
            while asked && Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Retries `check` until it returns `Some` or `patience` runs out.
pub fn eventually<T>(patience: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A gRPC channel to the kernel, authenticated with the admin certificate.
pub async fn grpc_channel(kerno: &Kerno) -> Result<tonic::transport::Channel> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let pki = kerno.data_dir().join("pki");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(pki.join("ca.crt"))?))
        .identity(Identity::from_pem(
            std::fs::read(pki.join("admin.crt"))?,
            std::fs::read(pki.join("admin.key"))?,
        ))
        .domain_name("localhost");
    Ok(Endpoint::from_shared(format!("https://{}", kerno.addr))?
        .tls_config(tls)?
        .connect()
        .await?)
}

/// A gRPC client of `kerno.kernel.v1` authenticated with the admin certificate.
pub async fn grpc_client(
    kerno: &Kerno,
) -> Result<kerno_proto::kernel::v1::kernel_client::KernelClient<tonic::transport::Channel>> {
    Ok(kerno_proto::kernel::v1::kernel_client::KernelClient::new(
        grpc_channel(kerno).await?,
    ))
}

/// A plugin binary started by a test (not by the supervisor) against a
/// [`Kerno`], authenticated with the admin certificate; killed on drop.
pub struct PluginProcess {
    child: Option<Child>,
    command: Command,
    /// The plugin's name.
    pub name: String,
}

impl Kerno {
    /// Starts `target/<profile>/<binary>` as plugin `name` with `config` (its
    /// `KERNO_PLUGIN_CONFIG`), the environment the supervisor would set, and a
    /// TCP endpoint on loopback. Fails clearly when the binary was not built.
    pub fn spawn_plugin(
        &self,
        binary: &str,
        name: &str,
        config: serde_json::Value,
    ) -> Result<PluginProcess> {
        let bin = bin_dir().join(binary);
        if !bin.exists() {
            bail!(
                "{} is missing: build it first (cargo build --workspace --all-targets)",
                bin.display()
            );
        }
        let pki = self.data_dir.path().join("pki");
        let mut command = Command::new(bin);
        command
            .env("KERNO_KERNEL_ADDR", &self.addr)
            .env("KERNO_CA_FILE", pki.join("ca.crt"))
            .env("KERNO_CLIENT_CERT_FILE", pki.join("admin.crt"))
            .env("KERNO_CLIENT_KEY_FILE", pki.join("admin.key"))
            .env("KERNO_PLUGIN_NAME", name)
            .env("KERNO_PLUGIN_CONFIG", config.to_string())
            .env_remove("KERNO_PLUGIN_SOCKET_DIR")
            .env_remove("KERNO_TOKEN")
            // As under the supervisor: the plugin stops if this test process dies.
            .env("KERNO_SUPERVISOR_PID", std::process::id().to_string())
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut plugin = PluginProcess {
            child: None,
            command,
            name: name.to_owned(),
        };
        plugin.start()?;
        Ok(plugin)
    }
}

impl PluginProcess {
    fn start(&mut self) -> Result<()> {
        let child = self
            .command
            .spawn()
            .with_context(|| format!("spawning plugin {}", self.name))?;
        self.child = Some(child);
        Ok(())
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
        Ok(())
    }

    /// Starts the plugin again with the same environment (after [`Self::kill9`]).
    pub fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.start()
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}
