//! Tests of watchers (module `watch::watcher::tests`).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::store::Store;
use crate::watch::fake_store::{FakeStore, pod, pod_type};
use crate::watch::{CacheConfig, WatchCache};

const WAIT: Duration = Duration::from_secs(5);

async fn start(store: &Arc<FakeStore>, config: CacheConfig) -> Arc<WatchCache> {
    let dyn_store: Arc<dyn Store> = store.clone();
    WatchCache::start_with(dyn_store, Arc::new(pod_type()), config)
        .await
        .unwrap()
}

async fn sync(store: &FakeStore, cache: &WatchCache) {
    let rev = store.current_revision().await.unwrap();
    cache.wait_for_revision(rev, WAIT).await.unwrap();
}

async fn next(w: &mut Watcher) -> Arc<CachedEvent> {
    tokio::time::timeout(WAIT, w.recv())
        .await
        .expect("an event in time")
        .expect("watch open")
        .expect("no error")
}

fn line(ev: &CachedEvent) -> Value {
    let bytes = ev.json_line();
    serde_json::from_slice(&bytes[..bytes.len() - 1]).unwrap()
}

#[tokio::test]
async fn resumes_from_the_window_then_goes_live() {
    let store = FakeStore::new();
    let cache = start(&store, CacheConfig::default()).await;
    let mut revs = Vec::new();
    for i in 0..5 {
        let (k, v) = pod("a", &format!("p{i}"), json!({}), "n1");
        revs.push(store.put(&k, &v));
    }
    sync(&store, &cache).await;
    let mut w = cache
        .watch(WatchOptions {
            from_revision: Some(revs[1]),
            ..WatchOptions::default()
        })
        .await
        .unwrap();
    for want in &revs[2..] {
        let ev = next(&mut w).await;
        assert_eq!((ev.kind, ev.revision), (EventType::Added, *want));
    }
    let (k, v) = pod("a", "p0", json!({"x": "y"}), "n1");
    let rev = store.put(&k, &v);
    let ev = next(&mut w).await;
    assert_eq!((ev.kind, ev.revision), (EventType::Modified, rev));
    let wire = line(&ev);
    assert_eq!(wire["type"], "MODIFIED");
    assert_eq!(
        wire["object"]["metadata"]["resourceVersion"],
        rev.to_string()
    );
    assert_eq!(wire["object"]["metadata"]["labels"]["x"], "y");
    let rev = store.remove(&k).unwrap();
    let ev = next(&mut w).await;
    assert_eq!((ev.kind, ev.revision), (EventType::Deleted, rev));
    assert_eq!(
        ev.object.value()["metadata"]["resourceVersion"],
        rev.to_string()
    );
    assert_eq!(ev.object.labels["x"], "y", "DELETED carries the last state");
}

#[tokio::test]
async fn resuming_before_the_window_is_too_old() {
    let store = FakeStore::new();
    let config = CacheConfig {
        window: 3,
        ..CacheConfig::default()
    };
    let cache = start(&store, config).await;
    for i in 0..6 {
        let (k, v) = pod("a", &format!("p{i}"), json!({}), "n1");
        store.put(&k, &v);
    }
    sync(&store, &cache).await;
    let err = cache
        .watch(WatchOptions {
            from_revision: Some(1),
            ..WatchOptions::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "too old resource version: 1 (3)");
    // The oldest resumable revision works and replays the three kept events.
    let mut w = cache
        .watch(WatchOptions {
            from_revision: Some(3),
            ..WatchOptions::default()
        })
        .await
        .unwrap();
    for want in 4..=6 {
        assert_eq!(next(&mut w).await.revision, want);
    }
}

#[tokio::test]
async fn a_future_revision_that_never_comes_is_too_large() {
    let store = FakeStore::new();
    let config = CacheConfig {
        future_revision_wait: Duration::from_millis(50),
        ..CacheConfig::default()
    };
    let cache = start(&store, config).await;
    let err = cache
        .watch(WatchOptions {
            from_revision: Some(100),
            ..WatchOptions::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TooLargeResourceVersion { requested: 100, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn label_transitions_become_added_and_deleted() {
    let store = FakeStore::new();
    let cache = start(&store, CacheConfig::default()).await;
    let mut w = cache
        .watch(WatchOptions {
            labels: crate::selector::LabelSelector::parse("app=web").unwrap(),
            ..WatchOptions::default()
        })
        .await
        .unwrap();
    let (k, web) = pod("a", "p", json!({"app": "web"}), "n1");
    let (_, db) = pod("a", "p", json!({"app": "db"}), "n1");
    let (_, web2) = pod("a", "p", json!({"app": "web", "v": "2"}), "n1");
    store.put(&k, &web);
    store.put(&k, &db);
    let r3 = store.put(&k, &db); // still not matching: nothing
    store.put(&k, &web);
    store.put(&k, &web2);
    store.remove(&k);
    let (_, other) = pod("a", "q", json!({"app": "db"}), "n1");
    store.put("/registry/core/pods/a/q", &other);
    let (_, last) = pod("a", "z", json!({"app": "web"}), "n1");
    store.put("/registry/core/pods/a/z", &last);

    let kinds: Vec<(EventType, String)> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            let ev = next(&mut w).await;
            assert_ne!(ev.revision, r3);
            v.push((ev.kind, ev.object.name.clone()));
        }
        v
    };
    use EventType::*;
    assert_eq!(
        kinds,
        [
            (Added, "p".into()),
            (Deleted, "p".into()),
            (Added, "p".into()),
            (Modified, "p".into()),
            (Deleted, "p".into()),
            (Added, "z".into()),
        ]
    );
}

#[tokio::test]
async fn namespace_and_field_selectors_filter_live_events() {
    let store = FakeStore::new();
    let cache = start(&store, CacheConfig::default()).await;
    let mut w = cache
        .watch(WatchOptions {
            namespace: Some("a".into()),
            fields: crate::selector::FieldSelector::parse("spec.nodeName=n1").unwrap(),
            ..WatchOptions::default()
        })
        .await
        .unwrap();
    for (ns, name, node) in [("b", "x", "n1"), ("a", "y", "n2"), ("a", "z", "n1")] {
        let (k, v) = pod(ns, name, json!({}), node);
        store.put(&k, &v);
    }
    // Moving y onto n1 makes it match: ADDED.
    let (k, v) = pod("a", "y", json!({}), "n1");
    store.put(&k, &v);
    let a = next(&mut w).await;
    let b = next(&mut w).await;
    assert_eq!((a.kind, a.object.name.as_str()), (EventType::Added, "z"));
    assert_eq!((b.kind, b.object.name.as_str()), (EventType::Added, "y"));
}

#[tokio::test]
async fn revision_zero_sends_current_objects_first() {
    let store = FakeStore::new();
    for name in ["a1", "a2"] {
        let (k, v) = pod("a", name, json!({}), "n1");
        store.put(&k, &v);
    }
    let cache = start(&store, CacheConfig::default()).await;
    let mut w = cache
        .watch(WatchOptions {
            from_revision: Some(0),
            ..WatchOptions::default()
        })
        .await
        .unwrap();
    let (k, v) = pod("a", "a3", json!({}), "n1");
    let rev = store.put(&k, &v);
    let names: Vec<(EventType, String)> =
        [next(&mut w).await, next(&mut w).await, next(&mut w).await]
            .iter()
            .map(|e| (e.kind, e.object.name.clone()))
            .collect();
    assert_eq!(
        names,
        [
            (EventType::Added, "a1".into()),
            (EventType::Added, "a2".into()),
            (EventType::Added, "a3".into()),
        ]
    );
    // Without a revision only later changes arrive.
    let mut later = cache.watch(WatchOptions::default()).await.unwrap();
    store.remove(&k);
    let ev = next(&mut later).await;
    assert_eq!((ev.kind, ev.revision), (EventType::Deleted, rev + 1));
}

#[tokio::test]
async fn bookmarks_carry_the_last_seen_revision() {
    let store = FakeStore::new();
    let config = CacheConfig {
        bookmark_interval: Duration::from_millis(100),
        ..CacheConfig::default()
    };
    let cache = start(&store, config).await;
    let mut w = cache
        .watch(WatchOptions {
            bookmarks: true,
            namespace: Some("a".into()),
            ..WatchOptions::default()
        })
        .await
        .unwrap();
    let (k, v) = pod("a", "p", json!({}), "n1");
    store.put(&k, &v);
    // An event in another namespace still advances the bookmark.
    let (k, v) = pod("b", "q", json!({}), "n1");
    let rev = store.put(&k, &v);
    assert_eq!(next(&mut w).await.kind, EventType::Added);
    let bm = next(&mut w).await;
    assert_eq!((bm.kind, bm.revision), (EventType::Bookmark, rev));
    let wire = line(&bm);
    assert_eq!(wire["type"], "BOOKMARK");
    assert_eq!(wire["object"]["kind"], "Pod");
    assert_eq!(wire["object"]["apiVersion"], "v1");
    assert_eq!(
        wire["object"]["metadata"]["resourceVersion"],
        rev.to_string()
    );
    // Without asking, no bookmarks.
    let mut quiet = cache.watch(WatchOptions::default()).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), quiet.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_slow_watcher_is_closed_not_buffered() {
    let store = FakeStore::new();
    let config = CacheConfig {
        broadcast_capacity: 16,
        ..CacheConfig::default()
    };
    let cache = start(&store, config).await;
    let mut slow = cache.watch(WatchOptions::default()).await.unwrap();
    let mut fast = cache.watch(WatchOptions::default()).await.unwrap();
    for i in 0..200 {
        let (k, v) = pod("a", &format!("p{i}"), json!({}), "n1");
        store.put(&k, &v);
        // The fast watcher keeps up.
        assert_eq!(next(&mut fast).await.revision, i + 1);
    }
    sync(&store, &cache).await;
    // The slow one's backlog is bounded by the ring, not by the event count.
    assert!(
        cache.queued_events() <= 16,
        "backlog {}",
        cache.queued_events()
    );
    let end = tokio::time::timeout(WAIT, slow.recv()).await.unwrap();
    assert!(matches!(end, Some(Err(Error::WatcherTooSlow))));
    assert!(slow.recv().await.is_none());
}

#[tokio::test]
async fn watchers_end_when_the_cache_stops() {
    let store = FakeStore::new();
    let cache = start(&store, CacheConfig::default()).await;
    let w = cache.watch(WatchOptions::default()).await.unwrap();
    drop(cache);
    let mut stream = Box::pin(w.into_stream());
    let end = tokio::time::timeout(WAIT, futures::StreamExt::next(&mut stream))
        .await
        .unwrap();
    assert!(end.is_none());
}
