//! A rate-limited work queue with per-key dedup, in the manner of client-go's
//! workqueue:
//!
//! - a key added while it waits is queued once;
//! - a key added while it is being processed is queued again after
//!   [`WorkQueue::done`], never handed to two workers at once;
//! - [`WorkQueue::add_rate_limited`] delays a failing key with per-key
//!   exponential back-off (reset by [`WorkQueue::forget`]) and, across keys, a
//!   token bucket: the delay is the larger of the two.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Rate limits of a [`WorkQueue`].
#[derive(Clone, Debug)]
pub struct RateLimits {
    /// First retry delay of a failing key.
    pub base_delay: Duration,
    /// Longest retry delay of a failing key.
    pub max_delay: Duration,
    /// Retries per second across all keys (token bucket refill rate).
    pub qps: f64,
    /// Retries allowed at once before `qps` applies (bucket size).
    pub burst: u32,
}

impl Default for RateLimits {
    /// client-go's defaults: 5 ms doubling up to 1000 s, and 10 qps with a burst of 100.
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(1000),
            qps: 10.0,
            burst: 100,
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

struct Inner<T> {
    queue: VecDeque<T>,
    /// Keys waiting in `queue` or to be re-queued when done.
    dirty: HashSet<T>,
    processing: HashSet<T>,
    /// Keys to add at a time; the counter keeps equal deadlines apart.
    delayed: BTreeMap<(Instant, u64), T>,
    /// Earliest pending deadline per key, so a key is delayed once.
    delayed_at: HashMap<T, Instant>,
    seq: u64,
    failures: HashMap<T, u32>,
    bucket: Bucket,
    shutdown: bool,
}

/// A work queue of keys (usually [`crate::ObjectKey`]). Clone it freely.
pub struct WorkQueue<T> {
    inner: Arc<Mutex<Inner<T>>>,
    notify: Arc<Notify>,
    limits: Arc<RateLimits>,
}

impl<T> Clone for WorkQueue<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            notify: self.notify.clone(),
            limits: self.limits.clone(),
        }
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> Default for WorkQueue<T> {
    fn default() -> Self {
        Self::new(RateLimits::default())
    }
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    /// An empty queue with these limits.
    pub fn new(limits: RateLimits) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                delayed: BTreeMap::new(),
                delayed_at: HashMap::new(),
                seq: 0,
                failures: HashMap::new(),
                bucket: Bucket {
                    tokens: f64::from(limits.burst),
                    last: Instant::now(),
                },
                shutdown: false,
            })),
            notify: Arc::new(Notify::new()),
            limits: Arc::new(limits),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // The maps stay consistent between statements; a panic elsewhere
        // must not take the queue down with it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` now (once, however often it is added before a worker takes it).
    pub fn add(&self, key: T) {
        let mut inner = self.lock();
        Self::add_locked(&mut inner, key);
        drop(inner);
        self.notify.notify_one();
    }

    fn add_locked(inner: &mut Inner<T>, key: T) {
        if inner.shutdown || inner.dirty.contains(&key) {
            return;
        }
        inner.dirty.insert(key.clone());
        if !inner.processing.contains(&key) {
            inner.queue.push_back(key);
        }
    }

    /// Queues `key` after `delay`; an earlier pending deadline of the same key wins.
    pub fn add_after(&self, key: T, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let at = Instant::now() + delay;
        let mut inner = self.lock();
        if inner.shutdown || inner.delayed_at.get(&key).is_some_and(|t| *t <= at) {
            return;
        }
        if let Some(old) = inner.delayed_at.insert(key.clone(), at) {
            inner.delayed.retain(|(t, _), k| !(*t == old && *k == key));
        }
        inner.seq += 1;
        let seq = inner.seq;
        inner.delayed.insert((at, seq), key);
        drop(inner);
        // Wake a waiting worker so it re-computes its sleep deadline.
        self.notify.notify_one();
    }

    /// Queues a failed `key` after its back-off: `base_delay * 2^failures`
    /// (capped at `max_delay`), or later if the global token bucket is empty.
    pub fn add_rate_limited(&self, key: T) {
        let delay = {
            let mut inner = self.lock();
            let failures = inner.failures.entry(key.clone()).or_insert(0);
            let exp = (*failures).min(30);
            *failures += 1;
            let per_key = self
                .limits
                .base_delay
                .saturating_mul(2u32.saturating_pow(exp))
                .min(self.limits.max_delay);
            per_key.max(self.bucket_delay(&mut inner.bucket))
        };
        self.add_after(key, delay);
    }

    /// Takes a token from the bucket and says how long to wait for it.
    fn bucket_delay(&self, bucket: &mut Bucket) -> Duration {
        let now = Instant::now();
        let refill = now.duration_since(bucket.last).as_secs_f64() * self.limits.qps;
        bucket.tokens = (bucket.tokens + refill).min(f64::from(self.limits.burst));
        bucket.last = now;
        bucket.tokens -= 1.0;
        if bucket.tokens >= 0.0 || self.limits.qps <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-bucket.tokens / self.limits.qps)
        }
    }

    /// How many times `key` failed since it was last forgotten.
    pub fn failures(&self, key: &T) -> u32 {
        self.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Resets `key`'s back-off (call it after a success).
    pub fn forget(&self, key: &T) {
        self.lock().failures.remove(key);
    }

    /// Marks `key` as processed; if it was added meanwhile, it is queued again.
    pub fn done(&self, key: &T) {
        let mut inner = self.lock();
        inner.processing.remove(key);
        let requeue = inner.dirty.contains(key);
        if requeue {
            inner.queue.push_back(key.clone());
        }
        drop(inner);
        if requeue {
            self.notify.notify_one();
        }
    }

    /// Keys queued now (not counting delayed ones or ones being processed).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no key is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the queue: waiting and future [`WorkQueue::get`] calls return `None`.
    pub fn shutdown(&self) {
        self.lock().shutdown = true;
        self.notify.notify_waiters();
    }

    /// Moves due delayed keys to the queue; returns the next deadline.
    fn promote(inner: &mut Inner<T>) -> Option<Instant> {
        let now = Instant::now();
        while let Some(entry) = inner.delayed.first_entry() {
            if entry.key().0 > now {
                return Some(entry.key().0);
            }
            let key = entry.remove();
            inner.delayed_at.remove(&key);
            Self::add_locked(inner, key);
        }
        None
    }

    /// Waits for the next key; the caller must call [`WorkQueue::done`] with it.
    /// `None` once the queue is shut down.
    pub async fn get(&self) -> Option<T> {
        loop {
            // Register interest before looking, so an add between the look
            // and the wait is not missed.
            let notified = self.notify.notified();
            let deadline = {
                let mut inner = self.lock();
                if inner.shutdown {
                    return None;
                }
                let deadline = Self::promote(&mut inner);
                if let Some(key) = inner.queue.pop_front() {
                    inner.dirty.remove(&key);
                    inner.processing.insert(key.clone());
                    let more = !inner.queue.is_empty();
                    drop(inner);
                    if more {
                        // Pass the wake-up on: another worker may take the next key.
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
                deadline
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> WorkQueue<&'static str> {
        WorkQueue::new(RateLimits {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            qps: 1000.0,
            burst: 1000,
        })
    }

    async fn next(q: &WorkQueue<&'static str>) -> Option<&'static str> {
        tokio::time::timeout(Duration::from_secs(3600), q.get())
            .await
            .ok()
            .flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn dedups_waiting_keys() {
        let q = queue();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.len(), 2);
        assert_eq!(next(&q).await, Some("a"));
        assert_eq!(next(&q).await, Some("b"));
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn key_added_while_processing_runs_again_after_done() {
        let q = queue();
        q.add("a");
        let a = next(&q).await;
        assert_eq!(a, Some("a"));
        q.add("a");
        q.add("a");
        // Not handed out while still processing.
        assert!(q.is_empty());
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(1), q.get())
                .await
                .ok(),
            None
        );
        q.done(&"a");
        assert_eq!(q.len(), 1);
        assert_eq!(next(&q).await, Some("a"));
        q.done(&"a");
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn failing_keys_back_off_exponentially_until_forgotten() {
        let q = queue();
        let mut waits = Vec::new();
        for _ in 0..4 {
            let start = Instant::now();
            q.add_rate_limited("a");
            assert_eq!(next(&q).await, Some("a"));
            waits.push(start.elapsed().as_millis());
            q.done(&"a");
        }
        assert_eq!(waits, vec![100, 200, 400, 800]);
        assert_eq!(q.failures(&"a"), 4);
        q.forget(&"a");
        let start = Instant::now();
        q.add_rate_limited("a");
        assert_eq!(next(&q).await, Some("a"));
        assert_eq!(start.elapsed().as_millis(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn back_off_is_capped() {
        let q = queue();
        for _ in 0..20 {
            q.add_rate_limited("a");
            assert_eq!(next(&q).await, Some("a"));
            q.done(&"a");
        }
        let start = Instant::now();
        q.add_rate_limited("a");
        assert_eq!(next(&q).await, Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn global_bucket_spaces_retries_of_many_keys() {
        let q: WorkQueue<u32> = WorkQueue::new(RateLimits {
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            qps: 10.0,
            burst: 2,
        });
        let start = Instant::now();
        for key in 0..4 {
            q.add_rate_limited(key);
        }
        let mut times = Vec::new();
        for _ in 0..4 {
            let key = tokio::time::timeout(Duration::from_secs(60), q.get())
                .await
                .ok()
                .flatten();
            assert!(key.is_some());
            times.push(start.elapsed().as_millis());
        }
        // Two at once (the burst), then one per 100 ms.
        assert_eq!(times, vec![0, 0, 100, 200]);
    }

    #[tokio::test(start_paused = true)]
    async fn add_after_keeps_the_earliest_deadline() {
        let q = queue();
        let start = Instant::now();
        q.add_after("a", Duration::from_secs(5));
        q.add_after("a", Duration::from_secs(2));
        q.add_after("a", Duration::from_secs(9));
        assert_eq!(next(&q).await, Some("a"));
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        q.done(&"a");
        // The later deadlines were dropped, not kept.
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(30), q.get())
                .await
                .ok(),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_wakes_waiting_workers() {
        let q = queue();
        let worker = tokio::spawn({
            let q = q.clone();
            async move { q.get().await }
        });
        tokio::task::yield_now().await;
        q.shutdown();
        assert_eq!(worker.await.ok(), Some(None));
        q.add("late");
        assert_eq!(q.get().await, None);
    }
}
