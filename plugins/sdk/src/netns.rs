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
    async fn the_own_namespace_can_be_entered() {
        // Entering the namespace the process is already in needs only
        // CAP_SYS_ADMIN; without it setns fails and that is what we see.
        let result = in_network_namespace(PathBuf::from("/proc/self/ns/net"), || Ok(7)).await;
        match result {
            Ok(v) => assert_eq!(v, 7),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied),
        }
    }
}
