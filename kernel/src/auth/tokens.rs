//! Bearer-token authentication: per-plugin tokens the supervisor issues, and
//! bootstrap tokens for plugins started outside the supervisor.
//!
//! A token only identifies its holder for now (`system:plugin:<name>`,
//! `system:bootstrap:<id>`); what an identity may do is the RBAC issue's job,
//! which can extend [`TokenAuthenticator`] and [`TokenIdentity`].

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use rand::RngCore;

/// Who a valid token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenIdentity {
    /// A plugin the supervisor started, by its name.
    Plugin(String),
    /// The holder of a bootstrap token, by the token's id.
    Bootstrap(String),
    /// A user of the static token file, or a ServiceAccount (its JWT).
    User(super::user::UserInfo),
}

impl TokenIdentity {
    /// The user name, as Kubernetes would spell it.
    pub fn user(&self) -> String {
        match self {
            TokenIdentity::Plugin(name) => format!("system:plugin:{name}"),
            TokenIdentity::Bootstrap(id) => format!("system:bootstrap:{id}"),
            TokenIdentity::User(user) => user.name.clone(),
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is not one this kernel issued or was configured with.
    #[error("invalid bearer token")]
    Unknown,
    /// A bootstrap token whose expiry has passed.
    #[error("bootstrap token {0:?} has expired")]
    Expired(String),
    /// A bootstrap token in the config or on the command line is malformed.
    #[error(
        "bootstrap token {0:?} must be <id>.<secret> (id: 6 of [a-z0-9], secret: 16 of [a-z0-9]), optionally followed by @<RFC 3339 expiry>"
    )]
    Malformed(String),
}

/// A bootstrap token: `<id>.<secret>`, optionally with an expiry.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    /// The public part, which names the token in logs.
    pub id: String,
    secret: String,
    /// After this instant the token is refused.
    pub expires: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for BootstrapToken {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapToken")
            .field("id", &self.id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

fn is_token_part(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl FromStr for BootstrapToken {
    type Err = TokenError;

    /// Parses `<id>.<secret>` or `<id>.<secret>@<RFC 3339 expiry>`, the
    /// shape of Kubernetes bootstrap tokens (`abcdef.0123456789abcdef`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || TokenError::Malformed(s.split('.').next().unwrap_or("").to_owned());
        let (token, expires) = match s.split_once('@') {
            Some((token, expiry)) => {
                let at = DateTime::parse_from_rfc3339(expiry).map_err(|_| malformed())?;
                (token, Some(at.with_timezone(&Utc)))
            }
            None => (s, None),
        };
        let (id, secret) = token.split_once('.').ok_or_else(malformed)?;
        if !is_token_part(id, 6) || !is_token_part(secret, 16) {
            return Err(malformed());
        }
        Ok(BootstrapToken {
            id: id.to_owned(),
            secret: secret.to_owned(),
            expires,
        })
    }
}

/// Checks bearer tokens: plugin tokens issued at run time and bootstrap
/// tokens fixed at start.
#[derive(Debug, Default)]
pub struct TokenAuthenticator {
    /// Token → plugin name; replaced each time a plugin is (re)started.
    plugin_tokens: RwLock<HashMap<String, String>>,
    bootstrap: Vec<BootstrapToken>,
    /// Token → user, from the static token file.
    static_tokens: HashMap<String, super::user::UserInfo>,
}

impl TokenAuthenticator {
    /// An authenticator knowing these bootstrap tokens and no plugin tokens yet.
    pub fn new(bootstrap: Vec<BootstrapToken>) -> Self {
        Self {
            plugin_tokens: RwLock::default(),
            bootstrap,
            static_tokens: HashMap::new(),
        }
    }

    /// Also accepts the tokens of a static token file.
    pub fn with_static_tokens(
        mut self,
        tokens: HashMap<String, super::token_file::StaticUser>,
    ) -> Self {
        self.static_tokens = tokens.into_iter().map(|(t, u)| (t, u.user)).collect();
        self
    }

    /// Issues a fresh random token for plugin `name`, revoking its previous
    /// one (a restarted plugin gets a new token).
    pub fn issue_plugin_token(&self, name: &str) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut tokens = self
            .plugin_tokens
            .write()
            .unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, plugin| plugin != name);
        tokens.insert(token.clone(), name.to_owned());
        token
    }

    /// Revokes plugin `name`'s token (it stopped).
    pub fn revoke_plugin_token(&self, name: &str) {
        self.plugin_tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, plugin| plugin != name);
    }

    /// Who `token` belongs to.
    pub fn authenticate(&self, token: &str) -> Result<TokenIdentity, TokenError> {
        if let Some(name) = self
            .plugin_tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
        {
            return Ok(TokenIdentity::Plugin(name.clone()));
        }
        if let Some(user) = self.static_tokens.get(token) {
            return Ok(TokenIdentity::User(user.clone()));
        }
        let Some((id, secret)) = token.split_once('.') else {
            return Err(TokenError::Unknown);
        };
        let Some(known) = self
            .bootstrap
            .iter()
            .find(|b| b.id == id && constant_time_eq(b.secret.as_bytes(), secret.as_bytes()))
        else {
            return Err(TokenError::Unknown);
        };
        if known.expires.is_some_and(|at| at <= Utc::now()) {
            return Err(TokenError::Expired(known.id.clone()));
        }
        Ok(TokenIdentity::Bootstrap(known.id.clone()))
    }
}

/// Compares secrets without leaking where they differ through timing.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token of an `Authorization: Bearer <token>` header value, if it is one.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_tokens_identify_their_plugin_and_are_replaced_on_reissue() {
        let auth = TokenAuthenticator::new(Vec::new());
        let first = auth.issue_plugin_token("dns");
        assert_eq!(
            auth.authenticate(&first),
            Ok(TokenIdentity::Plugin("dns".into()))
        );
        let second = auth.issue_plugin_token("dns");
        assert_ne!(first, second);
        assert_eq!(auth.authenticate(&first), Err(TokenError::Unknown));
        assert_eq!(
            auth.authenticate(&second).map(|i| i.user()),
            Ok("system:plugin:dns".to_owned())
        );
        auth.revoke_plugin_token("dns");
        assert_eq!(auth.authenticate(&second), Err(TokenError::Unknown));
    }

    #[test]
    fn bootstrap_tokens_parse_expire_and_compare_secrets() {
        let ok: BootstrapToken = "abcdef.0123456789abcdef"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        let old: BootstrapToken = "old123.0123456789abcdef@2020-01-01T00:00:00Z"
            .parse()
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(old.expires.is_some());
        let auth = TokenAuthenticator::new(vec![ok, old]);
        assert_eq!(
            auth.authenticate("abcdef.0123456789abcdef"),
            Ok(TokenIdentity::Bootstrap("abcdef".into()))
        );
        assert_eq!(
            auth.authenticate("abcdef.0123456789abcdee"),
            Err(TokenError::Unknown)
        );
        assert_eq!(
            auth.authenticate("old123.0123456789abcdef"),
            Err(TokenError::Expired("old123".into()))
        );
        assert_eq!(auth.authenticate("garbage"), Err(TokenError::Unknown));
        for bad in [
            "abcdef",
            "ABCDEF.0123456789abcdef",
            "abcdef.short",
            "abcdef.0123456789abcdef@tomorrow",
        ] {
            assert!(bad.parse::<BootstrapToken>().is_err(), "{bad}");
        }
    }

    #[test]
    fn static_tokens_stand_for_their_file_users() {
        let users = crate::auth::token_file::parse("s3cret,alice,1001,\"dev,ops\"\n")
            .unwrap_or_else(|(line, e)| panic!("line {line}: {e}"));
        let auth = TokenAuthenticator::new(Vec::new()).with_static_tokens(users);
        let Ok(TokenIdentity::User(alice)) = auth.authenticate("s3cret") else {
            panic!("the static token is refused")
        };
        assert_eq!(alice.name, "alice");
        assert!(alice.in_group("dev") && alice.in_group("ops"));
        assert_eq!(auth.authenticate("s3cre"), Err(TokenError::Unknown));
    }

    #[test]
    fn bearer_header_is_parsed() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }
}
