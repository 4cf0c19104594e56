//! Making sockets inside another network namespace, for plugins that talk
//! to the kernel from their own namespace but serve or connect in a node's
//! or a pod's (a socket stays in the namespace it was made in).

use std::path::PathBuf;

/// Runs `make` on a short-lived thread that first enters the network
/// namespace at `path` (`setns` changes only the calling thread, so the
/// runtime's threads stay where they are) and returns what it made.
pub async fn in_network_namespace<T, F>(path: PathBuf, make: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    let (done, made) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = std::fs::File::open(&path).and_then(|netns| {
            nix::sched::setns(&netns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            make()
        });
        let _ = done.send(result);
    });
    made.await
        .map_err(|_| std::io::Error::other("the namespace thread ended"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_namespace_is_an_error() {
        let err = in_network_namespace(PathBuf::from("/nonexistent/netns"), || Ok(()))
            .await
            .expect_err("no such namespace");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn the_thread_runs_inside_the_namespace() {
        // The process's own namespace (entering it needs CAP_SYS_ADMIN, which
        // the test runs, as root, have): the closure runs there and its
        // result comes back.
        let inode = |p: &str| std::fs::metadata(p).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
        let own = inode("/proc/self/ns/net").expect("own namespace");
        let seen = in_network_namespace(PathBuf::from("/proc/self/ns/net"), move || {
            inode("/proc/thread-self/ns/net")
        })
        .await
        .expect("setns into the own namespace");
        assert_eq!(seen, own);
    }
}
