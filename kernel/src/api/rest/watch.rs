//! Watch responses: newline-delimited JSON events, streamed.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderValue, header};
use axum::response::Response;
use futures::StreamExt;
use serde_json::json;

use super::format::{self, IncludeObject, Representation};
use crate::error::ApiError;
use crate::registry::ResourceType;
use crate::watch::{EventType, Watcher};

/// How long a watch without `timeoutSeconds` stays open.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Streams a watcher's events. Plain JSON events are the bytes the watch
/// cache encoded once for all watchers; tables are built per watcher. A
/// watcher that ends with an error (it fell behind) gets an ERROR event
/// carrying a `Status`, as Kubernetes sends.
pub fn response(
    rt: Arc<ResourceType>,
    watcher: Watcher,
    representation: Representation,
    include: IncludeObject,
    timeout_seconds: Option<u64>,
) -> Response {
    let timeout = timeout_seconds
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_WATCH_TIMEOUT);
    let deadline = tokio::time::sleep(timeout);
    let mut first_table = true;
    let events = watcher.into_stream().map(move |event| {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                let (_, status) = ApiError::from(e).to_status();
                return Ok::<_, std::convert::Infallible>(encode_line("ERROR", &status));
            }
        };
        let line = match representation {
            Representation::Object => event.json_line(),
            _ if event.kind == EventType::Bookmark => event.json_line(),
            Representation::Table => {
                let value = event.object.value();
                let rv = value.pointer("/metadata/resourceVersion").cloned();
                let object = format::table(
                    &rt,
                    [&value],
                    include,
                    std::mem::take(&mut first_table),
                    json!({ "resourceVersion": rv.unwrap_or_default() }),
                );
                encode_line(event.kind.as_str(), &object)
            }
            Representation::Metadata => encode_line(
                event.kind.as_str(),
                &format::partial_metadata(&event.object.value()),
            ),
        };
        Ok(line)
    });
    let stream = events.take_until(deadline);
    let mut response = Response::new(axum::body::Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn encode_line(event_type: &str, object: &serde_json::Value) -> bytes::Bytes {
    let mut out =
        serde_json::to_vec(&json!({ "type": event_type, "object": object })).unwrap_or_default();
    out.push(b'\n');
    bytes::Bytes::from(out)
}
