//! Tests of lists, paging, progress and restart (module `watch::cache::tests`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::store::Store;
use crate::watch::fake_store::{FakeStore, pod, pod_type};

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

fn names(page: &ListPage) -> Vec<String> {
    page.items
        .iter()
        .map(|o| format!("{}/{}", o.namespace, o.name))
        .collect()
}

#[tokio::test]
async fn lists_page_at_a_fixed_revision_while_writes_continue() {
    let store = FakeStore::new();
    for i in 0..10 {
        let (k, v) = pod("a", &format!("p{i:02}"), json!({"app": "web"}), "n1");
        store.put(&k, &v);
    }
    for i in 0..5 {
        let (k, v) = pod("b", &format!("q{i}"), json!({"app": "db"}), "n2");
        store.put(&k, &v);
    }
    let cache = start(&store, CacheConfig::default()).await;
    sync(&store, &cache).await;

    let first = cache
        .list(ListOptions {
            limit: 4,
            ..ListOptions::default()
        })
        .unwrap();
    let rev = first.revision;
    assert_eq!(rev, 15);
    assert_eq!(names(&first), ["a/p00", "a/p01", "a/p02", "a/p03"]);
    assert_eq!(first.remaining, Some(11));
    // Every object carries its own mod revision as resourceVersion.
    assert_eq!(first.items[0].value()["metadata"]["resourceVersion"], "1");

    // Writes continue: change a later item, delete one, add one.
    let (k, v) = pod("a", "p07", json!({"app": "changed"}), "n1");
    store.put(&k, &v);
    store.remove("/registry/core/pods/a/p08");
    let (k, v) = pod("a", "p05x", json!({}), "n1");
    store.put(&k, &v);
    sync(&store, &cache).await;
    assert_eq!(cache.revision(), 18);

    let mut all = names(&first);
    let mut token = first.continue_token.clone();
    while let Some(t) = token {
        let page = cache
            .list(ListOptions {
                limit: 4,
                continue_token: Some(t),
                ..ListOptions::default()
            })
            .unwrap();
        assert_eq!(
            page.revision, rev,
            "later pages stay at the first page's revision"
        );
        assert!(page.items.iter().all(|o| o.revision <= rev));
        all.extend(names(&page));
        token = page.continue_token;
    }
    assert_eq!(all.len(), 15);
    assert!(all.contains(&"a/p08".to_owned()));
    assert!(!all.contains(&"a/p05x".to_owned()));
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted);

    // A fresh list sees the new state.
    let now = cache.list(ListOptions::default()).unwrap();
    assert_eq!(now.revision, 18);
    assert_eq!(now.items.len(), 15);
    assert!(now.continue_token.is_none());
    let p07 = now.items.iter().find(|o| o.name == "p07").unwrap();
    assert_eq!(p07.labels["app"], "changed");
    assert_eq!(p07.value()["metadata"]["resourceVersion"], "16");
}

#[tokio::test]
async fn lists_filter_by_namespace_and_selectors() {
    let store = FakeStore::new();
    for (ns, name, app, node) in [
        ("a", "x", "web", "n1"),
        ("a", "y", "db", "n2"),
        ("b", "z", "web", "n2"),
        ("ab", "w", "web", "n1"),
    ] {
        let (k, v) = pod(ns, name, json!({ "app": app }), node);
        store.put(&k, &v);
    }
    let cache = start(&store, CacheConfig::default()).await;
    let page = cache
        .list(ListOptions {
            namespace: Some("a".into()),
            ..ListOptions::default()
        })
        .unwrap();
    assert_eq!(names(&page), ["a/x", "a/y"]);
    let page = cache
        .list(ListOptions {
            labels: LabelSelector::parse("app=web").unwrap(),
            fields: FieldSelector::parse("spec.nodeName=n2").unwrap(),
            ..ListOptions::default()
        })
        .unwrap();
    assert_eq!(names(&page), ["b/z"]);
    let page = cache
        .list(ListOptions {
            labels: LabelSelector::parse("app=web").unwrap(),
            limit: 1,
            ..ListOptions::default()
        })
        .unwrap();
    assert_eq!(names(&page), ["a/x"]);
    assert!(page.continue_token.is_some());
    assert_eq!(page.remaining, None, "no count with selectors");
    let next = cache
        .list(ListOptions {
            labels: LabelSelector::parse("app=web").unwrap(),
            limit: 5,
            continue_token: page.continue_token,
            ..ListOptions::default()
        })
        .unwrap();
    assert_eq!(names(&next), ["ab/w", "b/z"]);
    assert!(next.continue_token.is_none());
}

#[tokio::test]
async fn expired_unknown_and_garbled_continue_tokens() {
    let store = FakeStore::new();
    for i in 0..3 {
        let (k, v) = pod("a", &format!("p{i}"), json!({}), "n1");
        store.put(&k, &v);
    }
    let config = CacheConfig {
        continue_ttl: Duration::from_millis(20),
        ..CacheConfig::default()
    };
    let cache = start(&store, config).await;
    let page = cache
        .list(ListOptions {
            limit: 1,
            ..ListOptions::default()
        })
        .unwrap();
    let token = page.continue_token.unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let err = cache
        .list(ListOptions {
            limit: 1,
            continue_token: Some(token),
            ..ListOptions::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::ContinueExpired), "{err}");

    let unknown = encode_continue(2, "/registry/core/pods/a/p0");
    let err = cache
        .list(ListOptions {
            continue_token: Some(unknown),
            ..ListOptions::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::ContinueExpired));

    for garbled in [
        "%%%",
        "bm90IGpzb24",
        &encode_continue(3, "/registry/core/secrets/x"),
    ] {
        let err = cache
            .list(ListOptions {
                continue_token: Some(garbled.to_owned()),
                ..ListOptions::default()
            })
            .unwrap_err();
        assert!(matches!(err, Error::InvalidContinue(_)), "{garbled}: {err}");
    }
}

#[tokio::test]
async fn wait_for_revision_confirms_progress_when_the_type_is_idle() {
    let store = FakeStore::new();
    let (k, v) = pod("a", "p", json!({}), "n1");
    store.put(&k, &v);
    let cache = start(&store, CacheConfig::default()).await;
    // Writes to another type move the store's revision but not this cache's.
    store.put(
        "/registry/core/configmaps/a/c1",
        &json!({"metadata": {"name": "c1"}}),
    );
    store.put(
        "/registry/core/configmaps/a/c2",
        &json!({"metadata": {"name": "c2"}}),
    );
    let lists_before = store.list_calls.load(Ordering::SeqCst);
    sync(&store, &cache).await;
    assert_eq!(cache.revision(), 3);
    assert!(store.list_calls.load(Ordering::SeqCst) > lists_before);
    let page = cache.list(ListOptions::default()).unwrap();
    assert_eq!(page.revision, 3);
    assert_eq!(page.items.len(), 1);
}

#[tokio::test]
async fn store_watch_failure_relists_and_emits_the_differences() {
    let store = FakeStore::new();
    let (k1, v1) = pod("a", "keep", json!({}), "n1");
    let (k2, v2) = pod("a", "gone", json!({}), "n1");
    store.put(&k1, &v1);
    store.put(&k2, &v2);
    let cache = start(&store, CacheConfig::default()).await;
    let mut watcher = cache.watch(WatchOptions::default()).await.unwrap();
    assert_eq!(store.watch_calls.load(Ordering::SeqCst), 1);

    // Changes the cache never hears about, then the watch breaks.
    let (k3, v3) = pod("a", "new", json!({}), "n1");
    store.put_silently(&k3, &v3);
    let list_rev = store.remove_silently(&k2).unwrap();
    store.fail_watches();

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = tokio::time::timeout(WAIT, watcher.recv())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push((ev.kind, ev.object.name.clone(), ev.revision));
    }
    assert!(seen.contains(&(EventType::Added, "new".into(), list_rev)));
    assert!(seen.contains(&(EventType::Deleted, "gone".into(), list_rev)));
    assert!(store.watch_calls.load(Ordering::SeqCst) >= 2);

    // The new store watch delivers live events again.
    let (k4, v4) = pod("a", "after", json!({}), "n1");
    let rev = store.put(&k4, &v4);
    let ev = tokio::time::timeout(WAIT, watcher.recv())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((ev.kind, ev.revision), (EventType::Added, rev));
    let names = names(&cache.list(ListOptions::default()).unwrap());
    assert_eq!(names, ["a/after", "a/keep", "a/new"]);
}

/// Rough fan-out throughput: 1,000 watchers on one type, half unfiltered and
/// half with a label selector matching half the events. Prints the figure;
/// timing is not asserted (debug builds and shared CPUs vary widely).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_throughput() {
    const WATCHERS: usize = 1_000;
    const EVENTS: usize = 2_000;
    let store = FakeStore::new();
    let config = CacheConfig {
        broadcast_capacity: EVENTS * 2,
        ..CacheConfig::default()
    };
    let cache = start(&store, config).await;
    let mut tasks = Vec::new();
    let mut expected_total = 0usize;
    for i in 0..WATCHERS {
        let filtered = i % 2 == 1;
        let labels = if filtered {
            LabelSelector::parse("app=web").unwrap()
        } else {
            LabelSelector::default()
        };
        let expected = if filtered { EVENTS / 2 } else { EVENTS };
        expected_total += expected;
        let mut w = cache
            .watch(WatchOptions {
                labels,
                ..WatchOptions::default()
            })
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while n < expected {
                match w.recv().await {
                    Some(Ok(_)) => n += 1,
                    _ => break,
                }
            }
            n
        }));
    }
    // Pre-build the store events, then feed them straight into the cache.
    let events: Vec<store::Event> = (0..EVENTS)
        .map(|i| {
            let app = if i % 2 == 0 { "web" } else { "db" };
            let (key, v) = pod("ns", &format!("p{i}"), json!({ "app": app }), "n1");
            store::Event {
                kind: EventKind::Put,
                kv: KeyValue {
                    key,
                    value: v.to_string().into(),
                    create_revision: i as i64 + 1,
                    mod_revision: i as i64 + 1,
                },
                prev_kv: None,
            }
        })
        .collect();
    let started = Instant::now();
    for ev in events {
        cache.shared.apply(ev);
    }
    let mut delivered = 0;
    for t in tasks {
        delivered += t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(
        delivered, expected_total,
        "every watcher got all its events"
    );
    println!(
        "fan-out: {delivered} deliveries to {WATCHERS} watchers in {secs:.3}s = {:.0} events/s",
        delivered as f64 / secs
    );
}

/// Writes a pod to a real store, returning the new revision.
async fn put_pod(store: &dyn Store, name: &str, app: &str, prev: Option<Revision>) -> Revision {
    let (key, value) = pod("a", name, json!({ "app": app }), "n1");
    let bytes = bytes::Bytes::from(value.to_string());
    match prev {
        None => store.create(&key, bytes).await.unwrap().mod_revision,
        Some(rev) => store.update(&key, bytes, rev).await.unwrap().mod_revision,
    }
}

async fn next_event(w: &mut Watcher) -> (EventType, String, Revision) {
    let ev = tokio::time::timeout(WAIT, w.recv())
        .await
        .expect("an event in time")
        .expect("watch open")
        .expect("no watch error");
    (ev.kind, ev.object.name.clone(), ev.revision)
}

#[tokio::test]
async fn watches_from_before_the_cache_started_replay_store_history() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        crate::store::embedded::EmbeddedStore::open(dir.path())
            .await
            .unwrap(),
    );
    let r1 = put_pod(store.as_ref(), "p1", "web", None).await;
    let r2 = put_pod(store.as_ref(), "p2", "web", None).await;
    let r3 = put_pod(store.as_ref(), "p1", "db", Some(r1)).await;
    let r4 = store
        .delete("/registry/core/pods/a/p2", None)
        .await
        .unwrap()
        .mod_revision;
    // A fresh cache (as after a kernel restart) starts at r4 with an empty window.
    let cache = WatchCache::start(store.clone(), Arc::new(pod_type()))
        .await
        .unwrap();
    assert_eq!(cache.revision(), r4);

    let mut all = cache
        .watch(WatchOptions {
            from_revision: Some(r1),
            ..WatchOptions::default()
        })
        .await
        .expect("resumes from history, no 410");
    assert_eq!(
        next_event(&mut all).await,
        (EventType::Added, "p2".into(), r2)
    );
    assert_eq!(
        next_event(&mut all).await,
        (EventType::Modified, "p1".into(), r3)
    );
    assert_eq!(
        next_event(&mut all).await,
        (EventType::Deleted, "p2".into(), r4)
    );
    let r5 = put_pod(store.as_ref(), "p3", "web", None).await;
    assert_eq!(
        next_event(&mut all).await,
        (EventType::Added, "p3".into(), r5)
    );

    // Selector transitions hold for history too: p1 leaves app=web at r3.
    let mut web = cache
        .watch(WatchOptions {
            from_revision: Some(r1),
            labels: LabelSelector::parse("app=web").unwrap(),
            ..WatchOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut web).await,
        (EventType::Added, "p2".into(), r2)
    );
    assert_eq!(
        next_event(&mut web).await,
        (EventType::Deleted, "p1".into(), r3)
    );
    assert_eq!(
        next_event(&mut web).await,
        (EventType::Deleted, "p2".into(), r4)
    );
    assert_eq!(
        next_event(&mut web).await,
        (EventType::Added, "p3".into(), r5)
    );

    // Compacted history still answers 410.
    store.compact(r3).await.unwrap();
    let err = cache
        .watch(WatchOptions {
            from_revision: Some(r2),
            ..WatchOptions::default()
        })
        .await
        .expect_err("compacted revision is too old");
    assert!(matches!(err, Error::TooOldResourceVersion { .. }), "{err}");
}
