//! The single writer of the embedded store: group commit.
//!
//! Callers send operations over a channel. The writer thread drains every
//! pending operation into one redb write transaction, gives each successful
//! operation its own revision, commits with fsync, and only then publishes the
//! events and answers the callers. One fsync thus covers a whole batch, which
//! is what makes many concurrent small writes fast.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use redb::{Durability, ReadableTable, Table};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::codec::{decode_row, encode_event, encode_row};
use super::{KEYS, LOG, META, META_COMPACTED, META_REVISION, Shared, log_key, storage};
use crate::store::{Error, Event, EventKind, KeyValue, Result, Revision};

/// Most operations put in one transaction, so one batch's latency stays bounded.
const MAX_BATCH: usize = 2048;

/// An operation for the writer thread.
pub(crate) enum Op {
    /// A change to one key.
    Write(WriteOp),
    /// Drop history up to and including `revision`.
    Compact { revision: Revision },
}

/// A change to one key.
pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Bytes,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
}

/// What a successful operation returns.
pub(crate) enum Reply {
    /// The key written (or deleted).
    Kv(KeyValue),
    /// A compaction finished.
    Compacted,
}

/// An operation and where to send its answer.
pub(crate) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Reply>>,
}

/// Runs the writer until every sender is gone. Blocking: runs on its own thread.
pub(crate) fn run(
    shared: Arc<Shared>,
    mut ops: mpsc::Receiver<Request>,
    events: broadcast::Sender<Arc<Event>>,
) {
    while let Some(first) = ops.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match ops.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        commit_batch(&shared, batch, &events);
    }
}

/// One batch's outcome per operation, plus the events of the successful ones.
struct Applied {
    results: Vec<Result<Reply>>,
    events: Vec<Arc<Event>>,
    revision: Revision,
    compacted: Revision,
}

fn commit_batch(shared: &Shared, batch: Vec<Request>, events: &broadcast::Sender<Arc<Event>>) {
    let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
    match apply_batch(shared, &ops) {
        Ok(applied) => {
            shared.revision.store(applied.revision, Ordering::Release);
            shared.compacted.store(applied.compacted, Ordering::Release);
            // Publish before answering, so a caller that has its reply can rely
            // on watchers having been handed the event. No receivers is fine.
            for event in applied.events {
                let _ = events.send(event);
            }
            for (reply, result) in replies.into_iter().zip(applied.results) {
                // The caller may have gone away (cancelled request): nothing to do.
                let _ = reply.send(result);
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, ops = replies.len(), "embedded store commit failed");
            let message = format!("commit failed: {err}");
            for reply in replies {
                let _ = reply.send(Err(Error::Backend {
                    message: message.clone(),
                    source: None,
                }));
            }
        }
    }
}

/// Applies all operations in one durable transaction. An `Err` means the
/// transaction failed as a whole; per-operation failures are in `results`.
fn apply_batch(shared: &Shared, ops: &[Op]) -> Result<Applied> {
    let mut txn = shared.db.begin_write().map_err(storage("begin write"))?;
    txn.set_durability(Durability::Immediate)
        .map_err(storage("set durability"))?;
    let mut revision = shared.revision.load(Ordering::Acquire);
    let mut compacted = shared.compacted.load(Ordering::Acquire);
    let mut results = Vec::with_capacity(ops.len());
    let mut events = Vec::new();
    {
        let mut keys = txn.open_table(KEYS).map_err(storage("open keys"))?;
        let mut log = txn.open_table(LOG).map_err(storage("open log"))?;
        for op in ops {
            let outcome = match op {
                Op::Compact { revision: target } => {
                    compact(&mut log, *target, revision, &mut compacted)?
                        .map(|()| (Reply::Compacted, None))
                }
                Op::Write(write) => apply_write(&mut keys, write, revision + 1)?,
            };
            match outcome {
                Ok((reply, Some(event))) => {
                    revision += 1;
                    log.insert(log_key(revision), encode_event(&event).as_slice())
                        .map_err(storage("append log"))?;
                    events.push(Arc::new(event));
                    results.push(Ok(reply));
                }
                Ok((reply, None)) => results.push(Ok(reply)),
                Err(err) => results.push(Err(err)),
            }
        }
        let mut meta = txn.open_table(META).map_err(storage("open meta"))?;
        meta.insert(META_REVISION, revision)
            .map_err(storage("write meta"))?;
        meta.insert(META_COMPACTED, compacted)
            .map_err(storage("write meta"))?;
    }
    txn.commit().map_err(storage("commit"))?;
    Ok(Applied {
        results,
        events,
        revision,
        compacted,
    })
}

/// The outcome of one write: the reply and its event, or why it was refused.
type WriteOutcome = Result<(Reply, Option<Event>)>;

/// Applies one create, update or delete at revision `rev`. The outer `Err` is
/// a storage failure (fails the batch), the inner one a refused operation.
fn apply_write(keys: &mut Table<&str, &[u8]>, op: &WriteOp, rev: Revision) -> Result<WriteOutcome> {
    let key = match op {
        WriteOp::Create { key, .. } | WriteOp::Update { key, .. } | WriteOp::Delete { key, .. } => {
            key
        }
    };
    let existing = match keys.get(key.as_str()).map_err(storage("read key"))? {
        Some(row) => Some(decode_row(key, row.value()).map_err(|e| Error::backend("read key", e))?),
        None => None,
    };
    match (op, existing) {
        (WriteOp::Create { .. }, Some(_)) => Ok(Err(Error::AlreadyExists { key: key.clone() })),
        (WriteOp::Create { value, .. }, None) => {
            keys.insert(key.as_str(), encode_row(rev, rev, value).as_slice())
                .map_err(storage("write key"))?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: rev,
                mod_revision: rev,
            };
            let event = Event {
                kind: EventKind::Put,
                kv: kv.clone(),
                prev_kv: None,
            };
            Ok(Ok((Reply::Kv(kv), Some(event))))
        }
        (WriteOp::Update { .. } | WriteOp::Delete { .. }, None) => {
            Ok(Err(Error::NotFound { key: key.clone() }))
        }
        (
            WriteOp::Update {
                value, expected, ..
            },
            Some(prev),
        ) => {
            if prev.mod_revision != *expected {
                return Ok(Err(conflict(key, *expected, prev.mod_revision)));
            }
            keys.insert(
                key.as_str(),
                encode_row(prev.create_revision, rev, value).as_slice(),
            )
            .map_err(storage("write key"))?;
            let kv = KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision: prev.create_revision,
                mod_revision: rev,
            };
            let event = Event {
                kind: EventKind::Put,
                kv: kv.clone(),
                prev_kv: Some(prev),
            };
            Ok(Ok((Reply::Kv(kv), Some(event))))
        }
        (WriteOp::Delete { expected, .. }, Some(prev)) => {
            if let Some(expected) = expected
                && prev.mod_revision != *expected
            {
                return Ok(Err(conflict(key, *expected, prev.mod_revision)));
            }
            keys.remove(key.as_str()).map_err(storage("delete key"))?;
            let deleted = KeyValue {
                mod_revision: rev,
                ..prev.clone()
            };
            let event = Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    value: Bytes::new(),
                    ..deleted.clone()
                },
                prev_kv: Some(prev),
            };
            Ok(Ok((Reply::Kv(deleted), Some(event))))
        }
    }
}

fn conflict(key: &str, expected: Revision, actual: Revision) -> Error {
    Error::Conflict {
        key: key.to_owned(),
        expected,
        actual,
    }
}

/// Drops log entries up to and including `target`. Compacting to a revision
/// already compacted is a no-op; past the current revision is refused.
fn compact(
    log: &mut Table<u64, &[u8]>,
    target: Revision,
    current: Revision,
    compacted: &mut Revision,
) -> Result<Result<(), Error>> {
    if target > current {
        return Ok(Err(Error::Backend {
            message: format!(
                "cannot compact to revision {target}: the current revision is {current}"
            ),
            source: None,
        }));
    }
    if target <= *compacted {
        return Ok(Ok(()));
    }
    log.retain_in(..=log_key(target), |_, _| false)
        .map_err(storage("compact log"))?;
    *compacted = target;
    Ok(Ok(()))
}
