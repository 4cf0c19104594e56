//! Creating and checking the certificates of `DATA/pki/`: SANs, the CA,
//! leaf certificates and their re-issue rules.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::{CA_COMMON_NAME, DEFAULT_SANS, Error, Result, write_private_file};

const CA_VALIDITY: Duration = Duration::days(3650);
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Leaf certificates closer than this to expiry are re-issued on start.
const RENEW_BEFORE: Duration = Duration::days(30);
/// Back-date certificates a little so a peer with a slightly slow clock accepts them.
const CLOCK_SKEW: Duration = Duration::hours(1);

/// A subject alternative name, normalized for comparison.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum San {
    Dns(String),
    Ip(IpAddr),
}

impl San {
    fn to_rcgen(&self) -> Result<SanType> {
        Ok(match self {
            San::Ip(ip) => SanType::IpAddress(*ip),
            San::Dns(name) => SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|_| Error::InvalidSan(name.clone()))?,
            ),
        })
    }
}

/// The SANs the serving certificate should carry.
pub(super) fn requested_sans(extra: &[String]) -> Result<BTreeSet<San>> {
    let mut sans = BTreeSet::new();
    for name in DEFAULT_SANS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
    {
        let trimmed = name.trim().trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = trimmed.parse::<IpAddr>() {
            // A wildcard listen address is no name a client can dial.
            if !ip.is_unspecified() {
                sans.insert(San::Ip(ip));
            }
        } else if is_dns_name(trimmed) {
            sans.insert(San::Dns(trimmed.to_ascii_lowercase()));
        } else {
            return Err(Error::InvalidSan(name.to_string()));
        }
    }
    Ok(sans)
}

fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').enumerate().all(|(i, label)| {
            (i == 0 && label == "*")
                || (!label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        })
}

/// The SANs of a parsed certificate.
fn cert_sans(cert: &X509Certificate<'_>) -> BTreeSet<San> {
    let mut sans = BTreeSet::new();
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return sans;
    };
    for name in &ext.value.general_names {
        match name {
            GeneralName::DNSName(dns) => {
                sans.insert(San::Dns(dns.to_ascii_lowercase()));
            }
            GeneralName::IPAddress(bytes) => {
                let ip = match bytes.len() {
                    4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                    _ => None,
                };
                if let Some(ip) = ip {
                    sans.insert(San::Ip(ip));
                }
            }
            _ => {}
        }
    }
    sans
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<()> {
    let result = if private {
        write_private_file(path, contents.as_bytes())
    } else {
        fs::write(path, contents)
    };
    result.map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

pub(super) fn cert_der(path: &Path, pem: &str) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|_| Error::Invalid {
        what: "certificate",
        path: path.to_path_buf(),
    })
}

pub(super) fn key_der(path: &Path, pem: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|_| Error::Invalid {
        what: "private key",
        path: path.to_path_buf(),
    })
}

pub(super) fn issuer_from_pem(
    dir: &Path,
    cert: &str,
    key: &str,
) -> Result<Issuer<'static, KeyPair>> {
    let key = KeyPair::from_pem(key).map_err(|_| Error::Invalid {
        what: "private key",
        path: dir.join("ca.key"),
    })?;
    Issuer::from_ca_cert_pem(cert, key).map_err(|_| Error::Invalid {
        what: "CA certificate",
        path: dir.join("ca.crt"),
    })
}

/// Loads the CA, creating it when neither file exists.
pub(super) fn load_or_create_ca(dir: &Path) -> Result<(String, String)> {
    let cert_path = dir.join("ca.crt");
    let key_path = dir.join("ca.key");
    match (read_optional(&cert_path)?, read_optional(&key_path)?) {
        (Some(cert), Some(key)) => Ok((cert, key)),
        (None, None) => {
            let now = OffsetDateTime::now_utc();
            let mut params = CertificateParams::default();
            params.distinguished_name = dn(CA_COMMON_NAME, &[])?;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.not_before = now - CLOCK_SKEW;
            params.not_after = now + CA_VALIDITY;
            params.serial_number = Some(random_serial());
            let key = KeyPair::generate().map_err(|source| Error::Generate {
                what: "CA key",
                source,
            })?;
            let cert = params.self_signed(&key).map_err(|source| Error::Generate {
                what: "CA certificate",
                source,
            })?;
            let (cert, key) = (cert.pem(), key.serialize_pem());
            // Key first: a crash in between leaves a key without a certificate,
            // which the next start reports instead of minting a second CA.
            write_file(&key_path, &key, true)?;
            write_file(&cert_path, &cert, false)?;
            tracing::info!(dir = %dir.display(), "created cluster CA");
            Ok((cert, key))
        }
        (Some(_), None) => Err(Error::IncompleteCa {
            present: cert_path,
            missing: key_path,
        }),
        (None, Some(_)) => Err(Error::IncompleteCa {
            present: key_path,
            missing: cert_path,
        }),
    }
}

/// One leaf certificate of `DATA/pki/`: `<stem>.crt` and `<stem>.key`.
pub(super) struct LeafSpec<'a> {
    pub(super) stem: &'static str,
    pub(super) what: &'static str,
    pub(super) common_name: &'a str,
    pub(super) groups: &'a [String],
    /// `Some` for a serving certificate (with these SANs), `None` for a client certificate.
    pub(super) sans: Option<&'a BTreeSet<San>>,
}

impl LeafSpec<'_> {
    pub(super) fn load_or_issue(
        &self,
        dir: &Path,
        issuer: &Issuer<'_, KeyPair>,
        ca_der: &CertificateDer<'_>,
    ) -> Result<(String, String)> {
        let cert_path = dir.join(format!("{}.crt", self.stem));
        let key_path = dir.join(format!("{}.key", self.stem));
        if let (Some(cert), Some(key)) = (read_optional(&cert_path)?, read_optional(&key_path)?) {
            match self.still_valid(&cert, ca_der) {
                Ok(()) => return Ok((cert, key)),
                Err(reason) => {
                    tracing::info!(cert = %cert_path.display(), reason, "re-issuing certificate")
                }
            }
        }
        let params = match self.sans {
            Some(sans) => server_params(self.common_name, sans)?,
            None => client_params(self.common_name, self.groups)?,
        };
        let (cert, key) = issue(&params, issuer, self.what)?;
        write_file(&key_path, &key, true)?;
        write_file(&cert_path, &cert, false)?;
        Ok((cert, key))
    }

    /// Whether an existing certificate can be kept; the error says why not.
    fn still_valid(&self, pem: &str, ca_der: &CertificateDer<'_>) -> Result<(), &'static str> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|_| "unreadable")?;
        let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|_| "unparsable")?;
        let (_, ca) = x509_parser::parse_x509_certificate(ca_der).map_err(|_| "unparsable CA")?;
        if cert.verify_signature(Some(ca.public_key())).is_err() {
            return Err("not signed by the current CA");
        }
        let expires = cert.validity().not_after.to_datetime();
        if expires - OffsetDateTime::now_utc() < RENEW_BEFORE {
            return Err("expires soon");
        }
        if let Some(sans) = self.sans
            && &cert_sans(&cert) != sans
        {
            return Err("subject alternative names changed");
        }
        Ok(())
    }
}

fn dn(common_name: &str, groups: &[String]) -> Result<DistinguishedName> {
    let mut dn = DistinguishedName::new();
    // rcgen keeps one value per attribute type, but the organization OID under
    // its custom spelling is a second key: that gives two O attributes at most.
    let org_types = [
        DnType::OrganizationName,
        DnType::CustomDnType(vec![2, 5, 4, 10]),
    ];
    if groups.len() > org_types.len() {
        return Err(Error::TooManyGroups(groups.len()));
    }
    for (ty, group) in org_types.into_iter().zip(groups) {
        dn.push(ty, group.as_str());
    }
    dn.push(DnType::CommonName, common_name);
    Ok(dn)
}

fn leaf_params(common_name: &str, groups: &[String]) -> Result<CertificateParams> {
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(common_name, groups)?;
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + LEAF_VALIDITY;
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    Ok(params)
}

fn server_params(common_name: &str, sans: &BTreeSet<San>) -> Result<CertificateParams> {
    let mut params = leaf_params(common_name, &[])?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.subject_alt_names = sans.iter().map(San::to_rcgen).collect::<Result<_>>()?;
    Ok(params)
}

pub(super) fn client_params(common_name: &str, groups: &[String]) -> Result<CertificateParams> {
    let mut params = leaf_params(common_name, groups)?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

pub(super) fn issue(
    params: &CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
    what: &'static str,
) -> Result<(String, String)> {
    let key = KeyPair::generate().map_err(|source| Error::Generate { what, source })?;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| Error::Generate { what, source })?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // A positive, non-zero DER integer as RFC 5280 asks.
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_sans_normalize_and_reject() {
        assert!(matches!(
            requested_sans(&["bad name".into()]),
            Err(Error::InvalidSan(_))
        ));
        assert!(matches!(
            requested_sans(&["-x.example".into()]),
            Err(Error::InvalidSan(_))
        ));
        let sans = requested_sans(&["[::]".into(), "Node-1".into(), "[fd00::5]".into()]).unwrap();
        assert!(sans.contains(&San::Dns("node-1".into())));
        assert!(sans.contains(&San::Ip("fd00::5".parse().unwrap())));
        assert!(sans.contains(&San::Dns("kubernetes.default.svc.cluster.local".into())));
        assert!(
            !sans
                .iter()
                .any(|s| matches!(s, San::Ip(ip) if ip.is_unspecified()))
        );
        assert_eq!(sans.len(), DEFAULT_SANS.len() + 2);
    }

    #[test]
    fn at_most_two_groups() {
        let two = dn("u", &["a".into(), "b".into()]).unwrap();
        assert_eq!(two.iter().count(), 3);
        let three: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        assert!(matches!(dn("u", &three), Err(Error::TooManyGroups(3))));
    }

    #[test]
    fn serials_are_positive_and_distinct() {
        let (a, b) = (random_serial(), random_serial());
        assert_ne!(a, b);
        assert!(a.to_bytes()[0] & 0x80 == 0 && a.to_bytes()[0] != 0);
    }
}
