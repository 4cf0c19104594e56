//! ServiceAccount tokens: JWTs signed by the kernel (ES256, with a P-256 key
//! created at first start in `DATA/pki/sa.key` and kept across restarts),
//! in the claim layout of Kubernetes' bound service account tokens.
//!
//! A token authenticates as `system:serviceaccount:<ns>:<name>` while it has
//! not expired, its ServiceAccount still exists with the same uid, and the
//! Pod or Secret it is bound to (if any) does too.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::user::UserInfo;
use crate::service::Service;

/// The issuer (and default audience) of the kernel's tokens, as Kubernetes'.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The group of every ServiceAccount.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

/// File of the signing key, in the PKI directory.
pub const KEY_FILE: &str = "sa.key";

/// Why a ServiceAccount token was refused or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The signing key could not be read or written.
    #[error("service account signing key {path}: {message}")]
    Key {
        /// The key file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Not a JWT of this kernel (bad shape, encoding or signature).
    #[error("invalid bearer token")]
    Invalid,
    /// The token's expiry has passed.
    #[error("service account token has expired")]
    Expired,
    /// The token is for other audiences than this API server.
    #[error("token audiences {0:?} is invalid for the target audiences [\"{ISSUER}\"]")]
    Audience(Vec<String>),
    /// The ServiceAccount or the bound object is gone or was recreated.
    #[error("{0}")]
    Revoked(String),
    /// The store could not be asked.
    #[error("checking the token: {0}")]
    Lookup(String),
}

/// `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A named object with its uid, as in the `kubernetes.io` claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The object's name.
    pub name: String,
    /// The object's uid.
    pub uid: String,
}

/// The `kubernetes.io` private claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    /// The ServiceAccount's namespace.
    pub namespace: String,
    /// The ServiceAccount.
    pub serviceaccount: ObjectRef,
    /// The Pod the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    /// The Secret the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
}

/// The claims of a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Audiences the token is for.
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The issuer, [`ISSUER`].
    pub iss: String,
    /// A unique id of the token.
    #[serde(default)]
    pub jti: String,
    /// Not valid before, seconds since the epoch.
    pub nbf: i64,
    /// `system:serviceaccount:<ns>:<name>`.
    pub sub: String,
    /// Who the token is for and what it is bound to.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
}

impl Claims {
    /// The user the token stands for.
    pub fn user(&self) -> UserInfo {
        let ns = &self.kubernetes.namespace;
        UserInfo::new(
            service_account_user(ns, &self.kubernetes.serviceaccount.name),
            [
                SERVICE_ACCOUNTS_GROUP.to_owned(),
                format!("{SERVICE_ACCOUNTS_GROUP}:{ns}"),
            ],
        )
    }
}

/// `system:serviceaccount:<ns>:<name>`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The kernel's token signer and verifier.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    public: Vec<u8>,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenSigner {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner").finish_non_exhaustive()
    }
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

impl TokenSigner {
    /// Loads the key from `pki_dir/sa.key`, creating it on first start.
    pub fn load_or_create(pki_dir: &Path) -> Result<Self> {
        let path = pki_dir.join(KEY_FILE);
        let key_error = |message: String| Error::Key {
            path: path.display().to_string(),
            message,
        };
        let rng = SystemRandom::new();
        let der = match std::fs::read_to_string(&path) {
            Ok(text) => {
                let body: String = text
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<Vec<_>>()
                    .concat();
                base64::engine::general_purpose::STANDARD
                    .decode(body.trim())
                    .map_err(|e| key_error(format!("not a PEM private key: {e}")))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(pki_dir).map_err(|e| key_error(e.to_string()))?;
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| key_error("generating the key failed".into()))?;
                let b64 = base64::engine::general_purpose::STANDARD.encode(doc.as_ref());
                let mut pem = String::from(PEM_BEGIN);
                pem.push('\n');
                for chunk in b64.as_bytes().chunks(64) {
                    pem.push_str(&String::from_utf8_lossy(chunk));
                    pem.push('\n');
                }
                pem.push_str(PEM_END);
                pem.push('\n');
                super::tls::write_private_file(&path, pem.as_bytes())
                    .map_err(|e| key_error(e.to_string()))?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(key_error(e.to_string())),
        };
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|e| key_error(format!("not a P-256 PKCS#8 key: {e}")))?;
        let public = key.public_key().as_ref().to_vec();
        Ok(Self { key, public, rng })
    }

    /// Signs `claims` into a compact JWT.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.key_id()});
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let claims = serde_json::to_value(claims).map_err(|_| Error::Invalid)?;
        let signing_input = format!("{}.{}", encode(&header), encode(&claims));
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| Error::Key {
                path: KEY_FILE.into(),
                message: "signing failed".into(),
            })?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// A short id of the public key (its SHA-256, as Kubernetes' `kid`).
    fn key_id(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.public);
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// Checks signature, issuer, audience and time (`now`, seconds since
    /// the epoch) and returns the claims. Whether the ServiceAccount and the
    /// bound object still exist is [`Authenticator::authenticate`]'s part.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Invalid);
        };
        let header: Value = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or(Error::Invalid)?;
        if header["alg"] != "ES256" {
            return Err(Error::Invalid);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Error::Invalid)?;
        let signing_input = &token[..header_payload_len(token)];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| Error::Invalid)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or(Error::Invalid)?;
        if claims.iss != ISSUER {
            return Err(Error::Invalid);
        }
        if !claims.aud.iter().any(|a| a == ISSUER) {
            return Err(Error::Audience(claims.aud));
        }
        if claims.exp <= now {
            return Err(Error::Expired);
        }
        if claims.nbf > now + CLOCK_SKEW_SECONDS {
            return Err(Error::Invalid);
        }
        Ok(claims)
    }
}

/// Tolerated clock difference for `nbf`.
const CLOCK_SKEW_SECONDS: i64 = 60;

/// Length of `header.payload` in a compact JWT.
fn header_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

/// Whether `token` has the shape of a JWT (three base64url parts, a JSON
/// header): only such tokens are checked as ServiceAccount tokens.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

/// Authenticates ServiceAccount tokens against the live objects.
pub struct Authenticator {
    signer: Arc<TokenSigner>,
    service: Arc<Service>,
}

impl Authenticator {
    /// Checks tokens of `signer` against the objects of `service`.
    pub fn new(signer: Arc<TokenSigner>, service: Arc<Service>) -> Self {
        Self { signer, service }
    }

    /// The user `token` stands for, if it is valid now.
    pub async fn authenticate(&self, token: &str) -> Result<UserInfo> {
        let claims = self.signer.verify(token, chrono::Utc::now().timestamp())?;
        let k = &claims.kubernetes;
        let ns = k.namespace.as_str();
        let sa = &k.serviceaccount;
        self.check_alive("serviceaccounts", ns, sa).await?;
        if let Some(pod) = &k.pod {
            self.check_alive("pods", ns, pod).await?;
        }
        if let Some(secret) = &k.secret {
            self.check_alive("secrets", ns, secret).await?;
        }
        Ok(claims.user())
    }

    /// Refuses the token unless `object` still exists with its uid.
    async fn check_alive(&self, resource: &str, ns: &str, object: &ObjectRef) -> Result<()> {
        let stored = object_uid(&self.service, resource, ns, &object.name)
            .await
            .map_err(Error::Lookup)?;
        match stored {
            None => Err(Error::Revoked(format!(
                "{resource} \"{}\" not found",
                object.name
            ))),
            Some(uid) if uid != object.uid => Err(Error::Revoked(format!(
                "the UID in the token ({}) does not match the UID of {resource} \"{}\" ({uid})",
                object.uid, object.name
            ))),
            Some(_) => Ok(()),
        }
    }
}

/// The uid of the core/v1 object `resource`/`ns`/`name`, `None` when absent.
pub async fn object_uid(
    service: &Service,
    resource: &str,
    ns: &str,
    name: &str,
) -> std::result::Result<Option<String>, String> {
    let rt = service
        .registry()
        .get("", "v1", resource)
        .ok_or_else(|| format!("{resource} are not served"))?;
    let key = rt.key(Some(ns), name);
    let kv = service.store().get(&key).await.map_err(|e| e.to_string())?;
    Ok(kv.and_then(|kv| {
        let obj: Value = serde_json::from_slice(&kv.value).ok()?;
        obj.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64, aud: &str) -> Claims {
        Claims {
            aud: vec![aud.to_owned()],
            exp,
            iat: 1000,
            iss: ISSUER.into(),
            jti: "j".into(),
            nbf: 1000,
            sub: service_account_user("team", "builder"),
            kubernetes: KubernetesClaims {
                namespace: "team".into(),
                serviceaccount: ObjectRef {
                    name: "builder".into(),
                    uid: "u1".into(),
                },
                pod: None,
                secret: None,
            },
        }
    }

    #[test]
    fn the_key_persists_and_tokens_verify_until_they_expire() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = TokenSigner::load_or_create(dir.path()).expect("create");
        let token = signer.sign(&claims(2000, ISSUER)).expect("sign");
        assert!(looks_like_jwt(&token), "{token}");
        let again = TokenSigner::load_or_create(dir.path()).expect("reload");
        let verified = again.verify(&token, 1500).expect("verify");
        let user = verified.user();
        assert_eq!(user.name, "system:serviceaccount:team:builder");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:team",
                "system:authenticated"
            ]
        );
        assert!(matches!(again.verify(&token, 2000), Err(Error::Expired)));

        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = TokenSigner::load_or_create(other_dir.path()).expect("create");
        assert!(matches!(other.verify(&token, 1500), Err(Error::Invalid)));

        let (head, _) = token.rsplit_once('.').expect("dots");
        let forged_claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                exp: 99_999,
                ..claims(2000, ISSUER)
            })
            .expect("json"),
        );
        let head_only = head.split('.').next().expect("header");
        let sig = token.rsplit('.').next().expect("sig");
        let forged = format!("{head_only}.{forged_claims}.{sig}");
        assert!(matches!(again.verify(&forged, 1500), Err(Error::Invalid)));
        assert!(matches!(again.verify("a.b", 1500), Err(Error::Invalid)));
    }

    #[test]
    fn tokens_for_other_audiences_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = TokenSigner::load_or_create(dir.path()).expect("create");
        let token = signer.sign(&claims(2000, "vault")).expect("sign");
        assert!(matches!(
            signer.verify(&token, 1500),
            Err(Error::Audience(_))
        ));
    }

    #[test]
    fn a_corrupt_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(KEY_FILE), "garbage!").expect("write");
        let err = TokenSigner::load_or_create(dir.path()).expect_err("refused");
        assert!(err.to_string().contains("sa.key"), "{err}");
    }
}
