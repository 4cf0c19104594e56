//! The access reviews: `kubectl auth can-i` (SelfSubjectAccessReview,
//! SelfSubjectRulesReview), SubjectAccessReview for components, and
//! `kubectl auth whoami` (SelfSubjectReview). Nothing is stored: each POST is
//! answered from the live RBAC policy.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;

use super::{RestState, error_response, json_response};
use crate::auth::rbac::review;
use crate::auth::user::UserInfo;
use crate::error::ApiError;

/// The review routes.
pub fn routes() -> axum::Router<Arc<RestState>> {
    axum::Router::new()
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(self_subject_access_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            post(subject_access_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            post(self_subject_rules_review),
        )
        .route(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            post(self_subject_review),
        )
}

async fn self_subject_access_review(
    State(state): State<Arc<RestState>>,
    request: Request,
) -> Response {
    answer(state, request, "SelfSubjectAccessReview").await
}

async fn subject_access_review(State(state): State<Arc<RestState>>, request: Request) -> Response {
    answer(state, request, "SubjectAccessReview").await
}

async fn self_subject_rules_review(
    State(state): State<Arc<RestState>>,
    request: Request,
) -> Response {
    answer(state, request, "SelfSubjectRulesReview").await
}

async fn self_subject_review(request: Request) -> Response {
    match request.extensions().get::<UserInfo>() {
        Some(user) => json_response(StatusCode::CREATED, &review::self_subject_review(user)),
        None => error_response(ApiError::Unauthorized),
    }
}

async fn answer(state: Arc<RestState>, request: Request, kind: &str) -> Response {
    let Some(user) = request.extensions().get::<UserInfo>().cloned() else {
        return error_response(ApiError::Unauthorized);
    };
    let Some(authorizer) = state.authorizer.clone() else {
        return error_response(ApiError::ServiceUnavailable(
            "authorization is not enabled on this kernel".into(),
        ));
    };
    let (parts, body) = request.into_parts();
    let result = async {
        let bytes = super::resource::read_body(body).await?;
        let mut obj = super::resource::parse_object(&parts.headers, &bytes)?;
        obj["kind"] = serde_json::json!(kind);
        let policy = authorizer.policy();
        match kind {
            "SelfSubjectRulesReview" => review::rules_review(&policy, &user, obj),
            _ => review::access_review(&policy, &user, obj),
        }
    }
    .await;
    match result {
        Ok(answer) => json_response(StatusCode::CREATED, &answer),
        Err(e) => error_response(e),
    }
}
