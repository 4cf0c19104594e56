//! `kubectl exec` on the node: `GET /exec/{namespace}/{pod}/{container}`
//! upgraded to a WebSocket speaking Kubernetes' `v5.channel.k8s.io` (or
//! `v4.channel.k8s.io`) sub-protocol, bridged to the runtime driver's
//! streaming `Exec`. The kernel passes the client's upgrade through to here.
//!
//! Each binary message starts with a channel byte: 0 stdin, 1 stdout,
//! 2 stderr, 3 the final `Status` (JSON), 4 terminal resize (JSON
//! `{"Width","Height"}`); in v5 the client sends `[255, 0]` when its stdin
//! ends. The server writes the `Status` on channel 3, then closes.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use kerno_proto::runtime::v1 as rt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::server::ServerState;

/// The sub-protocols served, newest first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// What the query asks for (Kubernetes' parameter names).
#[derive(Debug, Default, PartialEq)]
pub struct ExecQuery {
    /// The command and its arguments (`command` repeated).
    pub command: Vec<String>,
    /// Attach stdin.
    pub stdin: bool,
    /// Allocate a terminal.
    pub tty: bool,
}

impl ExecQuery {
    /// Parses `command=a&command=b&stdin=true&tty=1...`.
    pub fn parse(query: &str) -> ExecQuery {
        let mut q = ExecQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode(value);
            let on = matches!(value.as_str(), "" | "true" | "1");
            match key {
                "command" => q.command.push(value),
                "stdin" => q.stdin = on,
                "tty" => q.tty = on,
                _ => {}
            }
        }
        q
    }
}

/// Decodes `%XX` and `+` in a query value.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
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

fn hex(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|d| d as u8)
}

/// The route handler.
pub async fn exec(
    State(state): State<ServerState>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    let query = ExecQuery::parse(query.as_deref().unwrap_or_default());
    if query.command.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 command\n",
        )
            .into_response();
    }
    let Some(container_id) = state.index.get(&namespace, &pod, &container) else {
        let msg = format!("container \"{container}\" in pod \"{pod}\" is not running\n");
        return (StatusCode::NOT_FOUND, msg).into_response();
    };
    let runtime = state.runtime.clone();
    upgrade
        .protocols(PROTOCOLS)
        .on_upgrade(move |socket| run(socket, runtime, container_id, query))
}

/// Bridges one WebSocket to one runtime exec until the command ends.
async fn run(
    socket: WebSocket,
    mut runtime: crate::drivers::RuntimeClient,
    container_id: String,
    query: ExecQuery,
) {
    let (mut to_client, mut from_client) = socket.split();
    let (input, inputs) = mpsc::channel::<rt::ExecInput>(16);
    let start = rt::ExecInput {
        input: Some(rt::exec_input::Input::Start(rt::ExecStart {
            container_id,
            cmd: query.command.clone(),
            tty: query.tty,
            stdin: query.stdin,
        })),
    };
    if input.send(start).await.is_err() {
        return;
    }
    let outputs = match runtime.exec(ReceiverStream::new(inputs)).await {
        Ok(stream) => stream.into_inner(),
        Err(status) => {
            let failure = failure_status(&format!("exec failed: {}", status.message()), None);
            let _ = to_client.send(channel_message(ERROR, &failure)).await;
            let _ = to_client.send(normal_close()).await;
            return;
        }
    };
    // Client to runtime: stdin, resizes, the end of stdin.
    let forward_input = async move {
        while let Some(Ok(message)) = from_client.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((&channel, payload)) = data.split_first() else {
                continue;
            };
            let next = match channel {
                STDIN => rt::exec_input::Input::Stdin(payload.to_vec()),
                RESIZE => match serde_json::from_slice::<serde_json::Value>(payload) {
                    Ok(size) => rt::exec_input::Input::Resize(rt::TerminalSize {
                        width: size["Width"].as_u64().unwrap_or(0) as u32,
                        height: size["Height"].as_u64().unwrap_or(0) as u32,
                    }),
                    Err(_) => continue,
                },
                CLOSE if payload.first() == Some(&STDIN) => rt::exec_input::Input::CloseStdin(true),
                _ => continue,
            };
            if input
                .send(rt::ExecInput { input: Some(next) })
                .await
                .is_err()
            {
                break;
            }
        }
        // Keep the input stream open: closing it could end the exec early.
        std::future::pending::<()>().await;
    };
    // Runtime to client: output, then the final status.
    let forward_output = async move {
        let mut outputs = outputs;
        let mut exit_code = None;
        let mut error = None;
        loop {
            match outputs.next().await {
                Some(Ok(out)) => match out.output {
                    Some(rt::exec_output::Output::Stdout(data)) => {
                        let _ = to_client.send(data_message(STDOUT, &data)).await;
                    }
                    Some(rt::exec_output::Output::Stderr(data)) => {
                        let _ = to_client.send(data_message(STDERR, &data)).await;
                    }
                    Some(rt::exec_output::Output::ExitCode(code)) => exit_code = Some(code),
                    None => {}
                },
                Some(Err(status)) => {
                    error = Some(status.message().to_owned());
                    break;
                }
                None => break,
            }
        }
        let status = match (exit_code, error) {
            (Some(0), _) => json!({"metadata": {}, "status": "Success"}),
            (Some(code), _) => failure_status(
                &format!("command terminated with non-zero exit code: exit status {code}"),
                Some(code),
            ),
            (None, Some(msg)) => failure_status(&msg, None),
            (None, None) => failure_status("the command ended without an exit code", None),
        };
        let _ = to_client.send(channel_message(ERROR, &status)).await;
        let _ = to_client.send(normal_close()).await;
    };
    tokio::select! {
        () = forward_input => {}
        () = forward_output => {}
    }
}

/// A failed `Status` as the kubelet reports it; `exit_code` makes it the
/// `NonZeroExitCode` kubectl turns into its own exit code.
fn failure_status(message: &str, exit_code: Option<i32>) -> serde_json::Value {
    match exit_code {
        Some(code) => json!({
            "metadata": {}, "status": "Failure", "message": message,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
        }),
        None => json!({
            "metadata": {}, "status": "Failure", "message": message,
            "reason": "InternalError"
        }),
    }
}

/// A close frame with status 1000: clients read any other (or none) as a
/// broken stream.
fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: close_code::NORMAL,
        reason: "".into(),
    }))
}

fn data_message(channel: u8, data: &[u8]) -> Message {
    let mut framed = Vec::with_capacity(data.len() + 1);
    framed.push(channel);
    framed.extend_from_slice(data);
    Message::Binary(framed.into())
}

fn channel_message(channel: u8, value: &serde_json::Value) -> Message {
    data_message(channel, value.to_string().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parses_repeated_commands_and_flags() {
        let q = ExecQuery::parse(
            "command=sh&command=-c&command=echo+a%20b&stdin=true&tty=1&stdout=true",
        );
        assert_eq!(
            q,
            ExecQuery {
                command: vec!["sh".into(), "-c".into(), "echo a b".into()],
                stdin: true,
                tty: true,
            }
        );
        assert!(!ExecQuery::parse("command=ls&stdin=false").stdin);
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
    }

    #[test]
    fn exit_codes_become_non_zero_exit_statuses() {
        let s = failure_status("x", Some(3));
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        let framed = channel_message(ERROR, &s);
        let Message::Binary(bytes) = framed else {
            panic!("binary frame");
        };
        assert_eq!(bytes[0], ERROR);
    }
}
