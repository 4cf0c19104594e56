//! Pod volumes prepared under the pod's directory: emptyDir, hostPath,
//! configMap, secret, downwardAPI and projected (configMap, secret,
//! downwardAPI sources). Each volume becomes a host path the runtime bind-mounts.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{DownwardAPIVolumeFile, KeyToPath, Pod, Volume};

use crate::atomic_dir::{FileSpec, write_files};
use crate::env::{PodFields, field_value, format_map, resource_value};
use crate::refs::ObjectRefs;

/// Why a volume could not be set up (event `FailedMount`).
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// A referenced ConfigMap does not exist.
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    /// A referenced Secret does not exist.
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    /// An item names a key its object lacks.
    #[error("configmap or secret \"{name}\" has no key \"{key}\"")]
    KeyNotFound {
        /// The object.
        name: String,
        /// The key.
        key: String,
    },
    /// A hostPath does not match its declared type.
    #[error("hostPath type check failed: {path} is not a {kind}")]
    HostPathType {
        /// The path.
        path: String,
        /// The type asked for.
        kind: String,
    },
    /// A downward API field could not be read.
    #[error("{0}")]
    Field(#[from] crate::env::EnvError),
    /// The volume type is not supported by this kubelet.
    #[error("volume {0} has an unsupported type")]
    Unsupported(String),
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Sets up every volume of `pod` under `pod_dir`; returns volume name → host path.
/// Safe to call again: files are rewritten only when their content changed.
pub fn prepare_volumes(
    pod: &Pod,
    pod_dir: &Path,
    refs: &ObjectRefs,
    fields: &PodFields,
) -> Result<BTreeMap<String, PathBuf>, (String, VolumeError)> {
    let mut out = BTreeMap::new();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let path = prepare_volume(pod, volume, pod_dir, refs, fields)
            .map_err(|e| (volume.name.clone(), e))?;
        out.insert(volume.name.clone(), path);
    }
    Ok(out)
}

fn prepare_volume(
    pod: &Pod,
    volume: &Volume,
    pod_dir: &Path,
    refs: &ObjectRefs,
    fields: &PodFields,
) -> Result<PathBuf, VolumeError> {
    let volumes = pod_dir.join("volumes");
    if volume.empty_dir.is_some() {
        let dir = volumes.join("empty-dir").join(&volume.name);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        // World-writable like Kubernetes, so non-root containers can use it.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
            .map_err(io_err(&dir))?;
        return Ok(dir);
    }
    if let Some(hp) = &volume.host_path {
        return host_path(&hp.path, hp.type_.as_deref().unwrap_or(""));
    }
    if let Some(cm) = &volume.config_map {
        let dir = volumes.join("configmap").join(&volume.name);
        let files = match refs.config_map_data(&cm.name) {
            Some(data) => key_files(&cm.name, &data, cm.items.as_deref(), cm.default_mode)?,
            None if cm.optional == Some(true) => BTreeMap::new(),
            None => return Err(VolumeError::ConfigMapNotFound(cm.name.clone())),
        };
        write_files(&dir, &files).map_err(io_err(&dir))?;
        return Ok(dir);
    }
    if let Some(s) = &volume.secret {
        let name = s.secret_name.clone().unwrap_or_default();
        let dir = volumes.join("secret").join(&volume.name);
        let files = match refs.secret_data(&name) {
            Some(data) => key_files(&name, &data, s.items.as_deref(), s.default_mode)?,
            None if s.optional == Some(true) => BTreeMap::new(),
            None => return Err(VolumeError::SecretNotFound(name)),
        };
        write_files(&dir, &files).map_err(io_err(&dir))?;
        return Ok(dir);
    }
    if let Some(d) = &volume.downward_api {
        let dir = volumes.join("downward-api").join(&volume.name);
        let files = downward_files(
            pod,
            fields,
            d.items.as_deref().unwrap_or(&[]),
            d.default_mode,
        )?;
        write_files(&dir, &files).map_err(io_err(&dir))?;
        return Ok(dir);
    }
    if let Some(p) = &volume.projected {
        let dir = volumes.join("projected").join(&volume.name);
        let mut files = BTreeMap::new();
        for source in p.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                match refs.config_map_data(&cm.name) {
                    Some(data) => files.extend(key_files(
                        &cm.name,
                        &data,
                        cm.items.as_deref(),
                        p.default_mode,
                    )?),
                    None if cm.optional == Some(true) => {}
                    None => return Err(VolumeError::ConfigMapNotFound(cm.name.clone())),
                }
            }
            if let Some(s) = &source.secret {
                match refs.secret_data(&s.name) {
                    Some(data) => files.extend(key_files(
                        &s.name,
                        &data,
                        s.items.as_deref(),
                        p.default_mode,
                    )?),
                    None if s.optional == Some(true) => {}
                    None => return Err(VolumeError::SecretNotFound(s.name.clone())),
                }
            }
            if let Some(d) = &source.downward_api {
                files.extend(downward_files(
                    pod,
                    fields,
                    d.items.as_deref().unwrap_or(&[]),
                    p.default_mode,
                )?);
            }
        }
        write_files(&dir, &files).map_err(io_err(&dir))?;
        return Ok(dir);
    }
    Err(VolumeError::Unsupported(volume.name.clone()))
}

/// Files of a configMap/secret: every key, or just `items` (with their paths and modes).
fn key_files(
    name: &str,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
) -> Result<BTreeMap<String, FileSpec>, VolumeError> {
    let mode = |m: Option<i32>| m.or(default_mode).unwrap_or(0o644) as u32 & 0o7777;
    match items {
        None | Some([]) => Ok(data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    FileSpec {
                        data: v.clone(),
                        mode: mode(None),
                    },
                )
            })
            .collect()),
        Some(items) => items
            .iter()
            .map(|item| {
                let value = data
                    .get(&item.key)
                    .ok_or_else(|| VolumeError::KeyNotFound {
                        name: name.to_owned(),
                        key: item.key.clone(),
                    })?;
                Ok((
                    item.path.clone(),
                    FileSpec {
                        data: value.clone(),
                        mode: mode(item.mode),
                    },
                ))
            })
            .collect(),
    }
}

fn downward_files(
    pod: &Pod,
    fields: &PodFields,
    items: &[DownwardAPIVolumeFile],
    default_mode: Option<i32>,
) -> Result<BTreeMap<String, FileSpec>, VolumeError> {
    let mut out = BTreeMap::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            match f.field_path.as_str() {
                "metadata.labels" => format_map(pod.metadata.labels.as_ref()),
                "metadata.annotations" => format_map(pod.metadata.annotations.as_ref()),
                path => field_value(pod, fields, path)?,
            }
        } else if let Some(r) = &item.resource_field_ref {
            let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
            let wanted = r.container_name.as_deref().unwrap_or_default();
            let container = containers
                .clone()
                .find(|c| c.name == wanted)
                .or_else(|| containers.clone().next())
                .cloned()
                .unwrap_or_default();
            resource_value(
                &container,
                fields,
                &r.resource,
                r.divisor.as_ref().map(|d| d.0.as_str()),
            )?
        } else {
            String::new()
        };
        let mode = item.mode.or(default_mode).unwrap_or(0o644) as u32 & 0o7777;
        out.insert(
            item.path.clone(),
            FileSpec {
                data: value.into_bytes(),
                mode,
            },
        );
    }
    Ok(out)
}

/// Checks (or creates) a hostPath per its `type`.
fn host_path(path: &str, kind: &str) -> Result<PathBuf, VolumeError> {
    let p = PathBuf::from(path);
    let meta = std::fs::metadata(&p);
    let mismatch = || VolumeError::HostPathType {
        path: path.to_owned(),
        kind: kind.to_owned(),
    };
    match kind {
        "" => {}
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(&p).map_err(io_err(&p))?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
                    .map_err(io_err(&p))?;
            } else if !p.is_dir() {
                return Err(mismatch());
            }
        }
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
                }
                std::fs::write(&p, b"").map_err(io_err(&p))?;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))
                    .map_err(io_err(&p))?;
            } else if !p.is_file() {
                return Err(mismatch());
            }
        }
        "Directory" if !p.is_dir() => return Err(mismatch()),
        "File" if !p.is_file() => return Err(mismatch()),
        "Socket" | "CharDevice" | "BlockDevice" => {
            let ft = meta.map_err(|_| mismatch())?.file_type();
            let ok = match kind {
                "Socket" => ft.is_socket(),
                "CharDevice" => ft.is_char_device(),
                _ => ft.is_block_device(),
            };
            if !ok {
                return Err(mismatch());
            }
        }
        _ => {}
    }
    Ok(p)
}

/// Removes everything the kubelet created for a pod (hostPaths are left alone).
pub fn remove_pod_dir(pod_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(pod_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};

    fn pod(volumes: serde_json::Value) -> Pod {
        let json = serde_json::json!({
            "metadata": {"name": "web", "namespace": "team", "uid": "u-1",
                         "labels": {"app": "web", "tier": "front"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                      "resources": {"limits": {"memory": "32Mi"}}}], "volumes": volumes}
        });
        match serde_json::from_value(json) {
            Ok(p) => p,
            Err(e) => panic!("bad test pod: {e}"),
        }
    }

    fn refs() -> ObjectRefs {
        let mut refs = ObjectRefs::default();
        refs.config_maps.insert(
            "cfg".into(),
            ConfigMap {
                data: Some(BTreeMap::from([
                    ("a.conf".to_owned(), "alpha".to_owned()),
                    ("b.conf".to_owned(), "beta".to_owned()),
                ])),
                ..ConfigMap::default()
            },
        );
        refs.secrets.insert(
            "tls".into(),
            Secret {
                data: Some(BTreeMap::from([(
                    "key".to_owned(),
                    ByteString(b"s3cret".to_vec()),
                )])),
                ..Secret::default()
            },
        );
        refs
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0)
    }

    #[test]
    fn writes_config_map_secret_downward_and_projected_files() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let host = tmp.path().join("host/data");
        let p = pod(serde_json::json!([
            {"name": "scratch", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": host.to_string_lossy(), "type": "DirectoryOrCreate"}},
            {"name": "all", "configMap": {"name": "cfg"}},
            {"name": "some", "configMap": {"name": "cfg", "defaultMode": 0o600,
                "items": [{"key": "b.conf", "path": "conf/b"}, {"key": "a.conf", "path": "a", "mode": 0o400}]}},
            {"name": "sec", "secret": {"secretName": "tls", "defaultMode": 0o440}},
            {"name": "info", "downwardAPI": {"items": [
                {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}]}},
            {"name": "proj", "projected": {"defaultMode": 0o640, "sources": [
                {"configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "a"}]}},
                {"secret": {"name": "tls"}},
                {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}
        ]));
        let pod_dir = tmp.path().join("pods/u-1");
        let paths = prepare_volumes(&p, &pod_dir, &refs(), &PodFields::default())
            .map_err(|(v, e)| anyhow::anyhow!("{v}: {e}"))?;
        assert_eq!(mode(&paths["scratch"]), 0o777);
        assert_eq!(paths["host"], host);
        assert!(host.is_dir());
        let all = &paths["all"];
        assert_eq!(std::fs::read_to_string(all.join("a.conf"))?, "alpha");
        assert_eq!(std::fs::read_to_string(all.join("b.conf"))?, "beta");
        assert_eq!(mode(&all.join("a.conf")), 0o644);
        let some = &paths["some"];
        assert_eq!(std::fs::read_to_string(some.join("conf/b"))?, "beta");
        assert_eq!(mode(&some.join("conf/b")), 0o600);
        assert_eq!(mode(&some.join("a")), 0o400);
        assert!(!some.join("a.conf").exists());
        assert_eq!(std::fs::read_to_string(paths["sec"].join("key"))?, "s3cret");
        assert_eq!(mode(&paths["sec"].join("key")), 0o440);
        let info = &paths["info"];
        assert_eq!(std::fs::read_to_string(info.join("name"))?, "web");
        assert_eq!(
            std::fs::read_to_string(info.join("labels"))?,
            "app=\"web\"\ntier=\"front\""
        );
        assert_eq!(std::fs::read_to_string(info.join("mem"))?, "32");
        let proj = &paths["proj"];
        assert_eq!(std::fs::read_to_string(proj.join("a"))?, "alpha");
        assert_eq!(std::fs::read_to_string(proj.join("key"))?, "s3cret");
        assert_eq!(std::fs::read_to_string(proj.join("ns"))?, "team");
        assert_eq!(mode(&proj.join("ns")), 0o640);
        remove_pod_dir(&pod_dir)?;
        assert!(!pod_dir.exists());
        assert!(host.is_dir(), "hostPath survives pod removal");
        Ok(())
    }

    #[test]
    fn missing_objects_and_keys_name_the_volume() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let p = pod(serde_json::json!([{"name": "v", "configMap": {"name": "absent"}}]));
        let err = prepare_volumes(&p, tmp.path(), &refs(), &PodFields::default()).err();
        let Some((volume, e)) = err else {
            panic!("expected an error");
        };
        assert_eq!(volume, "v");
        assert_eq!(e.to_string(), "configmap \"absent\" not found");
        let p = pod(
            serde_json::json!([{"name": "v", "secret": {"secretName": "tls",
            "items": [{"key": "nope", "path": "x"}]}}]),
        );
        assert!(prepare_volumes(&p, tmp.path(), &refs(), &PodFields::default()).is_err());
        let p = pod(
            serde_json::json!([{"name": "v", "configMap": {"name": "absent", "optional": true}}]),
        );
        assert!(prepare_volumes(&p, tmp.path(), &refs(), &PodFields::default()).is_ok());
        let p = pod(
            serde_json::json!([{"name": "v", "hostPath": {"path": "/nonexistent-kerno", "type": "Directory"}}]),
        );
        assert!(prepare_volumes(&p, tmp.path(), &refs(), &PodFields::default()).is_err());
        Ok(())
    }
}
