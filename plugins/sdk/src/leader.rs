//! Leader election on `coordination.k8s.io/v1` Leases, with client-go's rules:
//!
//! - the holder renews `renewTime` every `retry_period`;
//! - a candidate takes the lease when it is free (no holder, as after a
//!   release) or when it has seen no change of the lease record for
//!   `leaseDurationSeconds` of its *own* clock (so clock skew between
//!   replicas does not matter), bumping `leaseTransitions`;
//! - writes are compare-and-swap on `resourceVersion`, so two candidates
//!   never both win;
//! - a leader that cannot renew within `renew_deadline` stops its work.
//!
//! [`LeaderElector::run`] runs a future only while leading.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::client::{Api, Error, PostParams, Result};

/// Reads and writes one Lease; [`LeaseApi`] over the kernel, fakes in tests.
#[async_trait]
pub trait LeaseStore: Send + Sync + 'static {
    /// The lease, `None` if it does not exist.
    async fn get(&self) -> Result<Option<Lease>>;
    /// Creates the lease; [`Error::AlreadyExists`] if someone was faster.
    async fn create(&self, lease: &Lease) -> Result<Lease>;
    /// Replaces the lease if its `metadata.resourceVersion` still matches,
    /// else [`Error::Conflict`].
    async fn replace(&self, lease: &Lease) -> Result<Lease>;
}

/// A Lease in the kernel.
pub struct LeaseApi {
    api: Api<Lease>,
    name: String,
}

impl LeaseApi {
    /// The lease `name` in `namespace`.
    pub fn new(client: crate::KernelClient, namespace: &str, name: impl Into<String>) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.into(),
        }
    }
}

#[async_trait]
impl LeaseStore for LeaseApi {
    async fn get(&self) -> Result<Option<Lease>> {
        self.api.get_opt(&self.name).await
    }

    async fn create(&self, lease: &Lease) -> Result<Lease> {
        let mut lease = lease.clone();
        lease.metadata.name = Some(self.name.clone());
        self.api.create(&PostParams::default(), &lease).await
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease> {
        self.api
            .replace(&self.name, &PostParams::default(), lease)
            .await
    }
}

/// Timing of an election.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// This replica's identity (unique per replica, e.g. `hostname-pid`).
    pub identity: String,
    /// How long a lease holds without renewal (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How long a leader keeps acting without a successful renewal.
    pub renew_deadline: Duration,
    /// How often to renew, and to retry acquiring.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(identity: impl Into<String>) -> Self {
        Self {
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The last lease record seen and when (by the local clock) it changed.
struct Observed {
    record: Option<(Option<String>, Option<MicroTime>)>,
    at: Instant,
}

/// Campaigns for one Lease; see the module docs.
pub struct LeaderElector<S> {
    store: S,
    config: LeaderConfig,
    observed: Mutex<Observed>,
    leading: watch::Sender<bool>,
}

fn now() -> MicroTime {
    // k8s-openapi's jiff is built without `std`, so no `Timestamp::now()`.
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    // Lease times are MicroTime: keep microseconds.
    let nanos = i32::try_from(since_epoch.subsec_micros() * 1000).unwrap_or(0);
    MicroTime(Timestamp::new(seconds, nanos).unwrap_or(Timestamp::UNIX_EPOCH))
}

impl<S: LeaseStore> LeaderElector<S> {
    /// An elector for the lease in `store`.
    pub fn new(store: S, config: LeaderConfig) -> Self {
        Self {
            store,
            config,
            observed: Mutex::new(Observed {
                record: None,
                at: Instant::now(),
            }),
            leading: watch::channel(false).0,
        }
    }

    /// Whether this replica leads now; watch it to react to changes.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// Records the lease record and returns when it was first seen unchanged.
    fn observe(&self, spec: &LeaseSpec) -> Instant {
        let mut observed = self.observed.lock().unwrap_or_else(|e| e.into_inner());
        let record = Some((spec.holder_identity.clone(), spec.renew_time.clone()));
        if observed.record != record {
            observed.record = record;
            observed.at = Instant::now();
        }
        observed.at
    }

    /// One attempt to take or keep the lease; `Ok(true)` if this replica holds it now.
    pub async fn try_acquire_or_renew(&self) -> Result<bool> {
        let me = self.config.identity.clone();
        let Some(current) = self.store.get().await? else {
            let lease = Lease {
                metadata: ObjectMeta::default(),
                spec: Some(LeaseSpec {
                    holder_identity: Some(me),
                    lease_duration_seconds: Some(self.lease_seconds()),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.store.create(&lease).await {
                Ok(created) => {
                    self.observe(&created.spec.unwrap_or_default());
                    Ok(true)
                }
                Err(Error::AlreadyExists(_) | Error::Conflict(_)) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = current.spec.clone().unwrap_or_default();
        let seen_at = self.observe(&spec);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        let mine = holder.as_deref() == Some(me.as_str());
        if holder.is_some() && !mine && seen_at + duration > Instant::now() {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        let mut next = current.clone();
        next.spec = Some(LeaseSpec {
            holder_identity: Some(me),
            lease_duration_seconds: Some(self.lease_seconds()),
            acquire_time: if mine {
                spec.acquire_time.clone()
            } else {
                Some(now())
            },
            renew_time: Some(now()),
            lease_transitions: Some(if mine { transitions } else { transitions + 1 }),
            ..spec
        });
        match self.store.replace(&next).await {
            Ok(written) => {
                self.observe(&written.spec.unwrap_or_default());
                Ok(true)
            }
            Err(Error::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the lease up if this replica holds it, so another can take it at
    /// once instead of waiting for it to expire.
    pub async fn release(&self) -> Result<()> {
        self.leading.send_replace(false);
        let Some(current) = self.store.get().await? else {
            return Ok(());
        };
        let spec = current.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let mut next = current;
        next.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            renew_time: Some(now()),
            ..spec
        });
        match self.store.replace(&next).await {
            Ok(_) | Err(Error::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    tracing::info!(identity = %self.config.identity, "became leader");
                    self.leading.send_replace(true);
                    return;
                }
                Ok(false) => tracing::debug!("lease held by another replica"),
                Err(e) => tracing::warn!(error = %e, "cannot read or write the lease"),
            }
            tokio::time::sleep(self.jittered(self.config.retry_period)).await;
        }
    }

    /// Adds up to 20% so replicas do not retry in lockstep.
    fn jittered(&self, period: Duration) -> Duration {
        period.mul_f64(1.0 + rand::random::<f64>() * 0.2)
    }

    /// Renews every `retry_period` and returns when leadership is lost: the
    /// lease was taken, or no renewal succeeded within `renew_deadline`.
    pub async fn hold(&self) {
        let mut last_renew = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            let budget = self
                .config
                .renew_deadline
                .saturating_sub(last_renew.elapsed());
            match tokio::time::timeout(budget, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => last_renew = Instant::now(),
                Ok(Ok(false)) => {
                    tracing::warn!(identity = %self.config.identity, "lease taken by another replica");
                    break;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "lease renewal failed"),
                Err(_) => tracing::warn!("lease renewal timed out"),
            }
            if last_renew.elapsed() >= self.config.renew_deadline {
                tracing::warn!(identity = %self.config.identity, "lease not renewed within the deadline");
                break;
            }
        }
        self.leading.send_replace(false);
    }

    /// Runs `work()` only while leading, until `shutdown` completes.
    ///
    /// When leadership is lost the running `work` future is dropped (stopped
    /// at its next await point) and the elector campaigns again, starting a
    /// fresh `work()` when it wins. When `work` finishes or `shutdown`
    /// completes, the lease is released and `run` returns.
    pub async fn run<F, Fut>(&self, mut work: F, shutdown: impl Future<Output = ()>) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = self.acquire() => {}
            }
            let stopped = tokio::select! {
                () = work() => true,
                () = &mut shutdown => true,
                () = self.hold() => false,
            };
            if stopped {
                return self.release().await;
            }
            tracing::info!(identity = %self.config.identity, "stopped work after losing the lease");
        }
    }
}

#[cfg(test)]
mod tests;
