//! Images: names as Kubernetes users write them, what the driver needs from
//! an image (its config and the snapshot its layers unpack to), listing, and
//! import of archives.
//!
//! Import shells out to `ctr images import`: containerd 1.6 has no import or
//! transfer API over gRPC (`ctr` does the import client-side: writing blobs
//! to the content store and unpacking layers through the diff service), and
//! reimplementing that is not worth it for a node-local test path.

use std::path::Path;

use containerd_client::services::v1::{
    DeleteImageRequest, GetImageRequest, Image as CdImage, ListImagesRequest,
};
use kerno_proto::runtime::v1 as pb;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::backend::Containerd;
use crate::error::{Error, Result};

/// The fully qualified form of a Docker-style reference, as containerd's CRI
/// stores it: `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize(reference: &str) -> String {
    let (name, suffix) = match reference.find('@') {
        Some(at) => (&reference[..at], &reference[at..]),
        None => (reference, ""),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tagged = last.contains(':');
    let mut parts = name.splitn(2, '/');
    let first = parts.next().unwrap_or_default();
    let qualified = match parts.next() {
        Some(_) if first.contains('.') || first.contains(':') || first == "localhost" => {
            name.to_owned()
        }
        Some(_) => format!("docker.io/{name}"),
        None => format!("docker.io/library/{name}"),
    };
    if tagged || !suffix.is_empty() {
        format!("{qualified}{suffix}")
    } else {
        format!("{qualified}:latest")
    }
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    config: Option<RunConfig>,
    rootfs: RootFs,
}

#[derive(Deserialize, Default)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// What the image says about how to run it.
#[derive(Deserialize, Default, Clone, Debug)]
pub struct RunConfig {
    /// `Entrypoint`.
    #[serde(rename = "Entrypoint", default)]
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    #[serde(rename = "Cmd", default)]
    pub cmd: Option<Vec<String>>,
    /// `Env` as `K=V`.
    #[serde(rename = "Env", default)]
    pub env: Option<Vec<String>>,
    /// `WorkingDir`.
    #[serde(rename = "WorkingDir", default)]
    pub working_dir: Option<String>,
    /// `User`.
    #[serde(rename = "User", default)]
    pub user: Option<String>,
}

/// An image resolved in containerd.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The name containerd knows it by.
    pub name: String,
    /// The config's digest (the image id).
    pub id: String,
    /// Sum of the layer sizes.
    pub size: u64,
    /// How to run it.
    pub run: RunConfig,
    /// The chain id of its top layer: the parent snapshot of containers.
    pub chain_id: String,
}

/// The OCI chain id of a list of layer diff ids.
pub fn chain_id(diff_ids: &[String]) -> String {
    let mut chain = String::new();
    for diff in diff_ids {
        if chain.is_empty() {
            chain = diff.clone();
        } else {
            let hash = Sha256::digest(format!("{chain} {diff}").as_bytes());
            chain = format!("sha256:{}", hex::encode(hash));
        }
    }
    chain
}

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

impl Containerd {
    async fn get_image(&self, name: &str) -> Result<Option<CdImage>> {
        match self
            .images()
            .get(self.req(GetImageRequest {
                name: name.to_owned(),
            }))
            .await
        {
            Ok(resp) => Ok(resp.into_inner().image),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(self.err("get image", s)),
        }
    }

    /// Finds an image by the name as written or its normalized form.
    pub async fn find_image(&self, reference: &str) -> Result<Option<CdImage>> {
        if let Some(image) = self.get_image(reference).await? {
            return Ok(Some(image));
        }
        let normalized = normalize(reference);
        if normalized != reference {
            return self.get_image(&normalized).await;
        }
        Ok(None)
    }

    /// Resolves an image to its config and top snapshot, or NOT_FOUND.
    pub async fn resolve_image(&self, reference: &str) -> Result<ResolvedImage> {
        let image = self
            .find_image(reference)
            .await?
            .ok_or_else(|| Error::ImageNotPresent(reference.to_owned()))?;
        self.describe(&image).await
    }

    async fn describe(&self, image: &CdImage) -> Result<ResolvedImage> {
        let target = image
            .target
            .as_ref()
            .ok_or_else(|| Error::Internal(format!("image {} has no target", image.name)))?;
        let mut manifest_digest = target.digest.clone();
        if INDEX_TYPES.contains(&target.media_type.as_str()) {
            let index: Index = parse(&self.read_blob(&target.digest).await?, &image.name)?;
            let chosen = index
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == host_arch())
                })
                .or_else(|| index.manifests.first())
                .ok_or_else(|| Error::Internal(format!("image {} has no manifest", image.name)))?;
            let _ = &chosen.media_type;
            manifest_digest = chosen.digest.clone();
        }
        let manifest: Manifest = parse(&self.read_blob(&manifest_digest).await?, &image.name)?;
        let config: ConfigFile =
            parse(&self.read_blob(&manifest.config.digest).await?, &image.name)?;
        Ok(ResolvedImage {
            name: image.name.clone(),
            id: manifest.config.digest.clone(),
            size: manifest.layers.iter().map(|l| l.size).sum(),
            run: config.config.unwrap_or_default(),
            chain_id: chain_id(&config.rootfs.diff_ids),
        })
    }

    /// The image as the runtime protocol shows it, if present.
    pub async fn image_status(&self, reference: &str) -> Result<Option<pb::Image>> {
        let Some(image) = self.find_image(reference).await? else {
            return Ok(None);
        };
        let resolved = self.describe(&image).await?;
        let tags = self.tags_of(&resolved.id).await?;
        Ok(Some(pb::Image {
            id: resolved.id,
            repo_tags: tags,
            size_bytes: resolved.size,
        }))
    }

    async fn all_images(&self) -> Result<Vec<CdImage>> {
        Ok(self
            .images()
            .list(self.req(ListImagesRequest { filters: vec![] }))
            .await
            .map_err(|s| self.err("list images", s))?
            .into_inner()
            .images)
    }

    async fn tags_of(&self, id: &str) -> Result<Vec<String>> {
        let mut tags = Vec::new();
        for image in self.all_images().await? {
            if let Ok(r) = self.describe(&image).await
                && r.id == id
            {
                tags.push(image.name);
            }
        }
        tags.sort();
        Ok(tags)
    }

    /// Every image, grouped by id.
    pub async fn list_images(&self) -> Result<Vec<pb::Image>> {
        let mut by_id: Vec<pb::Image> = Vec::new();
        for image in self.all_images().await? {
            let Ok(r) = self.describe(&image).await else {
                continue;
            };
            match by_id.iter_mut().find(|i| i.id == r.id) {
                Some(existing) => existing.repo_tags.push(image.name),
                None => by_id.push(pb::Image {
                    id: r.id,
                    repo_tags: vec![image.name],
                    size_bytes: r.size,
                }),
            }
        }
        Ok(by_id)
    }

    /// Removes every name of the image.
    pub async fn remove_image(&self, reference: &str) -> Result<()> {
        let Some(image) = self.find_image(reference).await? else {
            return Ok(());
        };
        let id = self.describe(&image).await?.id;
        for name in self.tags_of(&id).await? {
            self.images()
                .delete(self.req(DeleteImageRequest {
                    name,
                    sync: false,
                    target: None,
                }))
                .await
                .map_err(|s| self.err("delete image", s))?;
        }
        Ok(())
    }

    /// Imports an OCI or Docker archive with `ctr`, then lists what it holds.
    pub async fn import_archive(&self, path: &Path) -> Result<Vec<pb::Image>> {
        if !path.is_file() {
            return Err(Error::NotFound(format!(
                "image archive {} does not exist",
                path.display()
            )));
        }
        self.server_version().await?;
        let before: Vec<String> = self
            .all_images()
            .await?
            .into_iter()
            .map(|i| i.name)
            .collect();
        let out = tokio::process::Command::new("ctr")
            .arg("--address")
            .arg(&self.address)
            .args(["--namespace", &self.namespace, "images", "import"])
            .arg(path)
            .output()
            .await
            .map_err(|e| Error::io("running ctr images import", e))?;
        if !out.status.success() {
            return Err(Error::InvalidArgument(format!(
                "importing {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let mut imported = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // `ctr` prints "unpacking NAME (sha256:...)...done".
            if let Some(rest) = line.strip_prefix("unpacking ")
                && let Some(name) = rest.split(' ').next()
                && let Some(image) = self.image_status(name).await?
            {
                imported.push(image);
            }
        }
        if imported.is_empty() {
            for image in self.all_images().await? {
                if !before.contains(&image.name)
                    && let Some(i) = self.image_status(&image.name).await?
                {
                    imported.push(i);
                }
            }
        }
        imported.dedup_by(|a, b| a.id == b.id);
        Ok(imported)
    }
}

fn parse<T: for<'de> Deserialize<'de>>(data: &[u8], image: &str) -> Result<T> {
    serde_json::from_slice(data)
        .map_err(|e| Error::Internal(format!("image {image}: malformed metadata: {e}")))
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalize_like_docker() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normalize("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(normalize("me/app"), "docker.io/me/app:latest");
        assert_eq!(
            normalize("registry.local:5000/app"),
            "registry.local:5000/app:latest"
        );
        assert_eq!(
            normalize("busybox@sha256:abc"),
            "docker.io/library/busybox@sha256:abc"
        );
    }

    #[test]
    fn chain_ids_follow_the_oci_rule() {
        let a = "sha256:aaa".to_owned();
        let b = "sha256:bbb".to_owned();
        assert_eq!(chain_id(std::slice::from_ref(&a)), a);
        let expected = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(b"sha256:aaa sha256:bbb"))
        );
        assert_eq!(chain_id(&[a, b]), expected);
    }
}
