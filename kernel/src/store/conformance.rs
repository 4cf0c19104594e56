//! The conformance suite both store backends must pass.
//!
//! Each case takes a fresh, empty store. Cases only assume what the [`Store`]
//! contract promises (e.g. a fresh etcd starts at revision 1, the embedded
//! store at 0), so they compare revisions relative to what they observe.
//! [`conformance_tests!`] expands to one `#[tokio::test]` per case for a
//! backend's factory.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::{Error, Event, EventKind, Store, WatchStream};

/// Patience for an event that must arrive.
const EVENT_PATIENCE: Duration = Duration::from_secs(10);
/// How long to listen for an event that must not arrive.
const QUIET: Duration = Duration::from_millis(300);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// The next watch item; panics if none arrives in time.
pub(crate) async fn next_item(stream: &mut WatchStream) -> Result<Event, Error> {
    tokio::time::timeout(EVENT_PATIENCE, stream.next())
        .await
        .expect("no watch event in time")
        .expect("watch stream ended")
}

/// The next watch event; panics on an error item.
pub(crate) async fn next_event(stream: &mut WatchStream) -> Event {
    next_item(stream).await.expect("watch error item")
}

/// Asserts that nothing arrives for a short while.
pub(crate) async fn assert_quiet(stream: &mut WatchStream) {
    if let Ok(item) = tokio::time::timeout(QUIET, stream.next()).await {
        panic!("unexpected watch item: {item:?}");
    }
}

/// Revisions grow by one per write, across keys; create revisions stay.
pub(crate) async fn revisions_are_monotonic_and_shared(store: Arc<dyn Store>) {
    let base = store.current_revision().await.unwrap();
    let a = store.create("/r/a", b("1")).await.unwrap();
    assert!(a.mod_revision > base);
    assert_eq!(a.create_revision, a.mod_revision);
    let bkv = store.create("/r/b", b("1")).await.unwrap();
    assert_eq!(bkv.mod_revision, a.mod_revision + 1);
    let a2 = store.update("/r/a", b("2"), a.mod_revision).await.unwrap();
    assert_eq!(a2.mod_revision, bkv.mod_revision + 1);
    assert_eq!(a2.create_revision, a.create_revision);
    assert_eq!(store.current_revision().await.unwrap(), a2.mod_revision);
    let got = store.get("/r/a").await.unwrap().unwrap();
    assert_eq!(got, a2);
}

/// A second create of a key fails and costs no revision.
pub(crate) async fn create_rejects_existing(store: Arc<dyn Store>) {
    let first = store.create("/c/a", b("1")).await.unwrap();
    let err = store.create("/c/a", b("2")).await.unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists { ref key } if key == "/c/a"),
        "{err:?}"
    );
    assert_eq!(store.current_revision().await.unwrap(), first.mod_revision);
    assert_eq!(store.get("/c/a").await.unwrap().unwrap().value, b("1"));
}

/// Update is a compare-and-swap on the mod revision.
pub(crate) async fn update_compares_mod_revision(store: Arc<dyn Store>) {
    let created = store.create("/u/a", b("1")).await.unwrap();
    let updated = store
        .update("/u/a", b("2"), created.mod_revision)
        .await
        .unwrap();
    assert_eq!(updated.value, b("2"));
    assert!(updated.mod_revision > created.mod_revision);
    let err = store
        .update("/u/a", b("3"), created.mod_revision)
        .await
        .unwrap_err();
    match err {
        Error::Conflict {
            key,
            expected,
            actual,
        } => {
            assert_eq!(key, "/u/a");
            assert_eq!(expected, created.mod_revision);
            assert_eq!(actual, updated.mod_revision);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let err = store.update("/u/missing", b("1"), 0).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = store.update("/u/missing", b("1"), 5).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert_eq!(store.get("/u/a").await.unwrap().unwrap(), updated);
    assert!(store.get("/u/missing").await.unwrap().is_none());
}

/// Delete, with and without a revision; deleting twice fails.
pub(crate) async fn delete_with_and_without_revision(store: Arc<dyn Store>) {
    let a = store.create("/d/a", b("a")).await.unwrap();
    let err = store
        .delete("/d/a", Some(a.mod_revision + 100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict { actual, .. } if actual == a.mod_revision),
        "{err:?}"
    );
    let deleted = store.delete("/d/a", Some(a.mod_revision)).await.unwrap();
    assert_eq!(deleted.value, b("a"));
    assert_eq!(deleted.create_revision, a.create_revision);
    assert_eq!(deleted.mod_revision, a.mod_revision + 1);
    assert_eq!(
        store.current_revision().await.unwrap(),
        deleted.mod_revision
    );
    assert!(store.get("/d/a").await.unwrap().is_none());
    let err = store.delete("/d/a", None).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = store
        .delete("/d/a", Some(deleted.mod_revision))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    store.create("/d/b", b("b")).await.unwrap();
    let deleted = store.delete("/d/b", None).await.unwrap();
    assert_eq!(deleted.value, b("b"));
    assert!(store.get("/d/b").await.unwrap().is_none());
    // A deleted key can be created again, with a new create revision.
    let again = store.create("/d/b", b("b2")).await.unwrap();
    assert!(again.create_revision > deleted.mod_revision);
}

/// Lists: prefix only, key order, limit with `more`, paging with `start_after`.
pub(crate) async fn list_prefix_order_and_paging(store: Arc<dyn Store>) {
    for name in ["e", "b", "d", "a", "c"] {
        store
            .create(&format!("/l/p/{name}"), b(name))
            .await
            .unwrap();
    }
    store.create("/l/p2/x", b("x")).await.unwrap();
    store.create("/l/o/x", b("x")).await.unwrap();
    let current = store.current_revision().await.unwrap();

    let all = store.list("/l/p/", None, 0).await.unwrap();
    let keys: Vec<&str> = all.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/l/p/a", "/l/p/b", "/l/p/c", "/l/p/d", "/l/p/e"]);
    assert!(!all.more);
    assert_eq!(all.revision, current);
    assert_eq!(all.kvs[2].value, b("c"));

    let page = store.list("/l/p/", None, 2).await.unwrap();
    assert_eq!(page.kvs.len(), 2);
    assert!(page.more);
    let exact = store.list("/l/p/", None, 5).await.unwrap();
    assert_eq!(exact.kvs.len(), 5);
    assert!(!exact.more);

    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list("/l/p/", after.as_deref(), 2).await.unwrap();
        assert!(page.kvs.len() <= 2);
        paged.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        after = page.kvs.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, keys);

    let rest = store.list("/l/p/", Some("/l/p/c"), 0).await.unwrap();
    let rest: Vec<&str> = rest.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(rest, ["/l/p/d", "/l/p/e"]);
    assert!(
        store
            .list("/l/none/", None, 0)
            .await
            .unwrap()
            .kvs
            .is_empty()
    );
    let whole = store.list("/l/", None, 0).await.unwrap();
    assert_eq!(whole.kvs.len(), 7);
}

/// A watch from revision 0 replays every change with its previous values.
pub(crate) async fn watch_from_zero_replays_everything(store: Arc<dyn Store>) {
    let a = store.create("/w/a", b("1")).await.unwrap();
    let a2 = store.update("/w/a", b("2"), a.mod_revision).await.unwrap();
    let gone = store.delete("/w/a", None).await.unwrap();
    let mut watch = store.watch("/w/", 0).await.unwrap();

    let created = next_event(&mut watch).await;
    assert_eq!(created.kind, EventKind::Put);
    assert_eq!(created.kv, a);
    assert_eq!(created.prev_kv, None);
    let updated = next_event(&mut watch).await;
    assert_eq!(updated.kind, EventKind::Put);
    assert_eq!(updated.kv, a2);
    assert_eq!(updated.prev_kv.as_ref(), Some(&a));
    let deleted = next_event(&mut watch).await;
    assert_eq!(deleted.kind, EventKind::Delete);
    assert_eq!(deleted.kv.key, "/w/a");
    assert!(deleted.kv.value.is_empty());
    assert_eq!(deleted.kv.mod_revision, gone.mod_revision);
    assert_eq!(deleted.prev_kv.as_ref(), Some(&a2));
    assert_quiet(&mut watch).await;
}

/// A watch from the middle replays the rest, then follows live changes,
/// without gaps or duplicates.
pub(crate) async fn watch_from_middle_then_live(store: Arc<dyn Store>) {
    let r1 = store.create("/m/1", b("1")).await.unwrap().mod_revision;
    let r2 = store.create("/m/2", b("2")).await.unwrap().mod_revision;
    let r3 = store.create("/m/3", b("3")).await.unwrap().mod_revision;
    let mut watch = store.watch("/m/", r1).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv.mod_revision, r2);
    assert_eq!(next_event(&mut watch).await.kv.mod_revision, r3);
    let r4 = store.create("/m/4", b("4")).await.unwrap();
    let live = next_event(&mut watch).await;
    assert_eq!(live.kv, r4);
    assert_quiet(&mut watch).await;

    // Live events under concurrent writes arrive complete and in order.
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..10 {
                    store
                        .create(&format!("/m/c/{t}/{i}"), b("x"))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let mut last = r4.mod_revision;
    for _ in 0..80 {
        let event = next_event(&mut watch).await;
        assert_eq!(event.kv.mod_revision, last + 1);
        last = event.kv.mod_revision;
    }
    assert_quiet(&mut watch).await;
}

/// A watch sees its prefix only.
pub(crate) async fn watch_sees_only_its_prefix(store: Arc<dyn Store>) {
    let base = store.current_revision().await.unwrap();
    store.create("/x/a/1", b("1")).await.unwrap();
    store.create("/x/ab/1", b("1")).await.unwrap();
    store.create("/x/b/1", b("1")).await.unwrap();
    let mut watch = store.watch("/x/a/", base).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv.key, "/x/a/1");
    store.create("/x/b/2", b("2")).await.unwrap();
    store.create("/x/a/2", b("2")).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv.key, "/x/a/2");
    assert_quiet(&mut watch).await;
}

/// After compaction, older watches fail; watching at the compaction works.
pub(crate) async fn compaction_limits_watches(store: Arc<dyn Store>) {
    let mut revs = Vec::new();
    for i in 0..5 {
        revs.push(
            store
                .create(&format!("/k/{i}"), b("v"))
                .await
                .unwrap()
                .mod_revision,
        );
    }
    store.compact(revs[2]).await.unwrap();
    // Compacting again to the same revision is harmless.
    store.compact(revs[2]).await.unwrap();

    // The call itself fails, so callers can relist before streaming anything.
    let err = match store.watch("/k/", revs[0]).await {
        Err(err) => err,
        Ok(_) => panic!("watch from a compacted revision was accepted"),
    };
    match err {
        Error::Compacted {
            requested,
            compacted,
        } => {
            assert_eq!(requested, revs[0]);
            assert!(
                compacted > revs[0] && compacted <= revs[2] + 1,
                "{compacted}"
            );
        }
        other => panic!("expected compacted, got {other:?}"),
    }

    let mut watch = store.watch("/k/", revs[2]).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv.mod_revision, revs[3]);
    assert_eq!(next_event(&mut watch).await.kv.mod_revision, revs[4]);
    let live = store.create("/k/5", b("v")).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv, live);
    // Keys themselves survive compaction.
    assert_eq!(store.list("/k/", None, 0).await.unwrap().kvs.len(), 6);
}

/// 64 tasks × 50 creates: all succeed with distinct revisions.
pub(crate) async fn concurrent_creates_get_distinct_revisions(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut revs = Vec::new();
                for i in 0..50 {
                    let kv = store
                        .create(&format!("/cc/{t:02}/{i:02}"), b("x"))
                        .await
                        .unwrap();
                    revs.push(kv.mod_revision);
                }
                revs
            })
        })
        .collect();
    let mut revisions = HashSet::new();
    for task in tasks {
        for rev in task.await.unwrap() {
            assert!(revisions.insert(rev), "revision {rev} given twice");
        }
    }
    assert_eq!(revisions.len(), 3200);
    let max = revisions.iter().copied().max().unwrap();
    assert_eq!(store.current_revision().await.unwrap(), max);
    assert_eq!(store.list("/cc/", None, 0).await.unwrap().kvs.len(), 3200);
}

/// 32 tasks racing compare-and-swap on one key: exactly one wins a round, and
/// retried increments add up.
pub(crate) async fn racing_updates_are_serialized(store: Arc<dyn Store>) {
    let start = store.create("/race", b("0")).await.unwrap();
    let round: Vec<_> = (0..32)
        .map(|t| {
            let store = Arc::clone(&store);
            let rev = start.mod_revision;
            tokio::spawn(async move { store.update("/race", b(&format!("t{t}")), rev).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in round {
        match task.await.unwrap() {
            Ok(kv) => winners.push(kv),
            Err(Error::Conflict { .. }) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let current = store.get("/race").await.unwrap().unwrap();
    assert_eq!(current, winners[0]);

    // Counter increments with retry: the final value counts every success.
    store.create("/counter", b("0")).await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut done = 0;
                while done < 5 {
                    let kv = store.get("/counter").await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    match store
                        .update("/counter", b(&(n + 1).to_string()), kv.mod_revision)
                        .await
                    {
                        Ok(_) => done += 1,
                        Err(Error::Conflict { .. }) => {}
                        Err(other) => panic!("unexpected error {other:?}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let counter = store.get("/counter").await.unwrap().unwrap();
    assert_eq!(counter.value, b("160"));
}

/// Expands to one `#[tokio::test]` per conformance case. `$factory` is an
/// async fn returning `(Arc<dyn Store>, guard)`; the guard keeps the backend
/// alive for the test.
macro_rules! conformance_tests {
    ($factory:path) => {
        $crate::store::conformance::conformance_tests!(
            @cases $factory;
            revisions_are_monotonic_and_shared,
            create_rejects_existing,
            update_compares_mod_revision,
            delete_with_and_without_revision,
            list_prefix_order_and_paging,
            watch_from_zero_replays_everything,
            watch_from_middle_then_live,
            watch_sees_only_its_prefix,
            compaction_limits_watches,
            concurrent_creates_get_distinct_revisions,
            racing_updates_are_serialized,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $factory().await;
                $crate::store::conformance::$case(store).await;
            }
        )*
    };
}
pub(crate) use conformance_tests;
