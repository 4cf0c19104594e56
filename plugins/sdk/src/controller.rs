//! The reconcile loop: watch → cache → work queue → `reconcile`.
//!
//! ```no_run
//! # use std::sync::Arc; use std::time::Duration;
//! # use k8s_openapi::api::core::v1::ConfigMap;
//! # use kerno_sdk::{Action, Api, Controller, KernelClient};
//! # #[derive(Debug, thiserror::Error)] #[error("oops")] struct MyError;
//! # async fn demo(client: KernelClient) {
//! struct Ctx { client: KernelClient }
//! async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, MyError> {
//!     // Read the world, move it one step toward cm's spec.
//!     Ok(Action::await_change())
//! }
//! fn error_policy(_cm: Arc<ConfigMap>, _err: &MyError, _ctx: Arc<Ctx>) -> Action {
//!     Action::backoff()
//! }
//! let api: Api<ConfigMap> = Api::all(client.clone());
//! Controller::new(api, Arc::new(Ctx { client })).run(reconcile, error_policy).await;
//! # }
//! ```
//!
//! Semantics:
//! - Reconcile is level-based: it gets the latest cached object, not the event.
//!   Several changes while a key waits are reconciled once.
//! - One key is never reconciled by two workers at once.
//! - **Deleted objects are not reconciled**: once an object is gone from the
//!   cache its key is dropped. Clean-up belongs in a finalizer (reconcile sees
//!   `metadata.deletionTimestamp` set) or in owner references.
//! - After every relist (start, 410) every object is reconciled again.
//! - Each reconcile runs in a `reconcile` span with the object's reference
//!   (`namespace/name`) as the field `object.ref`.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tracing::Instrument;

use crate::client::{ListParams, ObjectKey, Resource};
use crate::informer::{ListWatch, Store, WatcherEvent, Writer, watcher};
use crate::queue::{RateLimits, WorkQueue};

/// What to do with an object after a reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    requeue_after: Option<Duration>,
    backoff: bool,
}

impl Action {
    /// Reconcile again after `after`, even if nothing changes (for example to
    /// poll something outside the cluster).
    pub fn requeue(after: Duration) -> Self {
        Self {
            requeue_after: Some(after),
            backoff: false,
        }
    }

    /// Reconcile again only when the object changes.
    pub fn await_change() -> Self {
        Self {
            requeue_after: None,
            backoff: false,
        }
    }

    /// Reconcile again after the queue's per-key exponential back-off (the
    /// usual answer of an error policy).
    pub fn backoff() -> Self {
        Self {
            requeue_after: None,
            backoff: true,
        }
    }

    /// The requeue delay, if any.
    pub fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// Runs `reconcile` for every object of one type, see the module docs.
pub struct Controller<K: Resource, L, Ctx> {
    lw: L,
    lp: ListParams,
    ctx: Arc<Ctx>,
    writer: Writer<K>,
    queue: WorkQueue<ObjectKey>,
    concurrency: usize,
}

impl<K, L, Ctx> Controller<K, L, Ctx>
where
    K: Resource,
    L: ListWatch<K>,
    Ctx: Send + Sync + 'static,
{
    /// A controller for the objects `lw` (usually an [`crate::Api`]) lists,
    /// handing `ctx` to every reconcile.
    pub fn new(lw: L, ctx: Arc<Ctx>) -> Self {
        Self {
            lw,
            lp: ListParams::default(),
            ctx,
            writer: Writer::new(),
            queue: WorkQueue::new(RateLimits::default()),
            concurrency: 1,
        }
    }

    /// Restricts the objects watched (label and field selectors).
    pub fn with_params(mut self, lp: ListParams) -> Self {
        self.lp = lp;
        self
    }

    /// Reconciles up to `n` different objects at once (default 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Sets the work queue's retry limits.
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.queue = WorkQueue::new(limits);
        self
    }

    /// Adds an index to the controller's cache.
    pub fn index(
        mut self,
        name: impl Into<String>,
        f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.writer.add_index(name, f);
        self
    }

    /// The controller's cache, for reconcile functions that look at siblings.
    pub fn store(&self) -> Store<K> {
        self.writer.reader()
    }

    /// The work queue, to enqueue keys from other watches (owned objects).
    pub fn queue(&self) -> WorkQueue<ObjectKey> {
        self.queue.clone()
    }

    /// Runs until the future is dropped. Reconcile errors are logged at `warn`
    /// and passed to `error_policy`, whose [`Action`] decides the retry.
    pub async fn run<R, RFut, E, P>(self, reconcile: R, error_policy: P)
    where
        R: Fn(Arc<K>, Arc<Ctx>) -> RFut,
        RFut: Future<Output = Result<Action, E>>,
        E: Display,
        P: Fn(Arc<K>, &E, Arc<Ctx>) -> Action,
    {
        let Self {
            lw,
            lp,
            ctx,
            mut writer,
            queue,
            concurrency,
        } = self;
        let store = writer.reader();
        let mut events = std::pin::pin!(watcher(lw, lp));
        let mut running = FuturesUnordered::new();
        // Dropping the controller's future stops the queue, so no worker waits forever.
        let _stop = StopQueue(queue.clone());
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(Ok(event)) => {
                        let changes = writer.apply(&event);
                        if let WatcherEvent::Restarted(objects) = &event {
                            // Level-based resync: everything listed is reconciled again.
                            for obj in objects {
                                queue.add(ObjectKey::of(obj));
                            }
                        }
                        for change in changes {
                            queue.add(ObjectKey::of(change.object().as_ref()));
                        }
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "controller watch failed; retrying"),
                    None => return,
                },
                key = queue.get(), if running.len() < concurrency && store.is_ready() => {
                    let Some(key) = key else { return };
                    running.push(reconcile_one(key, &store, &queue, &ctx, &reconcile, &error_policy));
                }
                Some(()) = running.next(), if !running.is_empty() => {}
            }
        }
    }
}

struct StopQueue(WorkQueue<ObjectKey>);

impl Drop for StopQueue {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

async fn reconcile_one<K, Ctx, R, RFut, E, P>(
    key: ObjectKey,
    store: &Store<K>,
    queue: &WorkQueue<ObjectKey>,
    ctx: &Arc<Ctx>,
    reconcile: &R,
    error_policy: &P,
) where
    K: Resource,
    R: Fn(Arc<K>, Arc<Ctx>) -> RFut,
    RFut: Future<Output = Result<Action, E>>,
    E: Display,
    P: Fn(Arc<K>, &E, Arc<Ctx>) -> Action,
{
    let Some(obj) = store.get(&key) else {
        // Deleted since it was queued: nothing to reconcile (see module docs).
        queue.forget(&key);
        queue.done(&key);
        return;
    };
    let span = tracing::info_span!("reconcile", object.ref = %key);
    let action = match reconcile(obj.clone(), ctx.clone())
        .instrument(span.clone())
        .await
    {
        Ok(action) => {
            queue.forget(&key);
            action
        }
        Err(e) => {
            span.in_scope(|| tracing::warn!(error = %e, "reconcile failed"));
            error_policy(obj, &e, ctx.clone())
        }
    };
    if action.backoff {
        queue.add_rate_limited(key.clone());
    } else if let Some(after) = action.requeue_after {
        queue.add_after(key.clone(), after);
    }
    queue.done(&key);
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;
    use crate::client::WatchEvent;
    use crate::informer::tests::{Fake, WatchScript, cm};

    #[derive(Default)]
    struct Ctx {
        log: Mutex<Vec<String>>,
        errors: Mutex<Vec<String>>,
    }

    impl Ctx {
        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }

    #[derive(Debug)]
    struct Failed;

    impl Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("failed on purpose")
        }
    }

    async fn reconcile(obj: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, Failed> {
        let name = obj.metadata.name.clone().unwrap_or_default();
        let rv = obj.metadata.resource_version.clone().unwrap_or_default();
        ctx.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{name}@{rv}"));
        match name.as_str() {
            "fails" => Err(Failed),
            "polls" => Ok(Action::requeue(Duration::from_secs(30))),
            _ => Ok(Action::await_change()),
        }
    }

    fn error_policy(obj: Arc<ConfigMap>, err: &Failed, ctx: Arc<Ctx>) -> Action {
        ctx.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!(
                "{}: {err}",
                obj.metadata.name.clone().unwrap_or_default()
            ));
        Action::backoff()
    }

    #[tokio::test(start_paused = true)]
    async fn reconciles_changes_requeues_and_backs_off() {
        let fake = Fake::default();
        fake.list(vec![cm("a", "1"), cm("polls", "2")], "2", None)
            .watch(WatchScript::EventsThenHang(vec![
                Ok(WatchEvent::Modified(cm("a", "3"))),
                Ok(WatchEvent::Added(cm("fails", "4"))),
                Ok(WatchEvent::Added(cm("gone", "5"))),
                Ok(WatchEvent::Deleted(cm("gone", "6"))),
            ]));
        let ctx = Arc::new(Ctx::default());
        let controller = Controller::new(fake, ctx.clone()).rate_limits(RateLimits {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            qps: 100.0,
            burst: 100,
        });
        let run = controller.run(reconcile, error_policy);
        // 65 s of (paused, auto-advanced) time.
        let _ = tokio::time::timeout(Duration::from_secs(65), run).await;
        let log = ctx.log();
        // a was reconciled at its latest state last (an older state may come
        // first, and a change during a reconcile may run it once more).
        let last_a = log.iter().rev().find(|l| l.starts_with("a@"));
        assert_eq!(last_a.map(String::as_str), Some("a@3"), "{log:?}");
        assert!(
            log.iter().filter(|l| l.starts_with("a@")).count() <= 3,
            "{log:?}"
        );
        // polls: at start, then every 30 s.
        assert_eq!(log.iter().filter(|l| *l == "polls@2").count(), 3, "{log:?}");
        // fails: first try, then retries after 1, 2, 4, 8, 16, 32 s of back-off.
        assert_eq!(log.iter().filter(|l| *l == "fails@4").count(), 7, "{log:?}");
        // The deleted object was never reconciled.
        assert!(!log.iter().any(|l| l.starts_with("gone")), "{log:?}");
        let errors = ctx.errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(
            errors.first().map(String::as_str),
            Some("fails: failed on purpose")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn relist_reconciles_everything_again() {
        let fake = Fake::default();
        fake.list(vec![cm("a", "1")], "1", None)
            .watch(WatchScript::After(
                Duration::from_secs(1),
                vec![Err(crate::client::Error::Gone("old".into()))],
            ))
            .list(vec![cm("a", "1")], "9", None);
        let ctx = Arc::new(Ctx::default());
        let run = Controller::new(fake, ctx.clone()).run(reconcile, error_policy);
        let _ = tokio::time::timeout(Duration::from_secs(5), run).await;
        assert_eq!(ctx.log(), vec!["a@1", "a@1"]);
    }
}
