//! Starting one plugin process: finding its binary, its environment, its
//! log file, and reading its handshake line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::registry::SUPPORTED_PROTOCOL_VERSIONS;
use crate::config::PluginConfig;

/// The first word of a handshake line (see `kerno_sdk::plugin::handshake`).
pub const HANDSHAKE_MAGIC: &str = "KERNO_PLUGIN";

/// What a plugin is started with, besides its own config.
#[derive(Clone, Debug)]
pub struct SpawnEnv {
    /// `host:port` of the kernel, for `KERNO_KERNEL_ADDR`.
    pub kernel_addr: String,
    /// The CA file, for `KERNO_CA_FILE`.
    pub ca_file: PathBuf,
    /// Where plugins create their unix sockets (`KERNO_PLUGIN_SOCKET_DIR`).
    pub socket_dir: PathBuf,
    /// Where plugins' stderr goes: `<log_dir>/<name>.log`.
    pub log_dir: PathBuf,
    /// The directory of the `kerno` binary, searched first for `kerno-<name>`.
    pub kerno_dir: Option<PathBuf>,
}

/// Why a plugin could not be started or refused at its handshake.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// No binary was found.
    #[error("binary {0:?} not found next to kerno or on PATH")]
    NotFound(String),
    /// The process could not be started.
    #[error("cannot start {program}: {source}")]
    Start {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The log file could not be opened.
    #[error("cannot open the log file {path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The handshake line is not `KERNO_PLUGIN <version> <endpoint>`.
    #[error(
        "handshake: expected 'KERNO_PLUGIN <version> <unix:///path | tcp://host:port>', got {0:?}"
    )]
    Garbled(String),
    /// The plugin speaks a protocol version the kernel does not.
    #[error(
        "handshake: unsupported plugin protocol version {got}; this kernel supports {supported:?}"
    )]
    UnsupportedVersion {
        /// The version the plugin announced.
        got: u32,
        /// The versions the kernel speaks.
        supported: Vec<u32>,
    },
    /// No handshake line in time.
    #[error("handshake: no line on stdout within {0:?}")]
    Timeout(Duration),
    /// Stdout closed before a handshake line (usually: the process exited).
    #[error("handshake: stdout closed before the handshake line")]
    Closed,
}

impl SpawnError {
    /// Whether retrying soon cannot help (the plugin itself is wrong), as
    /// opposed to a process that crashed.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SpawnError::NotFound(_)
                | SpawnError::Garbled(_)
                | SpawnError::UnsupportedVersion { .. }
        )
    }
}

/// Where a plugin serves, from its handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket.
    Unix(PathBuf),
    /// A TCP address `host:port`.
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// Parses and checks a handshake line.
pub fn parse_handshake(line: &str) -> Result<Endpoint, SpawnError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let garbled = || SpawnError::Garbled(line.chars().take(200).collect());
    let words: Vec<&str> = line.split(' ').collect();
    let [HANDSHAKE_MAGIC, version, endpoint] = words[..] else {
        return Err(garbled());
    };
    let version: u32 = version.parse().map_err(|_| garbled())?;
    if !SUPPORTED_PROTOCOL_VERSIONS.contains(&version) {
        return Err(SpawnError::UnsupportedVersion {
            got: version,
            supported: SUPPORTED_PROTOCOL_VERSIONS.to_vec(),
        });
    }
    if let Some(path) = endpoint.strip_prefix("unix://")
        && path.starts_with('/')
        && path.len() > 1
    {
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if let Some(addr) = endpoint.strip_prefix("tcp://")
        && addr.parse::<std::net::SocketAddr>().is_ok()
    {
        return Ok(Endpoint::Tcp(addr.to_owned()));
    }
    Err(garbled())
}

/// The program and arguments to run for `plugin`.
pub fn resolve_command(
    plugin: &PluginConfig,
    kerno_dir: Option<&Path>,
) -> Result<Vec<String>, SpawnError> {
    if let Some(command) = &plugin.command {
        return Ok(command.clone());
    }
    let binary = format!("kerno-{}", plugin.name);
    find_binary(&binary, kerno_dir)
        .map(|p| vec![p.display().to_string()])
        .ok_or(SpawnError::NotFound(binary))
}

/// `name` next to `kerno` (in `kerno_dir`), else on `PATH`.
pub fn find_binary(name: &str, kerno_dir: Option<&Path>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    kerno_dir
        .map(Path::to_path_buf)
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A started plugin process whose handshake was read.
pub struct Started {
    /// The process (in its own process group, killed when dropped).
    pub child: Child,
    /// Its process id.
    pub pid: u32,
}

/// Starts `plugin` with `token`. The process leads its own process group,
/// so stopping it also reaches any children it started.
pub fn start(plugin: &PluginConfig, env: &SpawnEnv, token: &str) -> Result<Started, SpawnError> {
    let command = resolve_command(plugin, env.kerno_dir.as_deref())?;
    let (program, args) = command
        .split_first()
        .ok_or_else(|| SpawnError::NotFound(String::new()))?;
    let log_path = env.log_dir.join(format!("{}.log", plugin.name));
    let log_err = |source| SpawnError::Log {
        path: log_path.clone(),
        source,
    };
    std::fs::create_dir_all(&env.log_dir).map_err(log_err)?;
    std::fs::create_dir_all(&env.socket_dir).map_err(log_err)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(log_err)?;
    let config = serde_json::Value::Object(plugin.config.clone()).to_string();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("KERNO_KERNEL_ADDR", &env.kernel_addr)
        .env("KERNO_CA_FILE", &env.ca_file)
        .env("KERNO_TOKEN", token)
        .env("KERNO_PLUGIN_NAME", &plugin.name)
        .env("KERNO_PLUGIN_CONFIG", config)
        .env("KERNO_PLUGIN_SOCKET_DIR", &env.socket_dir)
        // SDK plugins stop when this process dies (see the SDK's plugin main).
        .env("KERNO_SUPERVISOR_PID", std::process::id().to_string())
        // A certificate identity inherited from the kernel's environment
        // would hide the plugin's own token.
        .env_remove("KERNO_CLIENT_CERT_FILE")
        .env_remove("KERNO_CLIENT_KEY_FILE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| SpawnError::Start {
        program: program.clone(),
        source,
    })?;
    let pid = child.id().unwrap_or_default();
    Ok(Started { child, pid })
}

/// Reads the handshake line from `stdout` within `timeout`, then keeps
/// copying whatever else the plugin prints there to its log file (a full
/// pipe would block the plugin).
pub async fn read_handshake(
    stdout: impl AsyncRead + Unpin + Send + 'static,
    timeout: Duration,
    log_path: PathBuf,
) -> Result<Endpoint, SpawnError> {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    let read = tokio::time::timeout(timeout, reader.read_line(&mut line)).await;
    let result = match read {
        Err(_) => Err(SpawnError::Timeout(timeout)),
        Ok(Ok(0)) | Ok(Err(_)) => Err(SpawnError::Closed),
        Ok(Ok(_)) => parse_handshake(&line),
    };
    tokio::spawn(async move {
        let Ok(mut log) = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .await
        else {
            return;
        };
        let _ = tokio::io::copy(&mut reader, &mut log).await;
        let _ = log.flush().await;
    });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_lines_are_checked() {
        assert_eq!(
            parse_handshake("KERNO_PLUGIN 1 unix:///run/x.sock\n").ok(),
            Some(Endpoint::Unix("/run/x.sock".into()))
        );
        assert_eq!(
            parse_handshake("KERNO_PLUGIN 1 tcp://127.0.0.1:4000").ok(),
            Some(Endpoint::Tcp("127.0.0.1:4000".into()))
        );
        let garbled = parse_handshake("hello there").map_err(|e| e.to_string());
        assert_eq!(
            garbled.err().as_deref(),
            Some(
                "handshake: expected 'KERNO_PLUGIN <version> <unix:///path | tcp://host:port>', got \"hello there\""
            )
        );
        let future = parse_handshake("KERNO_PLUGIN 99 unix:///x.sock").map_err(|e| e.to_string());
        assert_eq!(
            future.err().as_deref(),
            Some("handshake: unsupported plugin protocol version 99; this kernel supports [1]")
        );
        assert!(parse_handshake("KERNO_PLUGIN 1 unix://relative").is_err());
        assert!(parse_handshake("KERNO_PLUGIN x unix:///x").is_err());
    }

    #[test]
    fn commands_resolve_from_config_then_kerno_dir() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut plugin = PluginConfig {
            name: "zzz-none".into(),
            command: None,
            enabled: true,
            config: Default::default(),
        };
        assert!(matches!(
            resolve_command(&plugin, Some(dir.path())),
            Err(SpawnError::NotFound(b)) if b == "kerno-zzz-none"
        ));
        let bin = dir.path().join("kerno-zzz-none");
        std::fs::write(&bin, "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            resolve_command(&plugin, Some(dir.path())).ok(),
            Some(vec![bin.display().to_string()])
        );
        plugin.command = Some(vec!["/bin/true".into(), "-x".into()]);
        assert_eq!(
            resolve_command(&plugin, None).ok(),
            Some(vec!["/bin/true".into(), "-x".into()])
        );
    }
}
