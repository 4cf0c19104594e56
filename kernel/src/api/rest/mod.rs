//! The Kubernetes-compatible REST API: what a stock `kubectl` speaks.
//!
//! Discovery, OpenAPI and version documents have their own routes; every
//! resource path goes to one handler that parses the path itself (Kubernetes'
//! paths are ambiguous for a router: `/api/v1/namespaces/x` is an object,
//! `/api/v1/namespaces/x/pods` a collection) and calls the service layer.

mod format;
mod node_proxy;
pub mod path;
pub mod protobuf;
mod resource;
mod reviews;
mod watch;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::api::{discovery, openapi};
use crate::error::ApiError;
use crate::service::Service;

/// State shared by the REST handlers.
pub struct RestState {
    /// The service layer.
    pub service: Arc<Service>,
    /// Cached OpenAPI documents.
    pub openapi: openapi::OpenApiCache,
    /// RBAC, when authorization is on.
    pub authorizer: Option<Arc<crate::auth::rbac::RbacAuthorizer>>,
}

/// Largest request body accepted (as Kubernetes: 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The REST router.
pub fn router(state: Arc<RestState>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ok))
        .route("/api", get(api_versions))
        .route("/apis", get(api_groups))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_v3_index))
        .route("/openapi/v3/{*path}", get(openapi_v3_doc))
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/log",
            get(node_proxy::pod_log),
        )
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/exec",
            get(node_proxy::pod_exec).post(node_proxy::pod_exec),
        )
        .route(
            "/api/v1/namespaces/{namespace}/pods/{name}/portforward",
            get(node_proxy::pod_port_forward).post(node_proxy::pod_port_forward),
        )
        .merge(reviews::routes())
        .fallback(fallback)
        .with_state(state)
}

/// The `/version` document: Kubernetes 1.33, so kubectl 1.32 sees no skew.
pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": concat!("v1.33.0+kerno-", env!("CARGO_PKG_VERSION")),
        "gitCommit": "kerno",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

async fn version() -> Response {
    json_response(StatusCode::OK, &version_info())
}

async fn ok() -> &'static str {
    "ok"
}

fn accept(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn accept_opt(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())
}

/// `/api` and `/apis`: the legacy documents or aggregated discovery, as the
/// client's `Accept` asks.
fn discovery_root(state: &RestState, headers: &HeaderMap, core: bool) -> Response {
    let registry = state.service.registry();
    let format = discovery::negotiate(accept_opt(headers));
    match format.aggregated_version() {
        Some(version) => typed_json(
            format.content_type(),
            &discovery::aggregated(registry, core, version),
        ),
        None if core => {
            let server = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            json_response(StatusCode::OK, &discovery::api_versions(server))
        }
        None => json_response(StatusCode::OK, &discovery::group_list(registry)),
    }
}

async fn api_versions(State(state): State<Arc<RestState>>, headers: HeaderMap) -> Response {
    discovery_root(&state, &headers, true)
}

async fn api_groups(State(state): State<Arc<RestState>>, headers: HeaderMap) -> Response {
    discovery_root(&state, &headers, false)
}

/// Builds (or fetches from cache) the OpenAPI documents off the runtime
/// threads: a build walks every schema.
async fn openapi_docs(state: &Arc<RestState>) -> Result<Arc<openapi::OpenApiDocs>, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || state.openapi.docs(state.service.registry()))
        .await
        .map_err(|e| ApiError::Internal(format!("building the OpenAPI documents: {e}")))
}

fn bytes_response(content_type: &'static str, body: bytes::Bytes) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn openapi_v2(State(state): State<Arc<RestState>>, headers: HeaderMap) -> Response {
    let docs = match openapi_docs(&state).await {
        Ok(docs) => docs,
        Err(e) => return error_response(e),
    };
    let wants = accept(&headers);
    if wants.contains("protobuf") && !wants.contains("json") {
        bytes_response(openapi::OPENAPI_V2_PROTOBUF, docs.v2_protobuf().clone())
    } else {
        bytes_response("application/json", docs.v2_json().clone())
    }
}

async fn openapi_v3_index(State(state): State<Arc<RestState>>) -> Response {
    match openapi_docs(&state).await {
        Ok(docs) => bytes_response("application/json", docs.index_json().clone()),
        Err(e) => error_response(e),
    }
}

async fn openapi_v3_doc(
    State(state): State<Arc<RestState>>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> Response {
    let docs = match openapi_docs(&state).await {
        Ok(docs) => docs,
        Err(e) => return error_response(e),
    };
    match docs.group_version(&path) {
        Some(doc) => {
            let mut response = bytes_response("application/json", doc.json.clone());
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", doc.hash)) {
                response.headers_mut().insert(header::ETAG, etag);
            }
            response
        }
        None => error_response(ApiError::NotFoundMessage(format!(
            "the server could not find the requested resource: /openapi/v3/{path}"
        ))),
    }
}

async fn fallback(State(state): State<Arc<RestState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let registry = state.service.registry();
    // Discovery of one group or group-version.
    let discovery_doc = match segments.as_slice() {
        ["api", "v1"] => Some(discovery::core_resource_list(registry)),
        ["apis", group] => discovery::group(registry, group),
        ["apis", group, version] => discovery::group_resource_list(registry, group, version),
        _ => None,
    };
    if let Some(doc) = discovery_doc {
        return json_response(StatusCode::OK, &doc);
    }
    match path::parse(&path) {
        Some(parsed) => resource::handle(state, parsed, request).await,
        None => error_response(ApiError::NotFoundMessage(format!(
            "the server could not find the requested resource (path {path})"
        ))),
    }
}

/// A JSON response.
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    typed_json("application/json", body)
        .into_response()
        .with_status(code)
}

fn typed_json(content_type: &str, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(axum::body::Body::from(bytes));
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// A Kubernetes `Status` response for an error.
pub fn error_response(err: ApiError) -> Response {
    let (code, status) = err.to_status();
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &status)
}

trait WithStatus {
    fn with_status(self, code: StatusCode) -> Self;
}

impl WithStatus for Response {
    fn with_status(mut self, code: StatusCode) -> Self {
        *self.status_mut() = code;
        self
    }
}
