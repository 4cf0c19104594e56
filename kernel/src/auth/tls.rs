//! The cluster's TLS identity: a CA, the kernel's serving certificate, the admin
//! client certificate, the rustls server configuration, and the identity of a
//! client that presented a certificate.
//!
//! Everything lives in `DATA/pki/`. The CA is created once and never replaced
//! silently (that would invalidate every kubeconfig and plugin certificate);
//! leaf certificates are re-issued when their SANs change, when they come close
//! to expiry, or when they no longer chain to the CA.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;

mod certs;

use certs::{
    LeafSpec, cert_der, client_params, issue, issuer_from_pem, key_der, load_or_create_ca,
    requested_sans,
};

/// Common name of the cluster CA.
pub const CA_COMMON_NAME: &str = "kerno-ca";
/// Common name (user) of the admin client certificate.
pub const ADMIN_USER: &str = "kerno-admin";
/// Group of the admin client certificate; RBAC treats it as cluster-admin.
pub const ADMIN_GROUP: &str = "system:masters";
/// Common name of the kernel's serving certificate.
const SERVER_COMMON_NAME: &str = "kerno-apiserver";

/// Names every serving certificate carries, so in-cluster clients and local
/// tools can reach the kernel under the names Kubernetes uses.
pub const DEFAULT_SANS: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// Errors of the PKI and TLS set-up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A certificate or key file does not hold what it should.
    #[error("invalid {what} in {path}")]
    Invalid {
        /// What was expected (certificate, private key).
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// Only one of the CA certificate and key exists.
    #[error(
        "{present} exists but {missing} does not; restore it or remove both to create a new CA"
    )]
    IncompleteCa {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// A requested subject alternative name is neither an IP address nor a DNS name.
    #[error("invalid subject alternative name {0:?}")]
    InvalidSan(String),
    /// rcgen can encode at most two organization (group) attributes.
    #[error("a client certificate carries at most 2 groups, got {0}")]
    TooManyGroups(usize),
    /// Certificate generation failed.
    #[error("cannot generate {what}")]
    Generate {
        /// The certificate or key being generated.
        what: &'static str,
        /// The cause.
        #[source]
        source: rcgen::Error,
    },
    /// The rustls configuration could not be built.
    #[error("cannot build the TLS configuration")]
    Rustls(#[from] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("cannot build the client certificate verifier")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// Result of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The cluster's certificates and keys, as PEM, loaded from or created in `DATA/pki/`.
#[derive(Clone)]
pub struct Pki {
    dir: PathBuf,
    ca_cert: String,
    ca_key: String,
    server_cert: String,
    server_key: String,
    admin_cert: String,
    admin_key: String,
}

impl fmt::Debug for Pki {
    // Keys stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Loads the PKI of `data_dir`, creating what is missing: the CA on first
    /// start, the serving certificate when its SANs differ from [`DEFAULT_SANS`]
    /// plus `extra_sans` (IPs or DNS names; unspecified addresses such as
    /// `0.0.0.0` are skipped), and leaf certificates near expiry.
    pub fn load_or_create(data_dir: &Path, extra_sans: &[String]) -> Result<Pki> {
        let dir = data_dir.join("pki");
        fs::create_dir_all(&dir).map_err(|source| Error::Write {
            path: dir.clone(),
            source,
        })?;
        let sans = requested_sans(extra_sans)?;

        let (ca_cert, ca_key) = load_or_create_ca(&dir)?;
        let issuer = issuer_from_pem(&dir, &ca_cert, &ca_key)?;
        let ca_der = cert_der(&dir.join("ca.crt"), &ca_cert)?;

        let server = LeafSpec {
            stem: "server",
            what: "serving certificate",
            common_name: SERVER_COMMON_NAME,
            groups: &[],
            sans: Some(&sans),
        };
        let (server_cert, server_key) = server.load_or_issue(&dir, &issuer, &ca_der)?;
        let admin_groups = [ADMIN_GROUP.to_string()];
        let admin = LeafSpec {
            stem: "admin",
            what: "admin client certificate",
            common_name: ADMIN_USER,
            groups: &admin_groups,
            sans: None,
        };
        let (admin_cert, admin_key) = admin.load_or_issue(&dir, &issuer, &ca_der)?;

        Ok(Pki {
            dir,
            ca_cert,
            ca_key,
            server_cert,
            server_key,
            admin_cert,
            admin_key,
        })
    }

    /// The `DATA/pki` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate (PEM), what clients trust.
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert
    }

    /// The serving certificate (PEM).
    pub fn server_cert_pem(&self) -> &str {
        &self.server_cert
    }

    /// The serving certificate's private key (PEM).
    pub fn server_key_pem(&self) -> &str {
        &self.server_key
    }

    /// The admin client certificate (PEM): user `kerno-admin`, group `system:masters`.
    pub fn admin_cert_pem(&self) -> &str {
        &self.admin_cert
    }

    /// The admin client certificate's private key (PEM).
    pub fn admin_key_pem(&self) -> &str {
        &self.admin_key
    }

    /// Issues a client certificate signed by the CA for user `cn` in `groups`
    /// (at most two, a limit of rcgen), valid for a year. Returns `(cert_pem, key_pem)`.
    pub fn issue_client_cert(&self, cn: &str, groups: &[String]) -> Result<(String, String)> {
        let issuer = issuer_from_pem(&self.dir, &self.ca_cert, &self.ca_key)?;
        let params = client_params(cn, groups)?;
        issue(&params, &issuer, "client certificate")
    }

    /// The rustls server configuration of the kernel's port: the serving
    /// certificate, ALPN `h2` and `http/1.1`, and client certificates that are
    /// optional but verified against the CA when presented (requests without
    /// one authenticate by other means, such as bearer tokens).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        // An explicit provider, so the process-wide default (which panics when
        // several are compiled in) is never consulted.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.add(cert_der(&self.dir.join("ca.crt"), &self.ca_cert)?)?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()?;
        let cert = cert_der(&self.dir.join("server.crt"), &self.server_cert)?;
        let key = key_der(&self.dir.join("server.key"), &self.server_key)?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert], key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The user a verified client certificate names: the subject's CN is the user
/// and its O attributes are the groups, as in Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// The user name (subject common name).
    pub user: String,
    /// The groups (subject organizations).
    pub groups: Vec<String>,
}

/// Issues a client certificate for user `cn` in `groups` with the CA of an
/// existing `data_dir` (what `kerno certs issue` does), leaving every other
/// file alone. Returns `(ca_pem, cert_pem, key_pem)`.
pub fn issue_client_cert_with_ca(
    data_dir: &Path,
    cn: &str,
    groups: &[String],
) -> Result<(String, String, String)> {
    let dir = data_dir.join("pki");
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read_to_string(&path).map_err(|source| Error::Read { path, source })
    };
    let (ca_cert, ca_key) = (read("ca.crt")?, read("ca.key")?);
    let issuer = issuer_from_pem(&dir, &ca_cert, &ca_key)?;
    let params = client_params(cn, groups)?;
    let (cert, key) = issue(&params, &issuer, "client certificate")?;
    Ok((ca_cert, cert, key))
}

/// The identity of the client of `conn`, if it presented a certificate.
/// rustls exposes peer certificates only after the verifier of
/// [`Pki::server_config`] accepted them, so the result is trustworthy.
pub fn peer_identity(conn: &rustls::ServerConnection) -> Option<CertIdentity> {
    conn.peer_certificates().and_then(identity_from_certs)
}

/// The identity in the end-entity certificate of an already verified chain;
/// `None` when the chain is empty or the subject has no common name.
pub fn identity_from_certs(chain: &[CertificateDer<'_>]) -> Option<CertIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(chain.first()?).ok()?;
    let subject = cert.subject();
    let user = subject
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    Some(CertIdentity { user, groups })
}

/// Writes `contents` to `path` with mode 0600, replacing it atomically (a
/// reader never sees a half-written key or kubeconfig).
pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{PrivateKeyDer, ServerName, UnixTime};
    use std::os::unix::fs::PermissionsExt;
    use time::OffsetDateTime;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn roots(pki: &Pki) -> Arc<RootCertStore> {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pki.ca_cert_pem().as_bytes()).unwrap())
            .unwrap();
        Arc::new(roots)
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_then_reloads_the_same_pki() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::load_or_create(dir.path(), &[]).unwrap();
        for key in ["ca.key", "server.key", "admin.key"] {
            assert_eq!(mode(&dir.path().join("pki").join(key)), 0o600, "{key}");
        }
        let second = Pki::load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(first.ca_cert_pem(), second.ca_cert_pem());
        assert_eq!(first.server_cert_pem(), second.server_cert_pem());
        assert_eq!(first.admin_key_pem(), second.admin_key_pem());
        let ca_der = CertificateDer::from_pem_slice(first.ca_cert_pem().as_bytes()).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let cn = ca.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), CA_COMMON_NAME);
        assert!(ca.is_ca());
        let years =
            (ca.validity().not_after.to_datetime() - OffsetDateTime::now_utc()).whole_days();
        assert!((3640..=3651).contains(&years), "{years} days");
    }

    #[test]
    fn changed_sans_reissue_only_the_serving_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::load_or_create(dir.path(), &[]).unwrap();
        let extra = vec!["10.1.2.3".to_string(), "Kerno.Example".to_string()];
        let second = Pki::load_or_create(dir.path(), &extra).unwrap();
        assert_eq!(first.ca_cert_pem(), second.ca_cert_pem());
        assert_eq!(first.admin_cert_pem(), second.admin_cert_pem());
        assert_ne!(first.server_cert_pem(), second.server_cert_pem());
        let third = Pki::load_or_create(dir.path(), &extra).unwrap();
        assert_eq!(second.server_cert_pem(), third.server_cert_pem());
    }

    #[test]
    fn serving_certificate_verifies_for_its_sans_only() {
        let dir = tempfile::tempdir().unwrap();
        let extra = vec![
            "192.0.2.7".to_string(),
            "[2001:db8::1]".to_string(),
            "0.0.0.0".to_string(),
        ];
        let pki = Pki::load_or_create(dir.path(), &extra).unwrap();
        let verifier = WebPkiServerVerifier::builder_with_provider(roots(&pki), provider())
            .build()
            .unwrap();
        let cert = CertificateDer::from_pem_slice(pki.server_cert_pem().as_bytes()).unwrap();
        let verify = |name: &str| {
            let name = ServerName::try_from(name.to_string()).unwrap();
            verifier.verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
        };
        for name in DEFAULT_SANS
            .iter()
            .copied()
            .chain(["192.0.2.7", "2001:db8::1"])
        {
            assert!(verify(name).is_ok(), "{name}: {:?}", verify(name));
        }
        assert!(verify("example.com").is_err());
        assert!(verify("10.0.0.1").is_err());
        // The wildcard listen address is no SAN.
        assert!(verify("0.0.0.0").is_err());

        let other = tempfile::tempdir().unwrap();
        let other = Pki::load_or_create(other.path(), &[]).unwrap();
        let other_verifier = WebPkiServerVerifier::builder_with_provider(roots(&other), provider())
            .build()
            .unwrap();
        let localhost = ServerName::try_from("localhost").unwrap();
        assert!(
            other_verifier
                .verify_server_cert(&cert, &[], &localhost, &[], UnixTime::now())
                .is_err()
        );
    }

    #[test]
    fn rejects_bad_sans_and_too_many_groups() {
        let dir = tempfile::tempdir().unwrap();
        let err = Pki::load_or_create(dir.path(), &["bad name".into()]).unwrap_err();
        assert!(matches!(err, Error::InvalidSan(_)), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let groups: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert!(matches!(
            pki.issue_client_cert("u", &groups),
            Err(Error::TooManyGroups(3))
        ));
    }

    #[test]
    fn leaf_of_another_ca_is_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = Pki::load_or_create(other_dir.path(), &[]).unwrap();
        // A serving certificate with the right SANs but from the wrong CA.
        for file in ["server.crt", "server.key"] {
            fs::copy(other.dir().join(file), pki.dir().join(file)).unwrap();
        }
        let reloaded = Pki::load_or_create(dir.path(), &[]).unwrap();
        assert_eq!(reloaded.ca_cert_pem(), pki.ca_cert_pem());
        assert_ne!(reloaded.server_cert_pem(), other.server_cert_pem());
        let verifier = WebPkiServerVerifier::builder_with_provider(roots(&pki), provider())
            .build()
            .unwrap();
        let cert = CertificateDer::from_pem_slice(reloaded.server_cert_pem().as_bytes()).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        assert!(
            verifier
                .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
    }

    #[test]
    fn incomplete_ca_is_an_error_not_a_new_ca() {
        let dir = tempfile::tempdir().unwrap();
        Pki::load_or_create(dir.path(), &[]).unwrap();
        fs::remove_file(dir.path().join("pki/ca.key")).unwrap();
        let err = Pki::load_or_create(dir.path(), &[]).unwrap_err();
        assert!(matches!(err, Error::IncompleteCa { .. }), "{err}");
        assert!(err.to_string().contains("ca.key"));
    }

    #[test]
    fn issued_client_cert_carries_user_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let groups = vec!["system:nodes".to_string(), "team-a".to_string()];
        let (cert, _key) = pki.issue_client_cert("system:node:n1", &groups).unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let id = identity_from_certs(&[der]).unwrap();
        assert_eq!(id.user, "system:node:n1");
        assert_eq!(id.groups, groups);
        let admin = CertificateDer::from_pem_slice(pki.admin_cert_pem().as_bytes()).unwrap();
        let id = identity_from_certs(&[admin]).unwrap();
        assert_eq!(id.user, ADMIN_USER);
        assert_eq!(id.groups, vec![ADMIN_GROUP.to_string()]);
        assert_eq!(identity_from_certs(&[]), None);
    }

    /// What the server side of a test handshake saw.
    #[derive(Debug)]
    struct Seen {
        identity: Option<CertIdentity>,
        alpn: Option<Vec<u8>>,
    }

    /// Runs one TLS connection over loopback TCP between `server` and a client
    /// trusting `trust`, presenting `client_cert` if given. Returns the server's
    /// view (or its error) and what the client read back.
    async fn handshake(
        server: &Pki,
        trust: &Pki,
        client_cert: Option<(String, String)>,
    ) -> (Result<Seen, io::Error>, io::Result<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server.server_config().unwrap());
        let server_task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await?;
            let mut tls = acceptor.accept(tcp).await?;
            let (_, conn) = tls.get_ref();
            let seen = Seen {
                identity: peer_identity(conn),
                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            };
            tls.write_all(b"hello").await?;
            tls.shutdown().await?;
            Ok::<_, io::Error>(seen)
        });

        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots(trust));
        let mut config = match client_cert {
            Some((cert, key)) => {
                let cert = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
                let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
                builder.with_client_auth_cert(vec![cert], key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let client = async {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await?;
            let mut buf = Vec::new();
            tls.read_to_end(&mut buf).await?;
            Ok(buf)
        };
        let client_result = client.await;
        let server_result = server_task.await.unwrap();
        (server_result, client_result)
    }

    #[tokio::test]
    async fn handshake_with_client_certificate_yields_identity() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let admin = (
            pki.admin_cert_pem().to_string(),
            pki.admin_key_pem().to_string(),
        );
        let (server, client) = handshake(&pki, &pki, Some(admin)).await;
        let seen = server.unwrap();
        assert_eq!(client.unwrap(), b"hello");
        assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));
        assert_eq!(
            seen.identity,
            Some(CertIdentity {
                user: ADMIN_USER.into(),
                groups: vec![ADMIN_GROUP.into()]
            })
        );
    }

    #[tokio::test]
    async fn handshake_without_client_certificate_is_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let (server, client) = handshake(&pki, &pki, None).await;
        let seen = server.unwrap();
        assert_eq!(client.unwrap(), b"hello");
        assert_eq!(seen.identity, None);
    }

    #[tokio::test]
    async fn client_certificate_of_another_ca_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = Pki::load_or_create(other_dir.path(), &[]).unwrap();
        let foreign = other
            .issue_client_cert("mallory", &[ADMIN_GROUP.into()])
            .unwrap();
        let (server, client) = handshake(&pki, &pki, Some(foreign)).await;
        let err = server.unwrap_err();
        assert!(err.to_string().to_lowercase().contains("cert"), "{err}");
        assert!(client.is_err(), "client read {:?}", client);
    }

    #[tokio::test]
    async fn client_does_not_trust_a_server_of_another_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &[]).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = Pki::load_or_create(other_dir.path(), &[]).unwrap();
        let (server, client) = handshake(&pki, &other, None).await;
        assert!(server.is_err());
        assert!(client.is_err());
    }
}
