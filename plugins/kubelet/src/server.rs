//! The kubelet's HTTP server, which the kernel proxies `kubectl logs` to:
//! `GET /containerLogs/{namespace}/{pod}/{container}` with `follow`,
//! `tailLines`, `previous`, `timestamps`, `sinceSeconds`, `limitBytes`.
//! Exec (`/exec/...`) and port-forward (`/portforward/...`) are WebSocket
//! upgrades beside it.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use kerno_proto::runtime::v1 as rt;
use serde::Deserialize;

use crate::drivers::RuntimeClient;
use crate::pod::ContainerIndex;

/// What handlers share.
#[derive(Clone)]
pub struct ServerState {
    /// The runtime driver.
    pub runtime: RuntimeClient,
    /// Current container ids by pod and name.
    pub index: ContainerIndex,
}

/// Query of a log request (Kubernetes' names).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    /// Stream new lines as they are written.
    #[serde(default)]
    pub follow: Option<String>,
    /// Only the last N lines.
    pub tail_lines: Option<i64>,
    /// The previous instance of the container.
    #[serde(default)]
    pub previous: Option<String>,
    /// Prefix lines with their time.
    #[serde(default)]
    pub timestamps: Option<String>,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<i64>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<i64>,
}

fn flag(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("" | "true" | "1"))
}

/// The router.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(container_logs),
        )
        .route(
            "/exec/{namespace}/{pod}/{container}",
            get(crate::exec::exec),
        )
        .route(
            "/portforward/{namespace}/{pod}",
            get(crate::portforward::port_forward),
        )
        .with_state(state)
}

async fn container_logs(
    State(state): State<ServerState>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let Some(id) = state.index.get(&namespace, &pod, &container) else {
        let msg = format!("container \"{container}\" in pod \"{pod}\" is not available\n");
        return (StatusCode::NOT_FOUND, msg).into_response();
    };
    let since = q.since_seconds.map(|s| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        now - s
    });
    let request = rt::ReadLogsRequest {
        container_id: id,
        follow: flag(&q.follow),
        tail_lines: q.tail_lines.unwrap_or(-1),
        previous: flag(&q.previous),
        timestamps: flag(&q.timestamps),
        since_unix_seconds: since.unwrap_or(0),
        limit_bytes: q.limit_bytes.unwrap_or(0),
    };
    let mut runtime = state.runtime.clone();
    match runtime.read_logs(request).await {
        Ok(stream) => {
            let body = stream.into_inner().map(|chunk| {
                chunk
                    .map(|c| bytes::Bytes::from(c.data))
                    .map_err(|s| std::io::Error::other(s.message().to_owned()))
            });
            Response::builder()
                .header("content-type", "text/plain")
                .body(Body::from_stream(body))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Err(s) if s.code() == tonic::Code::NotFound => {
            (StatusCode::NOT_FOUND, format!("{}\n", s.message())).into_response()
        }
        Err(s) => (StatusCode::BAD_GATEWAY, format!("{}\n", s.message())).into_response(),
    }
}

/// Serves `router` on `listener` until `stop` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ServerState,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(stop)
        .await
}
