//! `kerno image import|ls`: images on a node, through its runtime driver's
//! `kerno.runtime.v1` API (the driver's unix socket), so importing works the
//! same whatever runtime driver a node runs.

use std::path::{Path, PathBuf};

use kerno_proto::runtime::v1 as rt;
use kerno_proto::runtime::v1::runtime_client::RuntimeClient;
use tonic::transport::{Channel, Endpoint};

/// Why an image command failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The endpoint is not `unix:///absolute/path`.
    #[error("runtime endpoint {0:?} must be unix:///absolute/path.sock")]
    Endpoint(String),
    /// The archive is not there.
    #[error("image archive {path}: {source}")]
    Archive {
        /// The path given.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
    /// The driver refused or failed.
    #[error("runtime driver at {endpoint}: {message}")]
    Driver {
        /// Where it was reached.
        endpoint: String,
        /// Its message.
        message: String,
    },
}

/// The socket of the node's runtime driver under the supervisor:
/// `DATA_DIR/plugins/sockets/<plugin>.sock`.
pub fn default_endpoint(data_dir: &Path, plugin: &str) -> String {
    format!(
        "unix://{}",
        data_dir
            .join("plugins")
            .join("sockets")
            .join(format!("{plugin}.sock"))
            .display()
    )
}

fn connect(endpoint: &str) -> Result<RuntimeClient<Channel>, ImageError> {
    let socket = endpoint
        .strip_prefix("unix://")
        .filter(|p| p.starts_with('/'))
        .map(PathBuf::from)
        .ok_or_else(|| ImageError::Endpoint(endpoint.to_owned()))?;
    let channel = Endpoint::from_static("http://runtime").connect_with_connector_lazy(
        tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(socket).await?,
                ))
            }
        }),
    );
    Ok(RuntimeClient::new(channel))
}

fn driver_error(endpoint: &str, status: &tonic::Status) -> ImageError {
    ImageError::Driver {
        endpoint: endpoint.to_owned(),
        message: status.message().to_owned(),
    }
}

/// Imports an OCI or Docker image archive into the node's runtime.
pub async fn import(endpoint: &str, archive: &Path) -> Result<Vec<rt::Image>, ImageError> {
    let archive_err = |source| ImageError::Archive {
        path: archive.to_owned(),
        source,
    };
    // The driver opens the file itself: give it an absolute path.
    let absolute = std::fs::canonicalize(archive).map_err(archive_err)?;
    let mut client = connect(endpoint)?;
    let reply = client
        .import_image(rt::ImportImageRequest {
            path: absolute.display().to_string(),
        })
        .await
        .map_err(|s| driver_error(endpoint, &s))?;
    Ok(reply.into_inner().images)
}

/// The images the node's runtime has.
pub async fn list(endpoint: &str) -> Result<Vec<rt::Image>, ImageError> {
    let mut client = connect(endpoint)?;
    let reply = client
        .list_images(rt::Empty {})
        .await
        .map_err(|s| driver_error(endpoint, &s))?;
    Ok(reply.into_inner().items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_unix_sockets() {
        assert_eq!(
            default_endpoint(Path::new("/d"), "cri-containerd"),
            "unix:///d/plugins/sockets/cri-containerd.sock"
        );
        assert!(matches!(
            connect("tcp://127.0.0.1:1"),
            Err(ImageError::Endpoint(_))
        ));
        assert!(matches!(
            connect("unix://rel.sock"),
            Err(ImageError::Endpoint(_))
        ));
    }

    #[tokio::test]
    async fn a_missing_archive_is_reported_before_dialing() {
        let Err(err) = import("unix:///nonexistent/x.sock", Path::new("/nonexistent.tar")).await
        else {
            panic!("import of a missing file succeeded");
        };
        assert!(
            err.to_string()
                .starts_with("image archive /nonexistent.tar:"),
            "{err}"
        );
    }
}
