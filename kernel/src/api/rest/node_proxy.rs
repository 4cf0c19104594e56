//! Requests the kernel answers by asking a node's kubelet: `pods/log` (what
//! `kubectl logs` reads), `pods/exec` (`kubectl exec`) and
//! `pods/portforward` (`kubectl port-forward`), the last two WebSockets the
//! kernel passes through. The kernel finds the pod's node, reads the
//! kubelet's address from the Node object (`InternalIP` and
//! `status.daemonEndpoints.kubeletEndpoint.Port`) and relays the kubelet's
//! answer, so clients only ever talk to the kernel.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::{RestState, error_response};
use crate::error::ApiError;
use crate::service::Target;

/// The query parameters of `pods/log` the kubelet understands.
const LOG_PARAMS: &[&str] = &[
    "follow",
    "tailLines",
    "previous",
    "timestamps",
    "sinceSeconds",
    "limitBytes",
];

/// How long to wait for a kubelet to accept the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `GET /api/v1/namespaces/{namespace}/pods/{name}/log`.
pub async fn pod_log(
    State(state): State<Arc<RestState>>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match proxy_log(&state, &namespace, &name, &query).await {
        Ok(response) => response,
        Err(err) => error_response(err),
    }
}

/// `GET`/`POST /api/v1/namespaces/{namespace}/pods/{name}/exec`.
pub async fn pod_exec(
    State(state): State<Arc<RestState>>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    match proxy_exec(
        &state,
        &namespace,
        &name,
        query.unwrap_or_default(),
        request,
    )
    .await
    {
        Ok(response) => response,
        Err(err) => error_response(err),
    }
}

/// `GET`/`POST /api/v1/namespaces/{namespace}/pods/{name}/portforward`.
pub async fn pod_port_forward(
    State(state): State<Arc<RestState>>,
    Path((namespace, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let result = async {
        let pod = get(&state, "pods", Some(&namespace), &name).await?;
        let target = locate_node(&state, &pod, &name, String::new()).await?;
        let query = query.unwrap_or_default();
        let path = format!("/portforward/{namespace}/{name}?{query}");
        proxy_upgrade(&target, &path, request, "port-forward needs a WebSocket upgrade (SPDY/3.1+portforward.k8s.io, kubectl 1.31 or later); SPDY is not served").await
    }
    .await;
    result.unwrap_or_else(error_response)
}

/// The pod, its node's kubelet address and the chosen container.
struct PodOnNode {
    authority: String,
    node_name: String,
    container: String,
}

async fn locate(
    state: &RestState,
    namespace: &str,
    name: &str,
    container: Option<&str>,
) -> Result<PodOnNode, ApiError> {
    let pod = get(state, "pods", Some(namespace), name).await?;
    let container = choose_container(&pod, name, container)?;
    locate_node(state, &pod, name, container).await
}

/// The kubelet of the node `pod` is bound to.
async fn locate_node(
    state: &RestState,
    pod: &Value,
    name: &str,
    container: String,
) -> Result<PodOnNode, ApiError> {
    let node_name = pod["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if node_name.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let node = get(state, "nodes", None, &node_name).await?;
    let authority = kubelet_authority(&node).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "node {node_name} has no kubelet address (InternalIP and kubelet port) in its status"
        ))
    })?;
    Ok(PodOnNode {
        authority,
        node_name,
        container,
    })
}

/// Headers of a WebSocket upgrade the kubelet needs to see.
const UPGRADE_HEADERS: &[&str] = &[
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
];

async fn proxy_exec(
    state: &RestState,
    namespace: &str,
    name: &str,
    query: String,
    request: Request,
) -> Result<Response, ApiError> {
    let container = query_value(&query, "container");
    let target = locate(state, namespace, name, container.as_deref()).await?;
    let path = format!("/exec/{namespace}/{name}/{}?{query}", target.container);
    proxy_upgrade(
        &target,
        &path,
        request,
        "exec needs a WebSocket upgrade (v5.channel.k8s.io, kubectl 1.30 or later); SPDY is not served",
    )
    .await
}

/// Passes a client's WebSocket upgrade through to the kubelet's `path`,
/// then copies bytes both ways until either side closes.
async fn proxy_upgrade(
    target: &PodOnNode,
    path: &str,
    mut request: Request,
    not_websocket: &str,
) -> Result<Response, ApiError> {
    let websocket = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !websocket {
        // kubectl falls back to SPDY only when the WebSocket upgrade fails.
        return Err(ApiError::BadRequest(not_websocket.to_owned()));
    }
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(&target.authority),
    )
    .await
    .map_err(|_| unreachable(target, "connection timed out"))?
    .map_err(|e| unreachable(target, &e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(target, &e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = connection.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet upgrade connection ended");
        }
    });
    let mut upstream = http::Request::get(path)
        .header(header::HOST, &target.authority)
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    for name in UPGRADE_HEADERS {
        if let Some(value) = request.headers().get(*name) {
            upstream.headers_mut().insert(*name, value.clone());
        }
    }
    let response = sender
        .send_request(upstream)
        .await
        .map_err(|e| unreachable(target, &e.to_string()))?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let text = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
            .unwrap_or_default();
        return Err(match status {
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => ApiError::BadRequest(text),
            _ => ApiError::ServiceUnavailable(format!(
                "kubelet of node {}: {text}",
                target.node_name
            )),
        });
    }
    let mut switching = Response::new(Body::empty());
    *switching.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in response.headers() {
        switching.headers_mut().insert(name.clone(), value.clone());
    }
    let client_upgrade = hyper::upgrade::on(&mut request);
    let kubelet_upgrade = hyper::upgrade::on(response);
    tokio::spawn(async move {
        let (client, kubelet) = match tokio::join!(client_upgrade, kubelet_upgrade) {
            (Ok(client), Ok(kubelet)) => (client, kubelet),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let mut client = hyper_util::rt::TokioIo::new(client);
        let mut kubelet = hyper_util::rt::TokioIo::new(kubelet);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut kubelet).await {
            tracing::debug!(error = %e, "upgraded stream ended");
        }
    });
    Ok(switching)
}

fn unreachable(target: &PodOnNode, why: &str) -> ApiError {
    ApiError::ServiceUnavailable(format!(
        "error reaching the kubelet of node {} at {}: {why}",
        target.node_name, target.authority
    ))
}

/// The first value of `key` in a raw query string, percent-decoded.
fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| url_decode(v))
    })
}

fn url_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn proxy_log(
    state: &RestState,
    namespace: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let PodOnNode {
        authority,
        node_name,
        container,
    } = locate(
        state,
        namespace,
        name,
        query.get("container").map(String::as_str),
    )
    .await?;
    let mut path = format!("/containerLogs/{namespace}/{name}/{container}");
    let params: Vec<String> = LOG_PARAMS
        .iter()
        .filter_map(|p| query.get(*p).map(|v| format!("{p}={}", encode(v))))
        .collect();
    if !params.is_empty() {
        path = format!("{path}?{}", params.join("&"));
    }
    let uri: http::Uri = format!("http://{authority}{path}")
        .parse()
        .map_err(|e| ApiError::Internal(format!("kubelet address {authority}: {e}")))?;
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    let client: Client<_, Body> = Client::builder(TokioExecutor::new()).build(connector);
    let request = http::Request::get(uri)
        .body(Body::empty())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let response = client.request(request).await.map_err(|e| {
        ApiError::ServiceUnavailable(format!(
            "error reaching the kubelet of node {node_name} at {authority}: {e}"
        ))
    })?;
    let status = response.status();
    if !status.is_success() {
        // The kubelet explains itself in plain text; kubectl prints a Status.
        let text = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
            .unwrap_or_default();
        return Err(match status {
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST => ApiError::BadRequest(text),
            _ => ApiError::ServiceUnavailable(format!("kubelet of node {node_name}: {text}")),
        });
    }
    let body = Body::new(response.into_body());
    let mut proxied = Response::new(body);
    proxied
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(proxied)
}

async fn get(
    state: &RestState,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let rt = state
        .service
        .registry()
        .get("", "v1", plural)
        .ok_or_else(|| ApiError::Internal(format!("{plural} are not registered")))?;
    state
        .service
        .get(&Target {
            rt,
            namespace: namespace.map(str::to_owned),
            name: Some(name.to_owned()),
        })
        .await
}

/// The container to read: the one asked for, or the only one there is, as
/// Kubernetes chooses (a `kubectl.kubernetes.io/default-container`
/// annotation is honoured by kubectl itself).
fn choose_container(pod: &Value, pod_name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    let mut all = names("initContainers");
    all.extend(containers.iter().cloned());
    all.extend(names("ephemeralContainers"));
    match asked.filter(|c| !c.is_empty()) {
        Some(c) if all.iter().any(|n| n == c) => Ok(c.to_owned()),
        Some(c) => Err(ApiError::BadRequest(format!(
            "container {c} is not valid for pod {pod_name}"
        ))),
        None => match containers.as_slice() {
            [only] => Ok(only.clone()),
            _ => Err(ApiError::BadRequest(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            ))),
        },
    }
}

/// `ip:port` of the node's kubelet, from its status.
fn kubelet_authority(node: &Value) -> Option<String> {
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].as_u64()?;
    let addresses = node["status"]["addresses"].as_array()?;
    let address = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|kind| {
            addresses
                .iter()
                .find(|a| a["type"] == *kind)
                .and_then(|a| a["address"].as_str())
        })?;
    if port == 0 || address.is_empty() {
        return None;
    }
    Some(if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    })
}

/// Percent-encodes a query value (the values are numbers and booleans, but
/// nothing a client sends may break the kubelet's URL).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn chooses_the_only_container_or_the_named_one() {
        let pod = json!({"spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "app"}]
        }});
        assert_eq!(choose_container(&pod, "p", None).ok(), Some("app".into()));
        assert_eq!(
            choose_container(&pod, "p", Some("init")).ok(),
            Some("init".into())
        );
        let Err(err) = choose_container(&pod, "p", Some("nope")) else {
            panic!("unknown container accepted");
        };
        assert_eq!(err.to_string(), "container nope is not valid for pod p");
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let Err(err) = choose_container(&two, "p", None) else {
            panic!("ambiguous container accepted");
        };
        assert_eq!(
            err.to_string(),
            "a container name must be specified for pod p, choose one of: [a b]"
        );
    }

    #[test]
    fn kubelet_address_comes_from_the_node_status() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }});
        assert_eq!(kubelet_authority(&node).as_deref(), Some("10.0.0.5:10250"));
        let v6 = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": "::1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 1}}
        }});
        assert_eq!(kubelet_authority(&v6).as_deref(), Some("[::1]:1"));
        assert_eq!(kubelet_authority(&json!({"status": {}})), None);
    }

    #[test]
    fn query_values_are_encoded_and_decoded() {
        assert_eq!(encode("10"), "10");
        assert_eq!(encode("a b&c"), "a%20b%26c");
        let query = "command=sh&container=my%20app&stdin=true";
        assert_eq!(query_value(query, "container").as_deref(), Some("my app"));
        assert_eq!(query_value(query, "tty"), None);
        assert_eq!(url_decode("%zz+%41"), "%zz A");
    }
}
