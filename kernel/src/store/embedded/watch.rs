//! Watches on the embedded store: replay from the revision log, then live.
//!
//! A watcher subscribes to the live feed *before* it reads the log, so every
//! revision is either in what it reads or in what it receives afterwards; it
//! remembers the last revision it has seen (`cursor`) and skips anything at
//! or below it, so nothing is missed and nothing is delivered twice. The log
//! is read in pages, each in its own read transaction, so a long replay never
//! holds a snapshot or all of history in memory.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};

use redb::ReadableDatabase;
use tokio::sync::broadcast::{self, error::RecvError};

use super::codec::decode_event;
use super::{LOG, META, META_COMPACTED, Shared, closed, log_key, storage};
use crate::store::{Error, Event, Result, Revision, WatchStream};

/// Log entries examined per replay page (matching or not).
const PAGE: usize = 1024;

/// One page of replayed history.
struct Page {
    /// Matching events, in revision order.
    events: VecDeque<Event>,
    /// The last revision examined.
    cursor: Revision,
    /// True when the page reached the end of the log.
    exhausted: bool,
}

/// A watcher's state between items.
struct Watcher {
    // Weak, so a forgotten watch does not keep the database file open.
    shared: Weak<Shared>,
    prefix: String,
    cursor: Revision,
    buffer: VecDeque<Event>,
    replaying: bool,
    live: broadcast::Receiver<Arc<Event>>,
    done: bool,
}

/// Opens a watch of keys under `prefix` after `after` (see [`crate::store::Store::watch`]).
pub(crate) async fn open(
    shared: &Arc<Shared>,
    live: broadcast::Receiver<Arc<Event>>,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream> {
    // The first page is read here, not lazily, so a compacted start revision
    // fails the call itself.
    let first = read_page(Arc::downgrade(shared), prefix.to_owned(), after).await?;
    let watcher = Watcher {
        shared: Arc::downgrade(shared),
        prefix: prefix.to_owned(),
        cursor: first.cursor,
        buffer: first.events,
        replaying: !first.exhausted,
        live,
        done: false,
    };
    Ok(Box::pin(futures::stream::unfold(watcher, next)))
}

async fn next(mut w: Watcher) -> Option<(Result<Event>, Watcher)> {
    loop {
        if w.done {
            return None;
        }
        if let Some(event) = w.buffer.pop_front() {
            return Some((Ok(event), w));
        }
        if w.replaying {
            match read_page(w.shared.clone(), w.prefix.clone(), w.cursor).await {
                Ok(page) => {
                    w.cursor = page.cursor;
                    w.buffer = page.events;
                    w.replaying = !page.exhausted;
                }
                Err(err) => {
                    w.done = true;
                    return Some((Err(err), w));
                }
            }
            continue;
        }
        match w.live.recv().await {
            Ok(event) => {
                if event.kv.mod_revision <= w.cursor {
                    continue;
                }
                w.cursor = event.kv.mod_revision;
                if event.kv.key.starts_with(&w.prefix) {
                    return Some((Ok(Event::clone(&event)), w));
                }
            }
            Err(RecvError::Lagged(_)) => {
                w.done = true;
                return Some((Err(Error::WatchLagged), w));
            }
            Err(RecvError::Closed) => {
                w.done = true;
                return Some((Err(closed()), w));
            }
        }
    }
}

/// Reads up to [`PAGE`] log entries after `after`, keeping those under `prefix`.
async fn read_page(shared: Weak<Shared>, prefix: String, after: Revision) -> Result<Page> {
    tokio::task::spawn_blocking(move || {
        let shared = shared.upgrade().ok_or_else(closed)?;
        let txn = shared.db.begin_read().map_err(storage("begin read"))?;
        let meta = txn.open_table(META).map_err(storage("open meta"))?;
        let compacted = meta
            .get(META_COMPACTED)
            .map_err(storage("read meta"))?
            .map_or(0, |g| g.value());
        if after < compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted,
            });
        }
        let log = txn.open_table(LOG).map_err(storage("open log"))?;
        let mut page = Page {
            events: VecDeque::new(),
            cursor: after,
            exhausted: true,
        };
        let entries = log
            .range(log_key(after.saturating_add(1))..)
            .map_err(storage("read log"))?;
        for (seen, entry) in entries.enumerate() {
            if seen == PAGE {
                page.exhausted = false;
                break;
            }
            let (_, value) = entry.map_err(storage("read log"))?;
            let event = decode_event(value.value()).map_err(|e| Error::backend("read log", e))?;
            page.cursor = event.kv.mod_revision;
            if event.kv.key.starts_with(&prefix) {
                page.events.push_back(event);
            }
        }
        Ok(page)
    })
    .await
    .map_err(|e| Error::backend("watch replay task failed", e))?
}

/// Reads the log's changes under `prefix` in `(after, through]` in one read
/// transaction (see [`crate::store::Store::history`]).
pub(crate) async fn history(
    shared: &Arc<Shared>,
    prefix: &str,
    after: Revision,
    through: Revision,
    max_events: usize,
) -> Result<Option<Vec<Event>>> {
    let shared = Arc::clone(shared);
    let prefix = prefix.to_owned();
    tokio::task::spawn_blocking(move || {
        let txn = shared.db.begin_read().map_err(storage("begin read"))?;
        let meta = txn.open_table(META).map_err(storage("open meta"))?;
        let compacted = meta
            .get(META_COMPACTED)
            .map_err(storage("read meta"))?
            .map_or(0, |g| g.value());
        if after < compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted,
            });
        }
        let log = txn.open_table(LOG).map_err(storage("open log"))?;
        let mut events = Vec::new();
        if through <= after {
            return Ok(Some(events));
        }
        let entries = log
            .range(log_key(after.saturating_add(1))..=log_key(through))
            .map_err(storage("read log"))?;
        for entry in entries {
            let (_, value) = entry.map_err(storage("read log"))?;
            let event = decode_event(value.value()).map_err(|e| Error::backend("read log", e))?;
            if event.kv.key.starts_with(&prefix) {
                if events.len() == max_events {
                    return Ok(None);
                }
                events.push(event);
            }
        }
        Ok(Some(events))
    })
    .await
    .map_err(|e| Error::backend("history task failed", e))?
}
