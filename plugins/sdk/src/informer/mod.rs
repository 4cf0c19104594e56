//! Informers: a list+watch [`watcher`] kept in a shared [`Store`] cache, with
//! change notifications for handlers and subscribers.
//!
//! ```no_run
//! # async fn demo(client: kerno_sdk::KernelClient) {
//! use k8s_openapi::api::core::v1::Pod;
//! use kerno_sdk::{Api, ListParams, informer::Informer};
//!
//! let pods: Api<Pod> = Api::all(client);
//! let informer = Informer::builder(pods, ListParams::default())
//!     .index("node", |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone()).into_iter().collect())
//!     .spawn();
//! informer.store().wait_until_ready().await;
//! let on_node_1 = informer.store().by_index("node", "node-1");
//! # }
//! ```

mod store;
mod watcher;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use store::{IndexFn, Notification, Store, Writer};
pub use watcher::{ListWatch, WatcherEvent, watcher};

use crate::client::{ListParams, Resource};

type Handler<K> = Arc<dyn Fn(&Notification<K>) + Send + Sync>;

/// Configures an [`Informer`].
pub struct InformerBuilder<K: Resource, L> {
    lw: L,
    lp: ListParams,
    writer: Writer<K>,
    handlers: Vec<Handler<K>>,
    capacity: usize,
}

impl<K: Resource, L: ListWatch<K>> InformerBuilder<K, L> {
    /// Adds an index to the cache (see [`Store::by_index`]).
    pub fn index(
        mut self,
        name: impl Into<String>,
        f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.writer.add_index(name, f);
        self
    }

    /// Calls `f` for every change, after the cache has applied it. Keep it
    /// short: it runs on the informer's task.
    pub fn handler(mut self, f: impl Fn(&Notification<K>) + Send + Sync + 'static) -> Self {
        self.handlers.push(Arc::new(f));
        self
    }

    /// How many notifications a slow subscriber may lag before it misses some
    /// (it then sees `RecvError::Lagged` and should resync from the store).
    pub fn channel_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Starts the informer on a tokio task; it stops when the `Informer` drops.
    pub fn spawn(self) -> Informer<K> {
        let (events, _) = broadcast::channel(self.capacity);
        let store = self.writer.reader();
        let tx = events.clone();
        let mut writer = self.writer;
        let handlers = self.handlers;
        let stream = watcher(self.lw, self.lp);
        let lists = Arc::new(AtomicU64::new(0));
        let listed = lists.clone();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => {
                        if matches!(event, WatcherEvent::Restarted(_)) {
                            listed.fetch_add(1, Ordering::Relaxed);
                        }
                        for change in writer.apply(&event) {
                            for handler in &handlers {
                                handler(&change);
                            }
                            // No subscriber is not an error.
                            let _ = tx.send(change);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "informer list/watch failed; retrying"),
                }
            }
        });
        Informer {
            store,
            events,
            lists,
            task,
        }
    }
}

/// A running informer: a cache kept up to date by list+watch.
pub struct Informer<K> {
    store: Store<K>,
    events: broadcast::Sender<Notification<K>>,
    lists: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl<K: Resource> Informer<K> {
    /// Configures an informer over `lw` (usually an [`crate::Api`]) with list options `lp`.
    pub fn builder<L: ListWatch<K>>(lw: L, lp: ListParams) -> InformerBuilder<K, L> {
        InformerBuilder {
            lw,
            lp,
            writer: Writer::new(),
            handlers: Vec::new(),
            capacity: 1024,
        }
    }

    /// The cache.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// How many complete lists the informer has applied: 1 once it has
    /// started, one more for each re-list (after a 410 Gone). A watch that
    /// resumes after the kernel closed it (e.g. a kernel restart) does not
    /// count.
    pub fn lists(&self) -> u64 {
        self.lists.load(Ordering::Relaxed)
    }

    /// A stream of changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notification<K>> {
        self.events.subscribe()
    }
}

impl<K> Drop for Informer<K> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
pub(crate) mod tests;
