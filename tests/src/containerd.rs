//! A private containerd for tests: its own root, state and socket in a temp
//! dir, never the system's. Killed, with what it ran, on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::eventually;

/// The containerd binary.
pub const CONTAINERD: &str = "/usr/bin/containerd";

/// A running private containerd.
pub struct Containerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Its socket.
    pub socket: PathBuf,
}

impl Containerd {
    /// Starts containerd with a config whose paths all lie in a temp dir,
    /// and waits for its socket.
    pub fn start() -> Result<Self> {
        if !Path::new(CONTAINERD).exists() {
            bail!(
                "{CONTAINERD} is missing: install containerd and runc (apt-get install containerd runc)"
            );
        }
        let dir = tempfile::Builder::new().prefix("kerno-ctrd-").tempdir()?;
        let socket = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        let d = dir.path().display();
        // The CRI plugin is off: it would claim node-wide paths and ports.
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{d}/containerd.sock\"\n\
                 [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
                 [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n"
            ),
        )?;
        let log = std::fs::File::create(dir.path().join("containerd.log"))?;
        let child = Command::new(CONTAINERD)
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting containerd")?;
        let mut me = Self {
            child: Some(child),
            dir,
            socket,
        };
        let ready = eventually(Duration::from_secs(20), || {
            (me.socket.exists() && me.ctr("default", &["version"]).is_ok()).then_some(())
        });
        if ready.is_none() {
            let log =
                std::fs::read_to_string(me.dir.path().join("containerd.log")).unwrap_or_default();
            me.stop();
            bail!("containerd did not come up; its log:\n{log}");
        }
        Ok(me)
    }

    /// The temp dir holding its files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `ctr -a SOCK -n NS args...` and returns stdout.
    pub fn ctr(&self, namespace: &str, args: &[&str]) -> Result<String> {
        let out = Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(["-n", namespace])
            .args(args)
            .output()
            .context("running ctr")?;
        if !out.status.success() {
            bail!(
                "ctr {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Ids listed by `ctr <kind> ls -q` (containers, tasks via `tasks ls`, snapshots).
    pub fn ids(&self, namespace: &str, kind: &str) -> Result<Vec<String>> {
        // `ctr snapshots ls` has no `-q`; it and `tasks ls` print a header line.
        let out = match kind {
            "tasks" | "snapshots" => self.ctr(namespace, &[kind, "ls"])?,
            _ => self.ctr(namespace, &[kind, "ls", "-q"])?,
        };
        let skip = usize::from(kind == "tasks" || kind == "snapshots");
        Ok(out
            .lines()
            .skip(skip)
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect())
    }

    /// Kills containerd (SIGKILL) and waits for it, leaving its files.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        // Tasks left by a failed test: kill them so no shim outlives us.
        if let Ok(out) = self.ctr("default", &["namespaces", "ls", "-q"]) {
            for ns in out.lines() {
                for task in self.ids(ns, "tasks").unwrap_or_default() {
                    let _ = self.ctr(ns, &["tasks", "delete", "-f", &task]);
                }
            }
        }
        self.kill();
        // Unmount whatever is still mounted below the temp dir.
        let prefix = self.dir.path().display().to_string();
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split(' ').nth(1))
                .filter(|p| p.starts_with(&prefix))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").args(["-l", p]).status();
            }
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
    }
}

impl crate::Kerno {
    /// Like [`crate::Kerno::spawn_plugin`], but serving on a unix socket in
    /// `socket_dir` (`<socket_dir>/<name>.sock`), as under the supervisor,
    /// so a test can dial the plugin's own services.
    pub fn spawn_plugin_on_socket(
        &self,
        binary: &str,
        name: &str,
        config: serde_json::Value,
        socket_dir: &Path,
    ) -> Result<(crate::PluginProcess, PathBuf)> {
        let mut plugin = self.spawn_plugin(binary, name, config)?;
        plugin.kill9()?;
        plugin.command.env("KERNO_PLUGIN_SOCKET_DIR", socket_dir);
        plugin.start()?;
        Ok((plugin, socket_dir.join(format!("{name}.sock"))))
    }
}
