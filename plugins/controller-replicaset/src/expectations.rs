//! Expectations: what a ReplicaSet's last sync asked for and the pod informer
//! has not shown yet. Until they are met the controller does not create or
//! delete again, so a lagging cache never causes double creation.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kerno_sdk::ObjectKey;

/// After this long unmet expectations are dropped (a lost watch event must not
/// wedge a ReplicaSet forever); Kubernetes uses the same 5 minutes.
const EXPECTATIONS_TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
struct Pending {
    creations: i64,
    deletions: HashSet<String>,
    since: Instant,
}

/// Pending creations and deletions per ReplicaSet key.
#[derive(Debug, Default)]
pub struct Expectations {
    pending: Mutex<HashMap<ObjectKey, Pending>>,
}

impl Expectations {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<ObjectKey, Pending>) -> T) -> T {
        let mut guard = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Whether the last sync's effects have all been observed (or expired).
    pub fn satisfied(&self, key: &ObjectKey) -> bool {
        self.with(|m| match m.get(key) {
            None => true,
            Some(p) => {
                let met = p.creations <= 0 && p.deletions.is_empty();
                let expired = p.since.elapsed() > EXPECTATIONS_TTL;
                if met || expired {
                    m.remove(key);
                }
                met || expired
            }
        })
    }

    /// Records that `count` pods are about to be created.
    pub fn expect_creations(&self, key: &ObjectKey, count: usize) {
        self.with(|m| {
            m.insert(
                key.clone(),
                Pending {
                    creations: i64::try_from(count).unwrap_or(i64::MAX),
                    deletions: HashSet::new(),
                    since: Instant::now(),
                },
            );
        });
    }

    /// Records that the named pods are about to be deleted.
    pub fn expect_deletions(&self, key: &ObjectKey, pods: impl IntoIterator<Item = String>) {
        self.with(|m| {
            m.insert(
                key.clone(),
                Pending {
                    creations: 0,
                    deletions: pods.into_iter().collect(),
                    since: Instant::now(),
                },
            );
        });
    }

    /// A created pod showed up (or its creation failed and will never show).
    pub fn creation_observed(&self, key: &ObjectKey) {
        self.with(|m| {
            if let Some(p) = m.get_mut(key) {
                p.creations -= 1;
            }
        });
    }

    /// A pod deletion showed up (or failed and will never show).
    pub fn deletion_observed(&self, key: &ObjectKey, pod: &str) {
        self.with(|m| {
            if let Some(p) = m.get_mut(key) {
                p.deletions.remove(pod);
            }
        });
    }

    /// Forgets a ReplicaSet (it was deleted).
    pub fn forget(&self, key: &ObjectKey) {
        self.with(|m| {
            m.remove(key);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_and_deletions_must_all_be_observed() {
        let e = Expectations::default();
        let key = ObjectKey::new(Some("ns"), "rs");
        assert!(e.satisfied(&key));
        e.expect_creations(&key, 2);
        assert!(!e.satisfied(&key));
        e.creation_observed(&key);
        assert!(!e.satisfied(&key));
        e.creation_observed(&key);
        assert!(e.satisfied(&key));
        e.expect_deletions(&key, ["a".to_owned(), "b".to_owned()]);
        e.deletion_observed(&key, "a");
        e.deletion_observed(&key, "a");
        assert!(!e.satisfied(&key));
        e.deletion_observed(&key, "b");
        assert!(e.satisfied(&key));
    }
}
