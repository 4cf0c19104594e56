//! Atomically updated file sets (configMap, secret, downwardAPI, projected
//! volumes), the way Kubernetes does it: the files live in a timestamped
//! directory `..<n>`, a symlink `..data` points at the current one and each
//! user-visible name is a symlink through `..data`. A container reading the
//! volume sees either the old or the new set, never a mix, and the volume
//! directory itself (the bind mount) stays the same.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

/// One file: contents and permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// The contents.
    pub data: Vec<u8>,
    /// Permission bits, e.g. 0o644.
    pub mode: u32,
}

/// Makes `dir` hold exactly `files` (relative paths); does nothing when it already does.
pub fn write_files(dir: &Path, files: &BTreeMap<String, FileSpec>) -> io::Result<()> {
    for path in files.keys() {
        check_relative(path)?;
    }
    std::fs::create_dir_all(dir)?;
    let data_link = dir.join("..data");
    if let Ok(current) = std::fs::read_link(&data_link)
        && holds_exactly(&dir.join(&current), files)
    {
        return Ok(());
    }
    let stamp = format!("..{}", unique_suffix());
    let staging = dir.join(&stamp);
    std::fs::create_dir_all(&staging)?;
    for (path, spec) in files {
        let target = staging.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, &spec.data)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(spec.mode))?;
    }
    let old = std::fs::read_link(&data_link).ok();
    let tmp_link = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp_link);
    symlink(&stamp, &tmp_link)?;
    std::fs::rename(&tmp_link, &data_link)?;
    // User-visible names: the first component of each path, through ..data.
    let wanted: BTreeSet<String> = files
        .keys()
        .filter_map(|p| p.split('/').next().map(str::to_owned))
        .collect();
    for name in &wanted {
        let link = dir.join(name);
        if std::fs::read_link(&link).ok().as_deref() != Some(Path::new(&format!("..data/{name}"))) {
            let _ = std::fs::remove_file(&link);
            symlink(format!("..data/{name}"), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("..") && !wanted.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    if let Some(old) = old
        && old != Path::new(&stamp)
    {
        let _ = std::fs::remove_dir_all(dir.join(old));
    }
    Ok(())
}

fn check_relative(path: &str) -> io::Result<()> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && !path.starts_with("..")
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid path {path:?}: must be relative without '..'"),
        ))
    }
}

fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{nanos}_{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Whether `root` holds exactly `files` with their contents and modes.
fn holds_exactly(root: &Path, files: &BTreeMap<String, FileSpec>) -> bool {
    let mut found = Vec::new();
    if list_files(root, PathBuf::new(), &mut found).is_err() || found.len() != files.len() {
        return false;
    }
    files.iter().all(|(path, spec)| {
        let p = root.join(path);
        let mode_ok = std::fs::metadata(&p)
            .map(|m| m.permissions().mode() & 0o7777 == spec.mode)
            .unwrap_or(false);
        mode_ok && std::fs::read(&p).map(|d| d == spec.data).unwrap_or(false)
    })
}

fn list_files(root: &Path, rel: PathBuf, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(root.join(&rel))? {
        let entry = entry?;
        let path = rel.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            list_files(root, path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(data: &str, mode: u32) -> FileSpec {
        FileSpec {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    #[test]
    fn swaps_file_sets_atomically_and_drops_stale_names() -> io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("vol");
        let first = BTreeMap::from([
            ("a".to_owned(), spec("1", 0o644)),
            ("sub/b".to_owned(), spec("2", 0o400)),
        ]);
        write_files(&dir, &first)?;
        assert_eq!(std::fs::read_to_string(dir.join("a"))?, "1");
        assert_eq!(std::fs::read_to_string(dir.join("sub/b"))?, "2");
        let before = std::fs::read_link(dir.join("..data"))?;
        write_files(&dir, &first)?;
        assert_eq!(
            std::fs::read_link(dir.join("..data"))?,
            before,
            "no rewrite when equal"
        );
        let second = BTreeMap::from([("c".to_owned(), spec("3", 0o600))]);
        write_files(&dir, &second)?;
        assert!(!dir.join("a").exists());
        assert!(!dir.join(&before).exists(), "old generation removed");
        assert_eq!(std::fs::read_to_string(dir.join("c"))?, "3");
        let mode = std::fs::metadata(dir.join("c"))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let bad = BTreeMap::from([("../x".to_owned(), spec("x", 0o644))]);
        assert!(write_files(&dir, &bad).is_err());
        Ok(())
    }
}
