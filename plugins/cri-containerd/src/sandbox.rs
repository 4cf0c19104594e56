//! Sandboxes without a pause process: a sandbox is a directory under the
//! driver's state dir holding its record (`sandbox.json`), the files it
//! mounts into its containers (`hostname`, `resolv.conf`, `hosts`), and its
//! network, IPC and UTS namespaces bind-mounted as `net`, `ipc` and `uts`.
//!
//! Why no pause container: it needs an image before any image is known,
//! and a process whose only job is to pin namespaces. A bind mount pins them
//! as well, survives driver restarts, and gives the kubelet the netns path
//! the network driver needs. Namespaces are made in a short-lived thread
//! (`unshare` of net/ipc/uts only affects the calling thread), bind-mounted
//! from `/proc/thread-self/ns/*`, and the thread then exits.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kerno_proto::runtime::v1 as pb;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the driver remembers about a sandbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxRecord {
    /// Its id.
    pub id: String,
    /// Pod name.
    pub name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Pod uid.
    pub uid: String,
    /// Attempt number.
    pub attempt: u32,
    /// Hostname of the pod.
    pub hostname: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Annotations.
    pub annotations: HashMap<String, String>,
    /// Where container logs go.
    pub log_directory: String,
    /// Whether the pod uses the node's network.
    pub host_network: bool,
    /// The containerd runtime of its containers.
    pub runtime: String,
    /// Creation time.
    pub created_at_unix_nanos: i64,
    /// Whether it was stopped.
    pub stopped: bool,
    /// Pod-level memory limit, 0 for none.
    #[serde(default)]
    pub memory_limit_bytes: i64,
}

/// Namespace files of a sandbox, by the name of their `/proc/*/ns` entry.
const NAMESPACES: [&str; 3] = ["net", "ipc", "uts"];

/// Where sandboxes live.
#[derive(Clone, Debug)]
pub struct SandboxStore {
    root: PathBuf,
}

impl SandboxStore {
    /// Sandboxes under `state_dir/sandboxes`.
    pub fn new(state_dir: &Path) -> Result<Self> {
        let root = state_dir.join("sandboxes");
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::io(format!("creating {}", root.display()), e))?;
        Ok(Self { root })
    }

    /// The directory of one sandbox.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Path of a sandbox's network namespace ("" with host networking).
    pub fn netns_path(&self, record: &SandboxRecord) -> String {
        if record.host_network {
            String::new()
        } else {
            self.dir(&record.id).join("net").display().to_string()
        }
    }

    /// Path of one of its namespace files.
    pub fn ns_path(&self, id: &str, ns: &str) -> PathBuf {
        self.dir(id).join(ns)
    }

    /// Creates the directory, files and namespaces of a new sandbox.
    pub fn create(&self, record: &SandboxRecord, config: &pb::PodSandboxConfig) -> Result<()> {
        let dir = self.dir(&record.id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let write = |name: &str, content: &str| {
            std::fs::write(dir.join(name), content)
                .map_err(|e| Error::io(format!("writing {name} of sandbox {}", record.id), e))
        };
        write("hostname", &format!("{}\n", record.hostname))?;
        let resolv = if config.resolv_conf.is_empty() {
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        } else {
            config.resolv_conf.clone()
        };
        write("resolv.conf", &resolv)?;
        let hosts = if config.hosts.is_empty() {
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n",
                record.hostname
            )
        } else {
            config.hosts.clone()
        };
        write("hosts", &hosts)?;
        let result = make_namespaces(&dir, &record.hostname, record.host_network);
        if result.is_err() {
            let _ = self.remove(&record.id);
        }
        result?;
        self.save(record)
    }

    /// Writes a record.
    pub fn save(&self, record: &SandboxRecord) -> Result<()> {
        let path = self.dir(&record.id).join("sandbox.json");
        let tmp = path.with_extension("json.tmp");
        let data = serde_json::to_vec_pretty(record)
            .map_err(|e| Error::Internal(format!("encoding sandbox record: {e}")))?;
        std::fs::write(&tmp, data)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// Reads a record, NOT_FOUND when absent.
    pub fn get(&self, id: &str) -> Result<SandboxRecord> {
        if id.is_empty() || id.contains('/') || id.starts_with('.') {
            return Err(Error::NotFound(format!("sandbox {id:?} not found")));
        }
        let path = self.dir(id).join("sandbox.json");
        let data =
            std::fs::read(&path).map_err(|_| Error::NotFound(format!("sandbox {id} not found")))?;
        serde_json::from_slice(&data)
            .map_err(|e| Error::Internal(format!("sandbox {id}: malformed record: {e}")))
    }

    /// Every sandbox.
    pub fn list(&self) -> Result<Vec<SandboxRecord>> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| Error::io(format!("reading {}", self.root.display()), e))?;
        for entry in entries.flatten() {
            if let Some(id) = entry.file_name().to_str()
                && let Ok(record) = self.get(id)
            {
                out.push(record);
            }
        }
        out.sort_by_key(|r| r.created_at_unix_nanos);
        Ok(out)
    }

    /// Unmounts the namespaces and deletes the directory; idempotent.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        if !dir.exists() {
            return Ok(());
        }
        for ns in NAMESPACES {
            let path = dir.join(ns);
            if path.exists() {
                match nix::mount::umount2(&path, MntFlags::MNT_DETACH) {
                    Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
                    Err(e) => {
                        return Err(Error::io(
                            format!("unmounting {}", path.display()),
                            e.into(),
                        ));
                    }
                }
            }
        }
        std::fs::remove_dir_all(&dir)
            .map_err(|e| Error::io(format!("removing {}", dir.display()), e))
    }
}

/// Makes new namespaces in a dedicated thread and bind-mounts them into `dir`.
fn make_namespaces(dir: &Path, hostname: &str, host_network: bool) -> Result<()> {
    let dir = dir.to_owned();
    let hostname = hostname.to_owned();
    std::thread::spawn(move || -> Result<()> {
        let mut flags = CloneFlags::CLONE_NEWIPC;
        if !host_network {
            flags |= CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
        }
        nix::sched::unshare(flags)?;
        let mut pinned = vec!["ipc"];
        if !host_network {
            nix::unistd::sethostname(&hostname)?;
            pinned.extend(["net", "uts"]);
            // Loopback up, so probes of localhost work; the network driver
            // wires eth0. Best effort: `ip` started from this thread runs in
            // the new network namespace.
            let _ = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        for ns in pinned {
            let target = dir.join(ns);
            std::fs::File::create(&target)
                .map_err(|e| Error::io(format!("creating {}", target.display()), e))?;
            nix::mount::mount(
                Some(format!("/proc/thread-self/ns/{ns}").as_str()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| Error::io(format!("bind-mounting {ns} namespace"), e.into()))?;
        }
        Ok(())
    })
    .join()
    .map_err(|_| Error::Internal("namespace thread panicked".into()))?
}
