//! The list+watch state machine: list everything, watch from the list's
//! revision, resume a closed watch from the last revision seen, and list
//! again when the kernel says that revision is gone (410).

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{
    Api, Error, ListParams, ObjectList, Resource, Result, WatchEvent, WatchParams,
};

/// The two calls an informer needs; [`Api`] implements it, tests use fakes.
#[async_trait]
pub trait ListWatch<K>: Send + Sync + 'static {
    /// One page of a list.
    async fn list(&self, lp: &ListParams) -> Result<ObjectList<K>>;
    /// A watch after `resource_version`.
    async fn watch(
        &self,
        wp: &WatchParams,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<K>>>>;
}

#[async_trait]
impl<K> ListWatch<K> for Api<K>
where
    K: Serialize + DeserializeOwned + Send + 'static,
{
    async fn list(&self, lp: &ListParams) -> Result<ObjectList<K>> {
        Api::list(self, lp).await
    }

    async fn watch(
        &self,
        wp: &WatchParams,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<K>>>> {
        Api::watch(self, wp, resource_version).await
    }
}

/// What the watcher reports.
#[derive(Clone, Debug, PartialEq)]
pub enum WatcherEvent<K> {
    /// A complete list: the cache should hold exactly these objects now.
    Restarted(Vec<K>),
    /// An object was created or changed.
    Applied(K),
    /// An object was deleted.
    Deleted(K),
}

/// Page size of the lists a watcher makes.
const PAGE_SIZE: u32 = 500;
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

enum Phase<K> {
    /// Must list (first start or after 410).
    Empty,
    /// Watching after `rv`; `stream` is `None` while a watch must be (re)opened.
    Watching {
        rv: String,
        stream: Option<BoxStream<'static, Result<WatchEvent<K>>>>,
    },
}

struct State<K, L> {
    lw: L,
    lp: ListParams,
    wp: WatchParams,
    phase: Phase<K>,
    /// Current back-off level; `None` after a success.
    backoff: Option<Duration>,
    /// Sleep `backoff` before the next call.
    wait: bool,
    /// Whether the open watch delivered anything (a watch closing at once is
    /// treated as a failure, so a kernel that closes watches cannot make the
    /// watcher spin).
    got_event: bool,
}

impl<K, L> State<K, L> {
    /// Waits before the next call after an error, doubling each time.
    fn fail(&mut self) {
        self.backoff = Some(match self.backoff {
            None => MIN_BACKOFF,
            Some(d) => (d * 2).min(MAX_BACKOFF),
        });
        self.wait = true;
    }
}

/// Lists all pages; the revision is that of the first page (pages are
/// consistent with it).
async fn list_all<K, L: ListWatch<K>>(lw: &L, lp: &ListParams) -> Result<(Vec<K>, String)> {
    let mut lp = ListParams {
        limit: Some(lp.limit.unwrap_or(PAGE_SIZE)),
        continue_token: None,
        ..lp.clone()
    };
    let mut items = Vec::new();
    let mut rv = None;
    loop {
        let page = lw.list(&lp).await?;
        items.extend(page.items);
        rv.get_or_insert(page.resource_version);
        match page.continue_token {
            Some(token) => lp.continue_token = Some(token),
            None => return Ok((items, rv.unwrap_or_default())),
        }
    }
}

/// Watches objects of one type forever: a `Restarted` after every (re)list,
/// then `Applied`/`Deleted` per change. Errors are yielded as items for the
/// consumer to log, and the watcher retries by itself with exponential
/// back-off; it never ends.
pub fn watcher<K, L>(lw: L, lp: ListParams) -> impl Stream<Item = Result<WatcherEvent<K>>> + Send
where
    K: Resource,
    L: ListWatch<K>,
{
    let wp = WatchParams::from(&lp);
    let state = State {
        lw,
        lp,
        wp,
        phase: Phase::Empty,
        backoff: None,
        wait: false,
        got_event: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        let item = step(&mut s).await;
        Some((item, s))
    })
}

async fn step<K: Resource, L: ListWatch<K>>(s: &mut State<K, L>) -> Result<WatcherEvent<K>> {
    loop {
        if std::mem::take(&mut s.wait) {
            tokio::time::sleep(s.backoff.unwrap_or(MIN_BACKOFF)).await;
        }
        match &mut s.phase {
            Phase::Empty => match list_all(&s.lw, &s.lp).await {
                Ok((items, rv)) => {
                    s.backoff = None;
                    tracing::debug!(rv = %rv, count = items.len(), "listed");
                    s.phase = Phase::Watching { rv, stream: None };
                    return Ok(WatcherEvent::Restarted(items));
                }
                Err(e) => {
                    s.fail();
                    return Err(e);
                }
            },
            Phase::Watching {
                rv,
                stream: stream @ None,
            } => match s.lw.watch(&s.wp, rv).await {
                Ok(opened) => {
                    *stream = Some(opened);
                    s.got_event = false;
                }
                Err(Error::Gone(_)) => {
                    tracing::debug!(rv = %rv, "watch revision gone, listing again");
                    s.phase = Phase::Empty;
                }
                Err(e) => {
                    s.fail();
                    return Err(e);
                }
            },
            Phase::Watching { rv, stream } => {
                let Some(open) = stream.as_mut() else {
                    continue;
                };
                match open.next().await {
                    Some(Ok(event)) => {
                        s.backoff = None;
                        s.got_event = true;
                        let (out, new_rv) = match event {
                            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                                let new_rv = o.meta().resource_version.clone();
                                (Some(WatcherEvent::Applied(o)), new_rv)
                            }
                            WatchEvent::Deleted(o) => {
                                let new_rv = o.meta().resource_version.clone();
                                (Some(WatcherEvent::Deleted(o)), new_rv)
                            }
                            WatchEvent::Bookmark(new_rv) => (None, Some(new_rv)),
                        };
                        if let Some(new_rv) = new_rv.filter(|r| !r.is_empty()) {
                            *rv = new_rv;
                        }
                        if let Some(out) = out {
                            return Ok(out);
                        }
                    }
                    Some(Err(Error::Gone(_))) => {
                        tracing::debug!(rv = %rv, "watch revision gone, listing again");
                        s.phase = Phase::Empty;
                    }
                    Some(Err(e)) => {
                        *stream = None;
                        s.fail();
                        return Err(e);
                    }
                    None => {
                        // The kernel closed the watch (restart, timeout): resume
                        // from the last revision, no relist needed.
                        tracing::debug!(rv = %rv, "watch closed, resuming");
                        *stream = None;
                        if !s.got_event {
                            s.fail();
                        }
                    }
                }
            }
        }
    }
}
