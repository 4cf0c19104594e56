//! Applies [`TokenAuthenticator`] to incoming HTTP requests, REST and gRPC
//! alike: a request with `Authorization: Bearer <token>` must carry a valid
//! token, and its identity is put in the request's extensions for handlers
//! (the plugin registry checks a plugin registers only its own name).
//! Requests without a token are left to the other means (client certificates).

use http::{HeaderValue, Response, StatusCode, header};

use super::serviceaccount;
use super::tokens::{TokenAuthenticator, TokenError, TokenIdentity, bearer_token};

/// Checks the request's bearer token, if any, and records its identity as a
/// [`TokenIdentity`] extension. Tokens shaped like JWTs that no other means
/// knows are checked as ServiceAccount tokens by `service_accounts`.
/// `Err` is the response refusing the request: a Kubernetes `Status` with
/// 401 for REST, `UNAUTHENTICATED` for gRPC.
pub async fn authenticate<B>(
    tokens: &TokenAuthenticator,
    service_accounts: Option<&serviceaccount::Authenticator>,
    req: &mut http::Request<B>,
    grpc: bool,
) -> Result<(), Box<Response<axum::body::Body>>> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(bearer_token)
        .map(str::to_owned);
    let result = match token {
        Some(token) => match (tokens.authenticate(&token), service_accounts) {
            (Err(TokenError::Unknown), Some(sa)) if serviceaccount::looks_like_jwt(&token) => sa
                .authenticate(&token)
                .await
                .map(TokenIdentity::User)
                .map_err(|e| e.to_string()),
            (result, _) => result.map_err(|e| e.to_string()),
        },
        // Other schemes (Basic) are not supported: refuse rather than ignore.
        None => Err("unsupported authorization scheme; use a bearer token".to_owned()),
    };
    match result {
        Ok(identity) => {
            req.extensions_mut().insert::<TokenIdentity>(identity);
            Ok(())
        }
        Err(message) => {
            tracing::debug!(%message, "refused a request's credentials");
            Err(Box::new(if grpc {
                grpc_unauthenticated(&message)
            } else {
                rest_unauthorized(&message)
            }))
        }
    }
}

fn rest_unauthorized(message: &str) -> Response<axum::body::Body> {
    let status = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("Unauthorized: {message}"),
        "reason": "Unauthorized",
        "code": 401,
    });
    let mut resp = Response::new(axum::body::Body::from(status.to_string()));
    *resp.status_mut() = StatusCode::UNAUTHORIZED;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn grpc_unauthenticated(message: &str) -> Response<axum::body::Body> {
    // A trailers-only gRPC response: the status travels in the headers.
    tonic::Status::unauthenticated(message).into_http()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: Option<&str>) -> http::Request<()> {
        let mut b = http::Request::builder().uri("/api/v1/pods");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(()).unwrap_or_default()
    }

    #[tokio::test]
    async fn valid_tokens_pass_with_identity_and_others_are_refused() {
        let tokens = TokenAuthenticator::new(Vec::new());
        let token = tokens.issue_plugin_token("a");
        let mut ok = request(Some(&format!("Bearer {token}")));
        assert!(authenticate(&tokens, None, &mut ok, false).await.is_ok());
        assert_eq!(
            ok.extensions().get::<TokenIdentity>(),
            Some(&TokenIdentity::Plugin("a".into()))
        );
        let mut none = request(None);
        assert!(authenticate(&tokens, None, &mut none, false).await.is_ok());
        assert!(none.extensions().get::<TokenIdentity>().is_none());
        let rest = authenticate(&tokens, None, &mut request(Some("Bearer nope")), false).await;
        assert_eq!(
            rest.err().map(|r| r.status()),
            Some(StatusCode::UNAUTHORIZED)
        );
        let grpc = authenticate(&tokens, None, &mut request(Some("Bearer nope")), true).await;
        let grpc_status = grpc
            .err()
            .and_then(|r| r.headers().get("grpc-status").cloned());
        assert_eq!(grpc_status, Some(HeaderValue::from_static("16")));
    }
}
