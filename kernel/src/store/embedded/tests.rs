use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::{EmbeddedOptions, EmbeddedStore};
use crate::store::conformance::{assert_quiet, next_event, next_item};
use crate::store::{Error, Store};

async fn embedded_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = EmbeddedStore::open(dir.path()).await.expect("open store");
    (Arc::new(store), dir)
}

crate::store::conformance::conformance_tests!(embedded_store);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_and_continues_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).await.unwrap();
    let a = store.create("/a", Bytes::from_static(b"1")).await.unwrap();
    let a2 = store
        .update("/a", Bytes::from_static(b"2"), a.mod_revision)
        .await
        .unwrap();
    store.create("/b", Bytes::from_static(b"x")).await.unwrap();
    let gone = store.delete("/b", None).await.unwrap();
    store.compact(a.mod_revision).await.unwrap();
    drop(store);

    let store = EmbeddedStore::open(dir.path()).await.unwrap();
    assert_eq!(store.current_revision().await.unwrap(), gone.mod_revision);
    assert_eq!(store.compacted_revision(), a.mod_revision);
    assert_eq!(store.get("/a").await.unwrap().unwrap(), a2);
    assert!(store.get("/b").await.unwrap().is_none());
    let next = store.create("/c", Bytes::from_static(b"3")).await.unwrap();
    assert_eq!(next.mod_revision, gone.mod_revision + 1);
    // History survives too, from the compaction revision on.
    let mut watch = store.watch("/", a.mod_revision).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv, a2);
    let err = store.watch("/", 0).await.err().expect("compacted");
    assert!(matches!(err, Error::Compacted { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_is_closed_with_lagged() {
    let dir = tempfile::tempdir().unwrap();
    let options = EmbeddedOptions {
        watch_buffer: 4,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), options).await.unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    for i in 0..20 {
        store
            .create(&format!("/k{i:02}"), Bytes::from_static(b"v"))
            .await
            .unwrap();
    }
    let mut seen = 0;
    let last = loop {
        match next_item(&mut watch).await {
            Ok(_) => seen += 1,
            Err(err) => break err,
        }
    };
    assert!(matches!(last, Error::WatchLagged), "{last:?}");
    assert!(seen < 20);
    let end = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(end.is_none(), "the stream ends after the lagged error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_replay_spans_pages_without_gaps() {
    let (store, _dir) = embedded_store().await;
    // More than one replay page, across two prefixes.
    for i in 0..1500 {
        let prefix = if i % 3 == 0 { "/other" } else { "/mine" };
        store
            .create(&format!("{prefix}/{i:04}"), Bytes::from_static(b"v"))
            .await
            .unwrap();
    }
    let mut watch = store.watch("/mine/", 0).await.unwrap();
    let mut last = 0;
    for _ in 0..1000 {
        let event = next_event(&mut watch).await;
        assert!(event.kv.mod_revision > last);
        assert!(event.kv.key.starts_with("/mine/"));
        last = event.kv.mod_revision;
    }
    assert_quiet(&mut watch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_beyond_current_is_refused_and_compactor_trims() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).await.unwrap());
    let err = store.compact(10).await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    for i in 0..30 {
        store
            .create(&format!("/k{i}"), Bytes::from_static(b"v"))
            .await
            .unwrap();
    }
    let compactor = store.spawn_compactor(10, Duration::from_millis(10));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.compacted_revision() != 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "compactor did not run"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.watch("/", 19).await.is_err());
    let mut watch = store.watch("/", 20).await.unwrap();
    assert_eq!(next_event(&mut watch).await.kv.mod_revision, 21);
    compactor.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_store_ends_watches() {
    let (store, _dir) = embedded_store().await;
    let mut watch = store.watch("/", 0).await.unwrap();
    drop(store);
    let item = next_item(&mut watch).await;
    assert!(matches!(item, Err(Error::Backend { .. })), "{item:?}");
}

/// Set in the child process of [`acknowledged_writes_survive_kill_9`].
const CRASH_DIR_ENV: &str = "KERNO_TEST_CRASH_DIR";

/// Acknowledged writes survive `kill -9`. The test runs itself again as a child
/// process (with [`CRASH_DIR_ENV`] set) that writes until it is killed; the
/// parent then reopens the directory and finds every key the child reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    if let Some(dir) = std::env::var_os(CRASH_DIR_ENV) {
        return crash_child(std::path::Path::new(&dir)).await;
    }
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "store::embedded::tests::acknowledged_writes_survive_kill_9",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < 300 {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("child made no progress")
            .unwrap()
            .expect("child ended before it was killed");
        if let Some(key) = line.strip_prefix("acked ") {
            acked.push(key.to_owned());
        }
    }
    // SIGKILL, mid-stream: writes are still in flight.
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    let store = EmbeddedStore::open(dir.path()).await.unwrap();
    for key in &acked {
        assert!(store.get(key).await.unwrap().is_some(), "{key} lost");
    }
    let listed = store.list("/crash/", None, 0).await.unwrap();
    assert!(listed.kvs.len() >= acked.len());
    assert_eq!(listed.revision, store.current_revision().await.unwrap());
    // The log agrees with the keys: a replay sees every surviving key.
    let mut watch = store.watch("/crash/", 0).await.unwrap();
    for _ in 0..listed.kvs.len() {
        next_event(&mut watch).await;
    }
    assert_quiet(&mut watch).await;
}

/// The child side: write from 8 tasks, report each acknowledged key, forever.
async fn crash_child(dir: &std::path::Path) {
    use std::io::Write;
    let store = Arc::new(EmbeddedStore::open(dir).await.unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/{t}/{i}");
                    store.create(&key, Bytes::from_static(b"v")).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "acked {key}").unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn store_open_helper_opens_the_embedded_backend() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::store::StoreConfig::Embedded {
        dir: dir.path().join("nested"),
    };
    let store = crate::store::open(&config).await.unwrap();
    store.create("/a", Bytes::from_static(b"1")).await.unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 1);
    assert!(dir.path().join("nested").join(super::DATA_FILE).is_file());
}
