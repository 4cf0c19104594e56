//! Test support: real components started on free loopback ports.
//!
//! Used by the kernel's unit tests and by the integration tests of the
//! `tests` crate. Not for production use: failures panic with a message that
//! says what is missing, because a test without its component must fail, not
//! silently pass.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long etcd may take to answer its health check.
const ETCD_PATIENCE: Duration = Duration::from_secs(30);
/// Attempts at starting etcd (a free port can be taken before etcd binds it).
const ETCD_ATTEMPTS: usize = 3;

/// A free TCP port on 127.0.0.1 (bound and released; another process could
/// take it before the caller binds it, so callers retry on bind failures).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a free loopback port: {e}"))
}

/// Where the etcd binary is: `$KERNO_ETCD_BIN`, `/usr/bin/etcd`, or `etcd` on
/// `PATH`; `None` if none exists.
pub fn etcd_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KERNO_ETCD_BIN") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let default = Path::new("/usr/bin/etcd");
    if default.is_file() {
        return Some(default.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("etcd"))
            .find(|p| p.is_file())
    })
}

/// A real etcd server on free loopback ports with a private data directory.
/// Killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct EtcdServer {
    child: Child,
    client_port: u16,
    // Kept for its drop: removes the data directory.
    dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd and waits until it reports healthy.
    ///
    /// # Panics
    /// If the etcd binary is missing ("etcd not found: install etcd-server
    /// (apt-get install etcd-server)") or etcd does not become healthy.
    pub async fn start() -> EtcdServer {
        let Some(binary) = etcd_binary() else {
            panic!("etcd not found: install etcd-server (apt-get install etcd-server)");
        };
        let mut failures = Vec::new();
        for _ in 0..ETCD_ATTEMPTS {
            match Self::try_start(&binary).await {
                Ok(server) => return server,
                Err(why) => failures.push(why),
            }
        }
        panic!("etcd did not start:\n{}", failures.join("\n---\n"));
    }

    async fn try_start(binary: &Path) -> Result<EtcdServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("kerno-etcd-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?;
        let client_port = free_port();
        let peer_port = free_port();
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cannot share the log file: {e}"))?;
        let child = Command::new(binary)
            .arg("--name")
            .arg("default")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("default={peer_url}"))
            .arg("--initial-cluster-state")
            .arg("new")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let mut server = EtcdServer {
            child,
            client_port,
            dir,
        };
        let deadline = tokio::time::Instant::now() + ETCD_PATIENCE;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("etcd exited with {status}:\n{}", server.log_tail()));
            }
            if healthy(client_port).await {
                return Ok(server);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "etcd not healthy after {ETCD_PATIENCE:?}:\n{}",
                    server.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The end of etcd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // Errors mean it is already gone; wait to reap it either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether etcd's `/health` endpoint on `port` answers healthy.
async fn healthy(port: u16) -> bool {
    let probe = async {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        conn.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await?;
        let mut body = String::new();
        conn.read_to_string(&mut body).await?;
        Ok::<_, std::io::Error>(body.contains("\"health\":\"true\""))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(true))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free");
    }

    #[tokio::test]
    async fn etcd_starts_answers_and_stops() {
        let server = EtcdServer::start().await;
        let port = server.client_port;
        assert!(server.endpoint().ends_with(&format!(":{port}")));
        assert!(healthy(port).await);
        drop(server);
        assert!(!healthy(port).await, "etcd still answers after drop");
    }
}
