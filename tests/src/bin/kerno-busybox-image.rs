//! `kerno-busybox-image [DIR]`: writes the busybox OCI image archive the
//! tests use (`DIR/busybox.tar`, from Debian's `busybox-static`, nothing
//! downloaded) and prints its path, for `kerno image import` on a real node.

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ".".into());
    std::fs::create_dir_all(&dir)?;
    let path = kerno_tests::image::build_busybox_image(&dir)?;
    println!("{}", path.display());
    Ok(())
}
