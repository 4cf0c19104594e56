//! `kubectl port-forward` on the node: `GET /portforward/{namespace}/{pod}`
//! upgraded to a WebSocket with the sub-protocol
//! `SPDY/3.1+portforward.k8s.io`, inside which kubectl runs a SPDY session
//! (kubectl 1.31 and later; the kernel passes the upgrade through).
//!
//! For every local connection kubectl opens two streams with the headers
//! `streamType` (`error`, then `data`), `port` and `requestID`. The data
//! stream is joined to a TCP connection to `127.0.0.1:<port>` made inside the
//! pod's network namespace (as Kubernetes' runtimes do), so a server bound to
//! the pod's loopback is reachable and no packet leaves the pod's namespace;
//! if the connection fails, the reason goes back on the error stream, which
//! kubectl prints.

pub mod spdy;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::pod::PodNetwork;
use crate::server::ServerState;
use spdy::{Decoder, Encoder, Frame};

/// The WebSocket sub-protocol kubectl asks for.
pub const PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// How long a connection to the pod's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Bytes read from the pod per data frame.
const CHUNK: usize = 32 * 1024;

/// The upgrade handler.
pub async fn port_forward(
    State(state): State<ServerState>,
    Path((namespace, pod)): Path<(String, String)>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let Some(network) = state.index.pod_network(&namespace, &pod) else {
        let msg =
            format!("pod \"{pod}\" in namespace \"{namespace}\" has no network on this node\n");
        return (StatusCode::NOT_FOUND, msg).into_response();
    };
    let target = PodTarget {
        name: format!("{namespace}/{pod}"),
        network,
    };
    upgrade
        .protocols([PROTOCOL])
        .on_upgrade(move |socket| session(socket, target))
}

/// Where the streams of one session connect to.
#[derive(Clone)]
struct PodTarget {
    name: String,
    network: PodNetwork,
}

/// Connects to `127.0.0.1:port` in the pod's network namespace.
async fn connect_in_pod(network: &PodNetwork, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let PodNetwork::Namespace(path) = network else {
        return tokio::net::TcpStream::connect(address).await;
    };
    let stream = kerno_sdk::netns::in_network_namespace(path.clone(), move || {
        let stream = std::net::TcpStream::connect_timeout(&address, CONNECT_TIMEOUT)?;
        stream.set_nonblocking(true)?;
        Ok(stream)
    })
    .await?;
    tokio::net::TcpStream::from_std(stream)
}

/// One data stream's way to its TCP connection: bytes, or `None` for the
/// client's FIN.
type ToPod = mpsc::Sender<Option<Vec<u8>>>;

/// Runs one SPDY session until the client ends it.
async fn session(socket: WebSocket, target: PodTarget) {
    let (mut sink, mut source) = socket.split();
    let (frames, mut outgoing) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if sink.send(Message::Binary(frame.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let mut decoder = Decoder::default();
    let mut encoder = Encoder::default();
    let mut error_streams: HashMap<String, u32> = HashMap::new();
    let mut data_streams: HashMap<u32, ToPod> = HashMap::new();
    let mut forwards = JoinSet::new();
    'session: while let Some(Ok(message)) = source.next().await {
        match message {
            Message::Binary(bytes) => decoder.push(&bytes),
            Message::Close(_) => break,
            _ => continue,
        }
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(pod = %target.name, error = %e, "port-forward session refused");
                    break 'session;
                }
            };
            match frame {
                Frame::SynStream {
                    stream_id, headers, ..
                } => {
                    let _ = frames.send(encoder.syn_reply(stream_id, &[])).await;
                    let request = headers.get("requestid").cloned().unwrap_or_default();
                    match headers.get("streamtype").map(String::as_str) {
                        Some("error") => {
                            error_streams.insert(request, stream_id);
                        }
                        Some("data") => {
                            let (to_pod, from_client) = mpsc::channel(32);
                            data_streams.insert(stream_id, to_pod);
                            forwards.spawn(forward(
                                target.clone(),
                                headers.get("port").cloned().unwrap_or_default(),
                                stream_id,
                                error_streams.remove(&request),
                                from_client,
                                frames.clone(),
                            ));
                        }
                        _ => {
                            let _ = frames
                                .send(encoder.rst_stream(stream_id, spdy::RST_CANCEL))
                                .await;
                        }
                    }
                }
                Frame::Data {
                    stream_id,
                    data,
                    fin,
                } => {
                    if let Some(to_pod) = data_streams.get(&stream_id) {
                        if !data.is_empty() {
                            let _ = to_pod.send(Some(data)).await;
                        }
                        if fin {
                            let _ = to_pod.send(None).await;
                            data_streams.remove(&stream_id);
                        }
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    data_streams.remove(&stream_id);
                }
                Frame::Ping { id } => {
                    let _ = frames.send(encoder.ping(id)).await;
                }
                Frame::GoAway => break 'session,
                Frame::SynReply { .. }
                | Frame::Headers { .. }
                | Frame::Settings
                | Frame::WindowUpdate
                | Frame::Unknown(_) => {}
            }
        }
    }
    forwards.abort_all();
    drop(frames);
    let _ = writer.await;
}

/// Joins one data stream to a TCP connection to the pod's `port`.
async fn forward(
    target: PodTarget,
    port: String,
    stream_id: u32,
    error_stream: Option<u32>,
    mut from_client: mpsc::Receiver<Option<Vec<u8>>>,
    frames: mpsc::Sender<Vec<u8>>,
) {
    let fail = |why: String| {
        let frames = frames.clone();
        async move {
            if let Some(error_stream) = error_stream {
                let _ = frames
                    .send(spdy::data_frame(error_stream, why.as_bytes(), true))
                    .await;
            }
            let _ = frames.send(spdy::data_frame(stream_id, &[], true)).await;
        }
    };
    let Ok(port_number) = port.parse::<u16>() else {
        fail(format!("invalid port {port:?}")).await;
        return;
    };
    let connected = tokio::time::timeout(
        CONNECT_TIMEOUT,
        connect_in_pod(&target.network, port_number),
    )
    .await
    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()));
    let stream = match connected {
        Ok(stream) => stream,
        Err(e) => {
            fail(format!(
                "error forwarding port {port_number} to pod {}: failed to connect to localhost:{port_number} inside the pod's network namespace: {e}",
                target.name
            ))
            .await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut from_pod, mut to_pod) = stream.into_split();
    let upstream = async move {
        while let Some(Some(bytes)) = from_client.recv().await {
            if to_pod.write_all(&bytes).await.is_err() {
                return;
            }
        }
        // The client's FIN (or the stream's end): half-close towards the pod.
        let _ = to_pod.shutdown().await;
    };
    let downstream = {
        let frames = frames.clone();
        async move {
            let mut buffer = vec![0u8; CHUNK];
            loop {
                match from_pod.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if frames
                            .send(spdy::data_frame(stream_id, &buffer[..n], false))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            let _ = frames.send(spdy::data_frame(stream_id, &[], true)).await;
            if let Some(error_stream) = error_stream {
                let _ = frames.send(spdy::data_frame(error_stream, &[], true)).await;
            }
        }
    };
    // The pod closing its side ends the forward; the client's FIN only
    // half-closes, so a reply still in flight reaches the client.
    tokio::select! {
        () = downstream => {}
        () = async { upstream.await; std::future::pending::<()>().await } => {}
    }
}
