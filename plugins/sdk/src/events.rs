//! An event recorder: core/v1 Events about objects, aggregated like
//! client-go's (the same object, type, reason and message within a window
//! bump `count` and `lastTimestamp` instead of creating a new Event).
//!
//! Recording never blocks the caller: events go through a bounded channel to
//! a background task; when it is full, events are dropped (as client-go's
//! broadcaster does) so a busy controller is not slowed by its own events.
//!
//! ```no_run
//! # async fn demo(client: kerno_sdk::KernelClient, pod: k8s_openapi::api::core::v1::Pod) {
//! use kerno_sdk::events::{EventRecorder, EventType, reference_of};
//! let recorder = EventRecorder::new(client, "my-controller");
//! recorder.record(reference_of(&pod), EventType::Normal, "Started", "it began");
//! # }
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::json;
use tokio::sync::mpsc;

use crate::client::{Api, KernelClient, Patch, PatchParams, PostParams};

/// How long an Event is updated in place rather than recreated.
const AGGREGATION_WINDOW: Duration = Duration::from_secs(600);
/// How many events may wait to be written before new ones are dropped.
const QUEUE_CAPACITY: usize = 4096;
/// How many events are written at once.
const WRITERS: usize = 8;

/// The current time as k8s-openapi's timestamp (its jiff has no `now()`),
/// with microsecond precision so it also suits `MicroTime`.
pub fn now() -> k8s_openapi::jiff::Timestamp {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    let nanos = i32::try_from(since_epoch.subsec_micros() * 1000).unwrap_or(0);
    k8s_openapi::jiff::Timestamp::new(seconds, nanos)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

/// `Normal` or `Warning`, as Kubernetes' Event `type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Routine.
    Normal,
    /// Something may need attention.
    Warning,
}

impl EventType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// A reference to `obj` for `involvedObject`.
pub fn reference_of<K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta>>(
    obj: &K,
) -> ObjectReference {
    let meta = obj.metadata();
    ObjectReference {
        api_version: Some(K::API_VERSION.to_owned()),
        kind: Some(K::KIND.to_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        field_path: None,
    }
}

struct Pending {
    involved: ObjectReference,
    kind: EventType,
    reason: String,
    message: String,
}

/// Records Events; cheap to clone, all clones share one writer task.
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::Sender<Pending>,
}

impl EventRecorder {
    /// A recorder reporting as `component` (the Event's `source.component`).
    /// Must be called inside a tokio runtime: it spawns the writer task,
    /// which ends when every clone is dropped.
    pub fn new(client: KernelClient, component: impl Into<String>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(write_loop(client, component.into(), rx));
        Self { tx }
    }

    /// Records an event about `involved`; never blocks.
    pub fn record(
        &self,
        involved: ObjectReference,
        kind: EventType,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) {
        let pending = Pending {
            involved,
            kind,
            reason: reason.into(),
            message: message.into(),
        };
        if self.tx.try_send(pending).is_err() {
            tracing::debug!("event queue full; dropping an event");
        }
    }
}

/// What identifies an aggregated event.
type AggregateKey = (String, String, String, EventType, String, String);

struct Seen {
    name: String,
    count: i32,
    at: Instant,
}

fn aggregate_key(p: &Pending) -> AggregateKey {
    (
        p.involved.namespace.clone().unwrap_or_default(),
        p.involved.uid.clone().unwrap_or_default(),
        p.involved.name.clone().unwrap_or_default(),
        p.kind,
        p.reason.clone(),
        p.message.clone(),
    )
}

/// The Event to create first for `p`.
fn new_event(component: &str, p: &Pending, name: String) -> Event {
    let now = Time(now());
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(
                p.involved
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "default".into()),
            ),
            ..ObjectMeta::default()
        },
        involved_object: p.involved.clone(),
        reason: Some(p.reason.clone()),
        message: Some(p.message.clone()),
        type_: Some(p.kind.as_str().to_owned()),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        source: Some(EventSource {
            component: Some(component.to_owned()),
            host: None,
        }),
        reporting_component: Some(component.to_owned()),
        ..Event::default()
    }
}

async fn write_loop(client: KernelClient, component: String, mut rx: mpsc::Receiver<Pending>) {
    let mut seen: HashMap<AggregateKey, Seen> = HashMap::new();
    let mut batch = Vec::with_capacity(WRITERS);
    while rx.recv_many(&mut batch, WRITERS).await > 0 {
        // Forget old aggregates now and then so the map stays bounded.
        if seen.len() > 10_000 {
            seen.retain(|_, s| s.at.elapsed() < AGGREGATION_WINDOW);
        }
        let mut writes = Vec::with_capacity(batch.len());
        for p in batch.drain(..) {
            let key = aggregate_key(&p);
            let namespace = key.0.clone();
            let api: Api<Event> = Api::namespaced(
                client.clone(),
                if namespace.is_empty() {
                    "default"
                } else {
                    &namespace
                },
            );
            match seen.get_mut(&key) {
                Some(s) if s.at.elapsed() < AGGREGATION_WINDOW => {
                    s.count += 1;
                    s.at = Instant::now();
                    let (name, count) = (s.name.clone(), s.count);
                    writes.push(tokio::spawn(async move {
                        let patch = json!({
                            "count": count,
                            "lastTimestamp": Time(now()),
                        });
                        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .map(|_| ())
                    }));
                }
                _ => {
                    let base = p.involved.name.clone().unwrap_or_else(|| "event".into());
                    let name = format!("{base}.{:016x}", rand::random::<u64>());
                    let event = new_event(&component, &p, name.clone());
                    seen.insert(
                        key,
                        Seen {
                            name,
                            count: 1,
                            at: Instant::now(),
                        },
                    );
                    writes.push(tokio::spawn(async move {
                        api.create(&PostParams::default(), &event).await.map(|_| ())
                    }));
                }
            }
        }
        for write in writes {
            if let Ok(Err(e)) = write.await {
                tracing::debug!(error = %e, "writing an event failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(message: &str) -> Pending {
        Pending {
            involved: ObjectReference {
                kind: Some("Pod".into()),
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u1".into()),
                ..ObjectReference::default()
            },
            kind: EventType::Warning,
            reason: "FailedScheduling".into(),
            message: message.into(),
        }
    }

    #[test]
    fn same_object_reason_and_message_aggregate() {
        assert_eq!(aggregate_key(&pending("a")), aggregate_key(&pending("a")));
        assert_ne!(aggregate_key(&pending("a")), aggregate_key(&pending("b")));
    }

    #[test]
    fn new_event_carries_the_involved_object() {
        let e = new_event("sched", &pending("no fit"), "p.1".into());
        assert_eq!(e.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(e.involved_object.name.as_deref(), Some("p"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert_eq!(e.reason.as_deref(), Some("FailedScheduling"));
        assert_eq!(e.count, Some(1));
        assert_eq!(e.source.and_then(|s| s.component).as_deref(), Some("sched"));
    }
}
