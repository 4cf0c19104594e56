//! The scheduling queue: an active heap in priority order (then FIFO), a
//! back-off area for pods that failed recently, and an unschedulable area
//! moved back when the cluster changes (node added/updated, pod deleted).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::cache::PodKey;

/// First back-off after a failure; doubles per attempt up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried at least this often even without events.
const UNSCHEDULABLE_FLUSH: Duration = Duration::from_secs(30);

/// A pod handed out by [`SchedulingQueue::pop`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedPod {
    /// The pod.
    pub key: PodKey,
    /// Its priority.
    pub priority: i32,
    /// How many times it was tried before.
    pub attempts: u32,
    seq: u64,
}

impl Ord for QueuedPod {
    fn cmp(&self, other: &Self) -> Ordering {
        // Max-heap: higher priority first, then older first.
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for QueuedPod {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Default)]
struct Inner {
    active: BinaryHeap<QueuedPod>,
    /// Which keys are in `active` (stale heap entries are skipped on pop).
    in_active: HashMap<PodKey, u64>,
    backoff: HashMap<PodKey, (Instant, QueuedPod)>,
    unschedulable: HashMap<PodKey, (Instant, QueuedPod)>,
    seq: u64,
    closed: bool,
}

impl Inner {
    fn push_active(&mut self, mut qp: QueuedPod) {
        self.seq += 1;
        qp.seq = self.seq;
        self.in_active.insert(qp.key.clone(), qp.seq);
        self.active.push(qp);
    }

    fn flush(&mut self, now: Instant) {
        let ready: Vec<PodKey> = self
            .backoff
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in ready {
            if let Some((_, qp)) = self.backoff.remove(&key) {
                self.push_active(qp);
            }
        }
        let stale: Vec<PodKey> = self
            .unschedulable
            .iter()
            .filter(|(_, (since, _))| now.duration_since(*since) >= UNSCHEDULABLE_FLUSH)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some((_, qp)) = self.unschedulable.remove(&key) {
                self.push_active(qp);
            }
        }
    }

    fn contains(&self, key: &str) -> bool {
        self.in_active.contains_key(key)
            || self.backoff.contains_key(key)
            || self.unschedulable.contains_key(key)
    }
}

/// Back-off for a pod tried `attempts` times.
pub fn backoff_for(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    (INITIAL_BACKOFF * 2u32.pow(exp)).min(MAX_BACKOFF)
}

/// The queue; shared between the informer handlers and the scheduling thread.
#[derive(Default)]
pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    ready: Condvar,
}

impl SchedulingQueue {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a new pending pod (no-op if it is queued already; a changed
    /// priority takes effect on its next attempt).
    pub fn add(&self, key: PodKey, priority: i32) {
        let mut inner = self.lock();
        if inner.contains(&key) {
            return;
        }
        inner.push_active(QueuedPod {
            key,
            priority,
            attempts: 0,
            seq: 0,
        });
        drop(inner);
        self.ready.notify_one();
    }

    /// Drops a pod (deleted or bound by someone else).
    pub fn remove(&self, key: &str) {
        let mut inner = self.lock();
        inner.in_active.remove(key);
        inner.backoff.remove(key);
        inner.unschedulable.remove(key);
    }

    /// Puts back a pod that failed for a transient reason, after back-off.
    pub fn add_backoff(&self, mut qp: QueuedPod) {
        qp.attempts += 1;
        let at = Instant::now() + backoff_for(qp.attempts);
        let mut inner = self.lock();
        inner.backoff.insert(qp.key.clone(), (at, qp));
    }

    /// Parks a pod no node fits until the cluster changes.
    pub fn add_unschedulable(&self, mut qp: QueuedPod) {
        qp.attempts += 1;
        let mut inner = self.lock();
        inner
            .unschedulable
            .insert(qp.key.clone(), (Instant::now(), qp));
    }

    /// The cluster changed: unschedulable pods get another chance (after
    /// their back-off).
    pub fn move_all_to_active(&self) {
        let mut inner = self.lock();
        let parked: Vec<(PodKey, (Instant, QueuedPod))> = inner.unschedulable.drain().collect();
        let now = Instant::now();
        for (key, (since, qp)) in parked {
            let at = since + backoff_for(qp.attempts);
            if at <= now {
                inner.push_active(qp);
            } else {
                inner.backoff.insert(key, (at, qp));
            }
        }
        drop(inner);
        self.ready.notify_all();
    }

    /// The next pod to schedule, waiting up to `wait`; `None` on timeout or
    /// after [`SchedulingQueue::close`].
    pub fn pop(&self, wait: Duration) -> Option<QueuedPod> {
        let deadline = Instant::now() + wait;
        let mut inner = self.lock();
        loop {
            if inner.closed {
                return None;
            }
            inner.flush(Instant::now());
            while let Some(qp) = inner.active.pop() {
                if inner.in_active.get(&qp.key) == Some(&qp.seq) {
                    inner.in_active.remove(&qp.key);
                    return Some(qp);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // Wake for the earliest back-off expiry too.
            let next_backoff = inner.backoff.values().map(|(at, _)| *at).min();
            let until = next_backoff.map_or(deadline, |at| at.min(deadline));
            let timeout = until
                .saturating_duration_since(now)
                .max(Duration::from_millis(1));
            inner = self
                .ready
                .wait_timeout(inner, timeout)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Stops handing out pods.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// How many pods wait in each area: (active, backoff, unschedulable).
    pub fn lengths(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        (
            inner.in_active.len(),
            inner.backoff.len(),
            inner.unschedulable.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priority_first_then_fifo() {
        let q = SchedulingQueue::default();
        q.add("a".into(), 0);
        q.add("b".into(), 10);
        q.add("c".into(), 0);
        let order: Vec<String> =
            std::iter::from_fn(|| q.pop(Duration::ZERO).map(|p| p.key)).collect();
        assert_eq!(order, vec!["b", "a", "c"]);
    }

    #[test]
    fn unschedulable_waits_for_a_cluster_event() {
        let q = SchedulingQueue::default();
        q.add("a".into(), 0);
        let Some(qp) = q.pop(Duration::ZERO) else {
            panic!("queued")
        };
        q.add_unschedulable(qp);
        assert!(q.pop(Duration::ZERO).is_none());
        q.move_all_to_active();
        // One attempt: one second of back-off first.
        assert_eq!(q.lengths(), (0, 1, 0));
        assert!(q.pop(Duration::from_millis(1500)).is_some());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff_for(1), Duration::from_secs(1));
        assert_eq!(backoff_for(3), Duration::from_secs(4));
        assert_eq!(backoff_for(30), MAX_BACKOFF);
    }
}
