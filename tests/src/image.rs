//! The test image: an OCI image archive built at test time from the node's
//! static busybox (Debian `busybox-static`), with no download.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// Where the static busybox comes from.
pub const BUSYBOX: &str = "/bin/busybox";

/// The names the image is imported under.
pub const BUSYBOX_IMAGE: &str = "docker.io/library/busybox:latest";

/// Applets linked into `/bin`.
const APPLETS: [&str; 34] = [
    "sh", "ash", "sleep", "httpd", "wget", "hostname", "cat", "echo", "nslookup", "env", "ls",
    "ps", "kill", "mkdir", "rm", "cp", "mv", "touch", "grep", "head", "tail", "id", "true",
    "false", "test", "date", "dd", "nc", "ip", "ifconfig", "printf", "seq", "yes", "wc",
];

fn sha256(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

fn layer_tar() -> Result<Vec<u8>> {
    let busybox = std::fs::read(BUSYBOX).with_context(|| {
        format!(
            "{BUSYBOX} is missing: install Debian's busybox-static (apt-get install busybox-static)"
        )
    })?;
    let mut tar = tar::Builder::new(Vec::new());
    let dir = |path: &str, mode: u32, tar: &mut tar::Builder<Vec<u8>>| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_data(&mut h, path, std::io::empty())?;
        Ok(())
    };
    for d in [
        "bin/", "etc/", "root/", "proc/", "sys/", "dev/", "var/", "var/www/", "home/",
    ] {
        dir(d, 0o755, &mut tar)?;
    }
    dir("tmp/", 0o1777, &mut tar)?;
    let file =
        |path: &str, mode: u32, data: &[u8], tar: &mut tar::Builder<Vec<u8>>| -> Result<()> {
            let mut h = tar::Header::new_gnu();
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            h.set_mtime(0);
            tar.append_data(&mut h, path, data)?;
            Ok(())
        };
    file("bin/busybox", 0o755, &busybox, &mut tar)?;
    file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        &mut tar,
    )?;
    file(
        "etc/group",
        0o644,
        b"root:x:0:\nnogroup:x:65534:\n",
        &mut tar,
    )?;
    for applet in APPLETS {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        tar.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    Ok(tar.into_inner()?)
}

/// Writes the busybox OCI archive to `dir/busybox.tar` and returns its path.
/// The index names it `docker.io/library/busybox:latest` (the form `busybox`
/// normalizes to) and `busybox:latest`.
pub fn build_busybox_image(dir: &Path) -> Result<PathBuf> {
    let layer = layer_tar()?;
    let layer_digest = sha256(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a },
        "os": "linux",
        "config": {
            "Cmd": ["sh"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    }))?;
    let config_digest = sha256(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": format!("sha256:{config_digest}"),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{layer_digest}"),
            "size": layer.len(),
        }],
    }))?;
    let manifest_digest = sha256(&manifest);
    let entry = |name: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"),
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": "latest",
            },
        })
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [entry(BUSYBOX_IMAGE), entry("busybox:latest")],
    }))?;

    let path = dir.join("busybox.tar");
    let out =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut tar = tar::Builder::new(out);
    let mut add = |name: &str, data: &[u8]| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        tar.append_data(&mut h, name, data)?;
        Ok(())
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add("index.json", &index)?;
    add(&format!("blobs/sha256/{layer_digest}"), &layer)?;
    add(&format!("blobs/sha256/{config_digest}"), &config)?;
    add(&format!("blobs/sha256/{manifest_digest}"), &manifest)?;
    tar.into_inner()?.flush()?;
    if std::fs::metadata(&path)?.len() == 0 {
        bail!("empty image archive {}", path.display());
    }
    Ok(path)
}
