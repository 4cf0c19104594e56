//! Address management over the node's pod CIDR, persisted so a restarted
//! driver neither leaks nor hands out again an address a sandbox holds.
//!
//! One JSON file per allocation in `<stateDir>/allocations/`, named after the
//! sandbox id and written atomically (temporary file, fsync, rename), so a
//! crash leaves either the old state or the new one.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::PodNetwork;

/// Why an allocation failed.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// Every host address of the CIDR is taken.
    #[error("no free address left in {0}")]
    Exhausted(String),
    /// The state directory could not be read or written.
    #[error("ipam state {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A sandbox id that cannot name a file.
    #[error("invalid sandbox id {0:?}")]
    SandboxId(String),
}

/// What is recorded per sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    /// The sandbox holding the address.
    pub sandbox_id: String,
    /// The address.
    pub ip: Ipv4Addr,
    /// `namespace/name` of the pod, for people reading the state.
    #[serde(default)]
    pub pod: String,
}

/// The allocations of one pod network, mirrored in memory.
#[derive(Debug)]
pub struct Ipam {
    network: PodNetwork,
    dir: PathBuf,
    by_sandbox: BTreeMap<String, Allocation>,
}

impl Ipam {
    /// Loads the allocations persisted in `state_dir`; files of addresses
    /// outside `network` (a changed pod CIDR) are ignored but kept.
    pub fn load(state_dir: &Path, network: PodNetwork) -> Result<Self, IpamError> {
        let dir = state_dir.join("allocations");
        std::fs::create_dir_all(&dir).map_err(|source| IpamError::Io {
            path: dir.clone(),
            source,
        })?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IpamError::Io { path, source }
        };
        let mut by_sandbox = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                // Leftover temporary files of an interrupted write.
                if path.extension().and_then(|e| e.to_str()) == Some("tmp") {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            match serde_json::from_slice::<Allocation>(&bytes) {
                Ok(a) if network.cidr.contains(&a.ip) => {
                    by_sandbox.insert(a.sandbox_id.clone(), a);
                }
                Ok(a) => {
                    tracing::warn!(ip = %a.ip, sandbox = %a.sandbox_id, cidr = %network.cidr,
                        "allocation outside the pod cidr ignored");
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable allocation ignored");
                }
            }
        }
        Ok(Self {
            network,
            dir,
            by_sandbox,
        })
    }

    /// The sandbox's allocation, if any.
    pub fn get(&self, sandbox_id: &str) -> Option<&Allocation> {
        self.by_sandbox.get(sandbox_id)
    }

    /// All allocations, by sandbox id.
    pub fn allocations(&self) -> impl Iterator<Item = &Allocation> {
        self.by_sandbox.values()
    }

    /// The sandbox's address: the one it holds, or the lowest free one, persisted.
    pub fn allocate(&mut self, sandbox_id: &str, pod: &str) -> Result<Allocation, IpamError> {
        if let Some(a) = self.by_sandbox.get(sandbox_id) {
            return Ok(a.clone());
        }
        let path = self.path_of(sandbox_id)?;
        let taken: std::collections::BTreeSet<Ipv4Addr> =
            self.by_sandbox.values().map(|a| a.ip).collect();
        let ip = self
            .network
            .cidr
            .hosts()
            .find(|ip| *ip != self.network.gateway && !taken.contains(ip))
            .ok_or_else(|| IpamError::Exhausted(self.network.cidr.to_string()))?;
        let allocation = Allocation {
            sandbox_id: sandbox_id.to_owned(),
            ip,
            pod: pod.to_owned(),
        };
        write_atomically(&path, &allocation)?;
        self.by_sandbox
            .insert(sandbox_id.to_owned(), allocation.clone());
        Ok(allocation)
    }

    /// Frees the sandbox's address; releasing nothing is not an error.
    pub fn release(&mut self, sandbox_id: &str) -> Result<Option<Allocation>, IpamError> {
        let path = self.path_of(sandbox_id)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(IpamError::Io { path, source }),
        }
        sync_dir(&self.dir);
        Ok(self.by_sandbox.remove(sandbox_id))
    }

    fn path_of(&self, sandbox_id: &str) -> Result<PathBuf, IpamError> {
        let ok = !sandbox_id.is_empty()
            && sandbox_id.len() <= 200
            && !sandbox_id.starts_with('.')
            && sandbox_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(IpamError::SandboxId(sandbox_id.to_owned()));
        }
        Ok(self.dir.join(format!("{sandbox_id}.json")))
    }
}

fn write_atomically(path: &Path, allocation: &Allocation) -> Result<(), IpamError> {
    let io = |source| IpamError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let bytes = serde_json::to_vec_pretty(allocation).map_err(|e| io(e.into()))?;
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

/// Makes a rename or unlink durable; best effort (some filesystems refuse).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> PodNetwork {
        PodNetwork::parse("10.9.0.0/29").unwrap()
    }

    #[test]
    fn allocates_lowest_free_host_skipping_the_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = Ipam::load(dir.path(), net()).unwrap();
        let a = ipam.allocate("sb-a", "default/a").unwrap();
        assert_eq!(a.ip, Ipv4Addr::new(10, 9, 0, 2));
        let again = ipam.allocate("sb-a", "default/a").unwrap();
        assert_eq!(again, a, "a repeated allocation returns the same address");
        let b = ipam.allocate("sb-b", "").unwrap();
        assert_eq!(b.ip, Ipv4Addr::new(10, 9, 0, 3));
    }

    #[test]
    fn exhausts_and_frees() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = Ipam::load(dir.path(), net()).unwrap();
        // /29: hosts .1-.6, .1 is the gateway: five pods.
        for i in 0..5 {
            ipam.allocate(&format!("sb{i}"), "").unwrap();
        }
        let err = ipam.allocate("sb5", "").unwrap_err();
        assert!(matches!(err, IpamError::Exhausted(_)), "{err}");
        let freed = ipam.release("sb2").unwrap().unwrap();
        assert_eq!(ipam.allocate("sb5", "").unwrap().ip, freed.ip);
        assert!(ipam.release("never-held").unwrap().is_none());
    }

    #[test]
    fn survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let mut ipam = Ipam::load(dir.path(), net()).unwrap();
            let a = ipam.allocate("sb-a", "").unwrap();
            let b = ipam.allocate("sb-b", "").unwrap();
            ipam.release("sb-a").unwrap();
            (a, b)
        };
        let mut ipam = Ipam::load(dir.path(), net()).unwrap();
        assert!(ipam.get("sb-a").is_none(), "a release is persisted");
        assert_eq!(ipam.get("sb-b"), Some(&b), "an allocation is persisted");
        let c = ipam.allocate("sb-c", "").unwrap();
        assert_ne!(c.ip, b.ip, "a held address is not handed out again");
        assert_eq!(c.ip, a.ip);
    }

    #[test]
    fn refuses_ids_that_escape_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut ipam = Ipam::load(dir.path(), net()).unwrap();
        for bad in ["", "../x", "a/b", ".hidden"] {
            assert!(matches!(
                ipam.allocate(bad, ""),
                Err(IpamError::SandboxId(_))
            ));
        }
    }
}
