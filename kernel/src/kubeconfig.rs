//! Kubeconfig files for kubectl and other Kubernetes clients: the admin
//! kubeconfig the kernel writes to `DATA/kubeconfig.yaml` on start, and the
//! generic writers behind it (client certificate or bearer token).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;

use crate::auth::tls::{ADMIN_USER, Pki, write_private_file};

/// Name of the cluster and of the context in written kubeconfigs.
pub const CLUSTER_NAME: &str = "kerno";
/// File name of the admin kubeconfig inside the data directory.
pub const ADMIN_KUBECONFIG: &str = "kubeconfig.yaml";

/// Errors of writing a kubeconfig.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be encoded.
    #[error("cannot encode kubeconfig")]
    Encode(#[from] serde_yaml::Error),
    /// The file could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the user of a kubeconfig authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Credentials<'a> {
    /// A client certificate and its key, both PEM.
    ClientCert {
        /// Certificate (PEM).
        cert_pem: &'a str,
        /// Private key (PEM).
        key_pem: &'a str,
    },
    /// A bearer token.
    Token(&'a str),
}

/// The `https://host:port` URL clients use for a listen address. Wildcard
/// addresses (`0.0.0.0`, `[::]`) become `127.0.0.1`, which the serving
/// certificate always covers; host names are kept as they are.
pub fn server_url(listen: &str) -> String {
    let host_port = match listen.parse::<SocketAddr>() {
        Ok(addr) if addr.ip().is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        // SocketAddr's Display brackets IPv6 addresses as URLs need.
        Ok(addr) => addr.to_string(),
        Err(_) => listen.to_string(),
    };
    format!("https://{host_port}")
}

/// Writes the admin kubeconfig `DATA/kubeconfig.yaml` (user `kerno-admin` with
/// the admin client certificate of `pki`) for a kernel listening on `listen`,
/// and returns its path.
pub fn write_admin_kubeconfig(data_dir: &Path, listen: &str, pki: &Pki) -> Result<PathBuf> {
    let path = data_dir.join(ADMIN_KUBECONFIG);
    write_kubeconfig(
        &path,
        &server_url(listen),
        pki.ca_cert_pem(),
        ADMIN_USER,
        pki.admin_cert_pem(),
        pki.admin_key_pem(),
    )?;
    Ok(path)
}

/// Writes a kubeconfig (mode 0600) for `user` authenticating with a client
/// certificate against the cluster at `server` (a URL) trusting `ca_pem`.
pub fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: &str,
    user: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<()> {
    let creds = Credentials::ClientCert { cert_pem, key_pem };
    write(path, &render(server, ca_pem, user, creds)?)
}

/// Writes a kubeconfig (mode 0600) for `user` authenticating with a bearer
/// `token` against the cluster at `server` trusting `ca_pem`.
pub fn write_token_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: &str,
    user: &str,
    token: &str,
) -> Result<()> {
    write(
        path,
        &render(server, ca_pem, user, Credentials::Token(token))?,
    )
}

/// The YAML text of a kubeconfig with one cluster (`kerno`), one user and one
/// context (`kerno`, also the current context).
pub fn render(server: &str, ca_pem: &str, user: &str, creds: Credentials<'_>) -> Result<String> {
    let auth = match creds {
        Credentials::ClientCert { cert_pem, key_pem } => AuthInfo {
            client_certificate_data: Some(BASE64.encode(cert_pem)),
            client_key_data: Some(BASE64.encode(key_pem)),
            token: None,
        },
        Credentials::Token(token) => AuthInfo {
            client_certificate_data: None,
            client_key_data: None,
            token: Some(token.to_string()),
        },
    };
    let config = Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: vec![Named {
            name: CLUSTER_NAME,
            cluster: Cluster {
                server,
                certificate_authority_data: BASE64.encode(ca_pem),
            },
        }],
        users: vec![NamedUser {
            name: user,
            user: auth,
        }],
        contexts: vec![NamedContext {
            name: CLUSTER_NAME,
            context: Context {
                cluster: CLUSTER_NAME,
                user,
            },
        }],
        current_context: CLUSTER_NAME,
        preferences: Preferences {},
    };
    Ok(serde_yaml::to_string(&config)?)
}

fn write(path: &Path, text: &str) -> Result<()> {
    write_private_file(path, text.as_bytes()).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

// The kubeconfig schema (clientcmd v1), only the fields kerno writes.

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: Vec<Named<'a>>,
    users: Vec<NamedUser<'a>>,
    contexts: Vec<NamedContext<'a>>,
    current_context: &'a str,
    preferences: Preferences,
}

#[derive(Serialize)]
struct Preferences {}

#[derive(Serialize)]
struct Named<'a> {
    name: &'a str,
    cluster: Cluster<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Cluster<'a> {
    server: &'a str,
    certificate_authority_data: String,
}

#[derive(Serialize)]
struct NamedUser<'a> {
    name: &'a str,
    user: AuthInfo,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct AuthInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    client_certificate_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_key_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

#[derive(Serialize)]
struct NamedContext<'a> {
    name: &'a str,
    context: Context<'a>,
}

#[derive(Serialize)]
struct Context<'a> {
    cluster: &'a str,
    user: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    fn decode(value: &serde_yaml::Value) -> String {
        let text = value.as_str().unwrap();
        String::from_utf8(BASE64.decode(text).unwrap()).unwrap()
    }

    #[test]
    fn server_url_replaces_wildcards_and_brackets_ipv6() {
        assert_eq!(server_url("0.0.0.0:6443"), "https://127.0.0.1:6443");
        assert_eq!(server_url("[::]:7000"), "https://127.0.0.1:7000");
        assert_eq!(server_url("[::1]:6443"), "https://[::1]:6443");
        assert_eq!(server_url("10.0.0.5:443"), "https://10.0.0.5:443");
        assert_eq!(server_url("kerno.local:6443"), "https://kerno.local:6443");
    }

    #[test]
    fn admin_kubeconfig_has_cluster_user_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let path = write_admin_kubeconfig(dir.path(), "0.0.0.0:6443", &pki).unwrap();
        assert_eq!(path, dir.path().join("kubeconfig.yaml"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["kind"], "Config");
        assert_eq!(doc["current-context"], "kerno");
        let cluster = &doc["clusters"][0];
        assert_eq!(cluster["name"], "kerno");
        assert_eq!(cluster["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(
            decode(&cluster["cluster"]["certificate-authority-data"]),
            pki.ca_cert_pem()
        );
        let user = &doc["users"][0];
        assert_eq!(user["name"], "kerno-admin");
        assert_eq!(
            decode(&user["user"]["client-certificate-data"]),
            pki.admin_cert_pem()
        );
        assert_eq!(
            decode(&user["user"]["client-key-data"]),
            pki.admin_key_pem()
        );
        assert!(user["user"].get("token").is_none());
        let context = &doc["contexts"][0];
        assert_eq!(context["name"], "kerno");
        assert_eq!(context["context"]["cluster"], "kerno");
        assert_eq!(context["context"]["user"], "kerno-admin");
    }

    #[test]
    fn token_kubeconfig_has_token_and_no_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugin.yaml");
        write_token_kubeconfig(&path, "https://[::1]:6443", "CA PEM", "plugin-x", "s3cret")
            .unwrap();
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(doc["users"][0]["name"], "plugin-x");
        assert_eq!(doc["users"][0]["user"]["token"], "s3cret");
        assert!(doc["users"][0]["user"].get("client-key-data").is_none());
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://[::1]:6443"
        );
        assert_eq!(doc["contexts"][0]["context"]["user"], "plugin-x");
    }

    /// kubectl itself must accept the file: `config view --raw` parses and
    /// re-prints it, including the embedded credentials.
    #[test]
    fn kubectl_accepts_the_admin_kubeconfig() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let path = write_admin_kubeconfig(dir.path(), "127.0.0.1:6443", &pki).unwrap();
        let output = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&path)
            .args(["config", "view", "--raw", "-o", "json"])
            .output()
            .expect("kubectl is installed at /usr/bin/kubectl on build machines");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "kubectl failed: {stderr}");
        let view: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(view["current-context"], "kerno");
        assert_eq!(
            view["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(view["users"][0]["name"], "kerno-admin");
        let key = view["users"][0]["user"]["client-key-data"]
            .as_str()
            .unwrap();
        assert_eq!(BASE64.decode(key).unwrap(), pki.admin_key_pem().as_bytes());

        let current = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&path)
            .args(["config", "current-context"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&current.stdout).trim(), "kerno");
    }
}
