//! Leader election against an in-memory lease with compare-and-swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// An in-memory Lease with the kernel's resourceVersion semantics.
#[derive(Clone, Default)]
struct MemLease {
    lease: Arc<Mutex<Option<Lease>>>,
    revision: Arc<AtomicUsize>,
}

impl MemLease {
    fn spec(&self) -> LeaseSpec {
        self.lease
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .and_then(|l| l.spec)
            .unwrap_or_default()
    }

    /// Rewrites the lease as another writer would.
    fn steal(&self, holder: &str) {
        let mut guard = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lease) = guard.as_mut() {
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            spec.holder_identity = Some(holder.into());
            spec.renew_time = Some(now());
            spec.lease_duration_seconds = Some(15);
            lease.metadata.resource_version =
                Some((self.revision.fetch_add(1, Ordering::SeqCst) + 1).to_string());
        }
    }
}

#[async_trait]
impl LeaseStore for MemLease {
    async fn get(&self) -> Result<Option<Lease>> {
        Ok(self.lease.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    async fn create(&self, lease: &Lease) -> Result<Lease> {
        let mut guard = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            return Err(Error::AlreadyExists("lease".into()));
        }
        let mut lease = lease.clone();
        lease.metadata.resource_version =
            Some((self.revision.fetch_add(1, Ordering::SeqCst) + 1).to_string());
        *guard = Some(lease.clone());
        Ok(lease)
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease> {
        let mut guard = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        let stored_rv = guard
            .as_ref()
            .and_then(|l| l.metadata.resource_version.clone());
        if stored_rv != lease.metadata.resource_version {
            return Err(Error::Conflict("the object has been modified".into()));
        }
        let mut lease = lease.clone();
        lease.metadata.resource_version =
            Some((self.revision.fetch_add(1, Ordering::SeqCst) + 1).to_string());
        *guard = Some(lease.clone());
        Ok(lease)
    }
}

fn elector(store: &MemLease, id: &str) -> LeaderElector<MemLease> {
    LeaderElector::new(store.clone(), LeaderConfig::new(id))
}

#[tokio::test(start_paused = true)]
async fn acquires_a_free_lease_and_renews_it() {
    let store = MemLease::default();
    let a = elector(&store, "a");
    assert!(matches!(a.try_acquire_or_renew().await, Ok(true)));
    let first = store.spec();
    assert_eq!(first.holder_identity.as_deref(), Some("a"));
    assert_eq!(first.lease_duration_seconds, Some(15));
    assert_eq!(first.lease_transitions, Some(0));
    assert!(first.acquire_time.is_some());
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(matches!(a.try_acquire_or_renew().await, Ok(true)));
    let renewed = store.spec();
    // Renewal keeps acquireTime and transitions.
    assert_eq!(renewed.acquire_time, first.acquire_time);
    assert_eq!(renewed.lease_transitions, Some(0));
}

#[tokio::test(start_paused = true)]
async fn a_held_lease_is_taken_only_after_it_expires() {
    let store = MemLease::default();
    let a = elector(&store, "a");
    let b = elector(&store, "b");
    assert!(matches!(a.try_acquire_or_renew().await, Ok(true)));
    assert!(matches!(b.try_acquire_or_renew().await, Ok(false)));
    // While a renews, b never wins, however long it tries.
    for _ in 0..10 {
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(matches!(a.try_acquire_or_renew().await, Ok(true)));
        assert!(matches!(b.try_acquire_or_renew().await, Ok(false)));
    }
    // a stops renewing: b waits a full lease duration from its last change.
    tokio::time::advance(Duration::from_secs(14)).await;
    assert!(matches!(b.try_acquire_or_renew().await, Ok(false)));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(matches!(b.try_acquire_or_renew().await, Ok(true)));
    let spec = store.spec();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    // a now sees b's fresh record and does not take it back.
    assert!(matches!(a.try_acquire_or_renew().await, Ok(false)));
}

#[tokio::test(start_paused = true)]
async fn release_lets_another_replica_in_at_once() {
    let store = MemLease::default();
    let a = elector(&store, "a");
    let b = elector(&store, "b");
    assert!(matches!(a.try_acquire_or_renew().await, Ok(true)));
    assert!(matches!(b.try_acquire_or_renew().await, Ok(false)));
    assert!(a.release().await.is_ok());
    assert_eq!(store.spec().holder_identity, None);
    assert!(matches!(b.try_acquire_or_renew().await, Ok(true)));
    // Releasing a lease one does not hold changes nothing.
    assert!(a.release().await.is_ok());
    assert_eq!(store.spec().holder_identity.as_deref(), Some("b"));
}

#[tokio::test(start_paused = true)]
async fn concurrent_candidates_never_both_win() {
    let store = MemLease::default();
    let a = elector(&store, "a");
    let b = elector(&store, "b");
    let (ra, rb) = tokio::join!(a.try_acquire_or_renew(), b.try_acquire_or_renew());
    let wins = [ra, rb]
        .into_iter()
        .filter(|r| matches!(r, Ok(true)))
        .count();
    assert_eq!(wins, 1);
}

/// Counts running work futures; decrements when one is dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn run_stops_work_when_the_lease_is_lost_and_resumes_when_won_back() {
    let store = MemLease::default();
    let a = Arc::new(elector(&store, "a"));
    let running = Arc::new(AtomicUsize::new(0));
    let starts = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn({
        let a = a.clone();
        let running = running.clone();
        let starts = starts.clone();
        async move {
            a.run(
                || {
                    let running = running.clone();
                    starts.fetch_add(1, Ordering::SeqCst);
                    async move {
                        running.fetch_add(1, Ordering::SeqCst);
                        let _guard = Running(running);
                        futures::future::pending::<()>().await;
                    }
                },
                async {
                    let _ = stop_rx.await;
                },
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(running.load(Ordering::SeqCst), 1);
    assert!(*a.leading().borrow());

    // Someone else takes the lease: at the next renewal a stops working.
    store.steal("intruder");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(running.load(Ordering::SeqCst), 0);
    assert!(!*a.leading().borrow());

    // The intruder never renews: a wins it back after the lease duration.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(running.load(Ordering::SeqCst), 1);
    assert_eq!(starts.load(Ordering::SeqCst), 2);

    // Shutdown stops the work and releases the lease.
    let _ = stop_tx.send(());
    let result = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(matches!(result, Ok(Ok(Ok(())))));
    assert_eq!(running.load(Ordering::SeqCst), 0);
    assert_eq!(store.spec().holder_identity, None);
}

#[tokio::test(start_paused = true)]
async fn leader_that_cannot_renew_stops_within_the_deadline() {
    /// A store that works, then fails every call.
    #[derive(Clone)]
    struct Flaky {
        inner: MemLease,
        broken: Arc<std::sync::atomic::AtomicBool>,
    }
    #[async_trait]
    impl LeaseStore for Flaky {
        async fn get(&self) -> Result<Option<Lease>> {
            if self.broken.load(Ordering::SeqCst) {
                return Err(Error::Unavailable("kernel down".into()));
            }
            self.inner.get().await
        }
        async fn create(&self, lease: &Lease) -> Result<Lease> {
            self.inner.create(lease).await
        }
        async fn replace(&self, lease: &Lease) -> Result<Lease> {
            self.inner.replace(lease).await
        }
    }
    let flaky = Flaky {
        inner: MemLease::default(),
        broken: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    let a = LeaderElector::new(flaky.clone(), LeaderConfig::new("a"));
    a.acquire().await;
    flaky.broken.store(true, Ordering::SeqCst);
    let start = Instant::now();
    a.hold().await;
    let held = start.elapsed();
    // Gave up at the renew deadline (10 s), not before and not much later.
    assert!(
        held >= Duration::from_secs(10) && held <= Duration::from_secs(12),
        "{held:?}"
    );
    assert!(!*a.leading().borrow());
}
