//! Tests of the watcher state machine and informer against a scripted fake.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::ConfigMap;

use super::*;
use crate::client::{Error, ObjectList, Result, WatchEvent, WatchParams};

pub(crate) fn cm(name: &str, rv: &str) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.namespace = Some("default".into());
    c.metadata.resource_version = Some(rv.into());
    c
}

/// What a scripted watch call does.
pub(crate) enum WatchScript {
    /// Fail the call itself.
    Fail(Error),
    /// Deliver these items, then close.
    Events(Vec<Result<WatchEvent<ConfigMap>>>),
    /// Deliver these items, then stay open forever.
    EventsThenHang(Vec<Result<WatchEvent<ConfigMap>>>),
    /// Wait, then deliver these items and close.
    After(Duration, Vec<Result<WatchEvent<ConfigMap>>>),
}

/// A fake kernel: scripted list pages and watch results, and a log of calls.
#[derive(Clone, Default)]
pub(crate) struct Fake {
    pub lists: Arc<Mutex<VecDeque<Result<ObjectList<ConfigMap>>>>>,
    pub watches: Arc<Mutex<VecDeque<WatchScript>>>,
    pub calls: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    pub fn list(&self, items: Vec<ConfigMap>, rv: &str, cont: Option<&str>) -> &Self {
        self.lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Ok(ObjectList {
                items,
                resource_version: rv.into(),
                continue_token: cont.map(str::to_owned),
            }));
        self
    }

    pub fn watch(&self, script: WatchScript) -> &Self {
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(script);
        self
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait]
impl ListWatch<ConfigMap> for Fake {
    async fn list(&self, lp: &ListParams) -> Result<ObjectList<ConfigMap>> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!(
                "list continue={}",
                lp.continue_token.clone().unwrap_or_default()
            ));
        let next = self
            .lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        next.unwrap_or_else(|| Err(Error::Unavailable("no more scripted lists".into())))
    }

    async fn watch(
        &self,
        _wp: &WatchParams,
        rv: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<ConfigMap>>>> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("watch rv={rv}"));
        let next = self
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front();
        match next {
            Some(WatchScript::Fail(e)) => Err(e),
            Some(WatchScript::Events(events)) => Ok(futures::stream::iter(events).boxed()),
            Some(WatchScript::EventsThenHang(events)) => Ok(futures::stream::iter(events)
                .chain(futures::stream::pending())
                .boxed()),
            Some(WatchScript::After(delay, mut events)) => {
                Ok(futures::stream::once(tokio::time::sleep(delay))
                    .flat_map(move |()| futures::stream::iter(std::mem::take(&mut events)))
                    .boxed())
            }
            None => Ok(futures::stream::pending().boxed()),
        }
    }
}

fn names(event: &WatcherEvent<ConfigMap>) -> String {
    match event {
        WatcherEvent::Restarted(items) => format!(
            "restarted [{}]",
            items
                .iter()
                .filter_map(|c| c.metadata.name.clone())
                .collect::<Vec<_>>()
                .join(",")
        ),
        WatcherEvent::Applied(c) => {
            format!("applied {}", c.metadata.name.clone().unwrap_or_default())
        }
        WatcherEvent::Deleted(c) => {
            format!("deleted {}", c.metadata.name.clone().unwrap_or_default())
        }
    }
}

async fn take(
    stream: &mut (impl futures::Stream<Item = Result<WatcherEvent<ConfigMap>>> + Unpin),
    n: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(60), stream.next()).await {
            Ok(Some(Ok(event))) => out.push(names(&event)),
            Ok(Some(Err(e))) => out.push(format!("error {e}")),
            Ok(None) => out.push("end".into()),
            Err(_) => out.push("timeout".into()),
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn lists_pages_then_watches_from_the_list_revision() {
    let fake = Fake::default();
    fake.list(vec![cm("a", "3")], "10", Some("page2"))
        .list(vec![cm("b", "4")], "10", None)
        .watch(WatchScript::EventsThenHang(vec![
            Ok(WatchEvent::Added(cm("c", "11"))),
            Ok(WatchEvent::Deleted(cm("a", "12"))),
        ]));
    let mut stream = Box::pin(watcher(fake.clone(), ListParams::default()));
    let events = take(&mut stream, 3).await;
    assert_eq!(events, vec!["restarted [a,b]", "applied c", "deleted a"]);
    assert_eq!(
        fake.calls(),
        vec!["list continue=", "list continue=page2", "watch rv=10"]
    );
}

#[tokio::test(start_paused = true)]
async fn resumes_a_closed_watch_from_the_last_revision_without_relisting() {
    let fake = Fake::default();
    fake.list(vec![], "5", None)
        .watch(WatchScript::Events(vec![
            Ok(WatchEvent::Modified(cm("a", "7"))),
            Ok(WatchEvent::Bookmark("9".into())),
        ]))
        .watch(WatchScript::EventsThenHang(vec![Ok(WatchEvent::Added(
            cm("b", "10"),
        ))]));
    let mut stream = Box::pin(watcher(fake.clone(), ListParams::default()));
    let events = take(&mut stream, 3).await;
    assert_eq!(events, vec!["restarted []", "applied a", "applied b"]);
    // The bookmark moved the resume point past the last object event.
    assert_eq!(
        fake.calls(),
        vec!["list continue=", "watch rv=5", "watch rv=9"]
    );
}

#[tokio::test(start_paused = true)]
async fn relists_when_the_revision_is_gone() {
    let fake = Fake::default();
    fake.list(vec![cm("a", "1")], "5", None)
        .watch(WatchScript::Events(vec![Err(Error::Gone(
            "too old".into(),
        ))]))
        .list(vec![cm("b", "20")], "20", None)
        .watch(WatchScript::Fail(Error::Gone("still too old".into())))
        .list(vec![cm("c", "30")], "30", None);
    let mut stream = Box::pin(watcher(fake.clone(), ListParams::default()));
    let events = take(&mut stream, 3).await;
    assert_eq!(
        events,
        vec!["restarted [a]", "restarted [b]", "restarted [c]"]
    );
    assert_eq!(
        fake.calls(),
        vec![
            "list continue=",
            "watch rv=5",
            "list continue=",
            "watch rv=20",
            "list continue="
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn errors_are_reported_and_retried_with_backoff() {
    let fake = Fake::default();
    fake.lists
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back(Err(Error::Unavailable("kernel down".into())));
    fake.list(vec![cm("a", "1")], "1", None);
    let mut stream = Box::pin(watcher(fake.clone(), ListParams::default()));
    let start = tokio::time::Instant::now();
    let events = take(&mut stream, 2).await;
    assert_eq!(
        events,
        vec!["error unavailable: kernel down", "restarted [a]"]
    );
    // The retry waited for the back-off instead of spinning.
    assert!(start.elapsed() >= Duration::from_millis(200));
}

#[tokio::test(start_paused = true)]
async fn informer_fills_store_and_notifies() {
    let fake = Fake::default();
    fake.list(vec![cm("a", "1")], "1", None)
        .watch(WatchScript::EventsThenHang(vec![Ok(WatchEvent::Modified(
            cm("a", "2"),
        ))]));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let informer = Informer::builder(fake, ListParams::default())
        .handler(move |n| {
            let kind = match n {
                Notification::Added(_) => "added",
                Notification::Updated { .. } => "updated",
                Notification::Deleted(_) => "deleted",
            };
            seen2.lock().unwrap_or_else(|e| e.into_inner()).push(kind);
        })
        .spawn();
    let mut events = informer.subscribe();
    informer.store().wait_until_ready().await;
    let mut got = Vec::new();
    // The subscriber may have joined after the first notification.
    while got.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(n)) => got.push(
                n.object()
                    .metadata
                    .resource_version
                    .clone()
                    .unwrap_or_default(),
            ),
            _ => break,
        }
        if got.last().map(String::as_str) == Some("2") {
            break;
        }
    }
    assert_eq!(got.last().map(String::as_str), Some("2"));
    let cached = informer
        .store()
        .get(&crate::client::ObjectKey::new(Some("default"), "a"));
    assert_eq!(
        cached
            .and_then(|c| c.metadata.resource_version.clone())
            .as_deref(),
        Some("2")
    );
    assert_eq!(
        *seen.lock().unwrap_or_else(|e| e.into_inner()),
        vec!["added", "updated"]
    );
}
