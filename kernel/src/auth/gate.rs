//! The door every request passes: authentication (a bearer token, else the
//! TLS client certificate) producing a [`UserInfo`] request extension, then,
//! for REST requests, RBAC on the request's attributes. gRPC calls are
//! authorized per call in `api::grpc`, where the addressed resource is known.
//!
//! Without credentials only `/healthz`, `/livez`, `/readyz` and `/version`
//! are served (to `system:anonymous`); everything else gets 401.

use http::{HeaderValue, Response, StatusCode, header};

use super::bearer;
use super::rbac::RbacAuthorizer;
use super::rbac::review::{forbidden, request_attributes};
use super::serviceaccount;
use super::tls::CertIdentity;
use super::tokens::{TokenAuthenticator, TokenIdentity};
use super::user::UserInfo;

/// Paths served without credentials, as Kubernetes' `system:public-info-viewer`.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// The user of an unauthenticated request to a public path.
pub const ANONYMOUS_USER: &str = "system:anonymous";

/// The group of plugins' users.
pub const PLUGINS_GROUP: &str = "system:plugins";

/// The group of bootstrap-token holders.
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";

/// The user a token stands for.
pub fn token_user(identity: &TokenIdentity) -> UserInfo {
    let group = match identity {
        TokenIdentity::Plugin(_) => PLUGINS_GROUP,
        TokenIdentity::Bootstrap(_) => BOOTSTRAPPERS_GROUP,
        TokenIdentity::User(user) => return user.clone(),
    };
    UserInfo::new(identity.user(), [group.to_owned()])
}

/// The user a client certificate stands for (CN, and O as groups).
pub fn cert_user(identity: &CertIdentity) -> UserInfo {
    UserInfo::new(identity.user.clone(), identity.groups.iter().cloned())
}

/// The authorization decision on a request, recorded as a request extension
/// for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// RBAC allowed the request (or it is public).
    Allow,
    /// RBAC refused it, with Kubernetes' message.
    Forbid(String),
    /// Authorized later, per call (gRPC).
    PerCall,
}

/// Authenticates `req` and, for REST, authorizes it. On success the request
/// carries a [`UserInfo`] extension; `Err` is the refusal to send instead.
/// Either way, once authenticated the request carries the [`UserInfo`] and
/// a [`Decision`] extension (for the audit log).
pub async fn admit<B>(
    tokens: &TokenAuthenticator,
    service_accounts: Option<&serviceaccount::Authenticator>,
    authorizer: &RbacAuthorizer,
    cert: Option<&UserInfo>,
    req: &mut http::Request<B>,
    grpc: bool,
) -> Result<(), Box<Response<axum::body::Body>>> {
    bearer::authenticate(tokens, service_accounts, req, grpc).await?;
    let token_user = req.extensions().get::<TokenIdentity>().map(token_user);
    let public = PUBLIC_PATHS.contains(&req.uri().path());
    let user = match (token_user, cert) {
        (Some(user), _) => user,
        (None, Some(user)) => user.clone(),
        (None, None) if public && !grpc => UserInfo {
            name: ANONYMOUS_USER.to_owned(),
            groups: vec!["system:unauthenticated".to_owned()],
        },
        (None, None) => {
            let message = "no credentials: present a client certificate or a bearer token";
            return Err(Box::new(if grpc {
                tonic::Status::unauthenticated(message).into_http()
            } else {
                status_response(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
            }));
        }
    };
    req.extensions_mut().insert(user.clone());
    req.extensions_mut().insert(if grpc {
        Decision::PerCall
    } else {
        Decision::Allow
    });
    if !grpc && !public {
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or_default().to_owned();
        let parsed = crate::api::rest::path::parse(&path);
        let attrs = request_attributes(req.method(), &path, parsed.as_ref(), &query);
        if !authorizer.authorize(&user, &attrs).allowed() {
            let message = forbidden(&user, &attrs).to_string();
            tracing::debug!(user = %user.name, %message, "forbidden");
            req.extensions_mut()
                .insert(Decision::Forbid(message.clone()));
            return Err(Box::new(status_response(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &message,
            )));
        }
    }
    Ok(())
}

fn status_response(code: StatusCode, reason: &str, message: &str) -> Response<axum::body::Body> {
    let status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    let mut resp = Response::new(axum::body::Body::from(status.to_string()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_certificates_map_to_users() {
        let plugin = token_user(&TokenIdentity::Plugin("scheduler-default".into()));
        assert_eq!(plugin.name, "system:plugin:scheduler-default");
        assert!(plugin.in_group(PLUGINS_GROUP) && plugin.in_group("system:authenticated"));
        let boot = token_user(&TokenIdentity::Bootstrap("abcdef".into()));
        assert_eq!(boot.name, "system:bootstrap:abcdef");
        assert!(boot.in_group(BOOTSTRAPPERS_GROUP));
        let alice = cert_user(&CertIdentity {
            user: "alice".into(),
            groups: vec!["dev".into()],
        });
        assert_eq!(alice.name, "alice");
        assert!(alice.in_group("dev") && alice.in_group("system:authenticated"));
    }
}
