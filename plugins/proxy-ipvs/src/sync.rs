//! The sync loop: changes only bump a generation counter; the loop waits
//! for one, lets more arrive for a short interval (coalescing a burst into
//! one sync), takes a snapshot of the world and hands it to the datapath if
//! it differs from what was synced last.

use std::time::Duration;

use tokio::sync::watch;

use crate::datapath::Datapath;
use crate::model::ProxyState;

/// How the loop paces itself.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    /// How long changes are collected before a sync.
    pub coalesce: Duration,
    /// How long to wait before retrying a failed sync.
    pub retry: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            coalesce: Duration::from_millis(100),
            retry: Duration::from_secs(1),
        }
    }
}

/// What happened in one sync, for the caller's health report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The datapath now holds `services` service ports.
    Synced {
        /// How many service ports are programmed.
        services: usize,
    },
    /// The datapath refused; retried after [`Pacing::retry`].
    Failed(String),
}

/// Runs until `changes` is closed. `snapshot` builds the current state;
/// `report` hears each sync's outcome.
pub async fn run<D: Datapath>(
    mut changes: watch::Receiver<u64>,
    snapshot: impl Fn() -> ProxyState,
    mut datapath: D,
    pacing: Pacing,
    report: impl Fn(&Outcome),
) {
    let mut synced: Option<ProxyState> = None;
    let mut retrying = false;
    loop {
        if !retrying && changes.changed().await.is_err() {
            return;
        }
        let wait = if retrying {
            pacing.retry
        } else {
            pacing.coalesce
        };
        tokio::time::sleep(wait).await;
        // Everything that changed until now is in this snapshot.
        changes.borrow_and_update();
        let state = snapshot();
        if synced.as_ref() == Some(&state) {
            retrying = false;
            continue;
        }
        match datapath.sync(&state).await {
            Ok(()) => {
                report(&Outcome::Synced {
                    services: state.len(),
                });
                synced = Some(state);
                retrying = false;
            }
            Err(e) => {
                tracing::warn!(error = %e, datapath = datapath.name(), "sync failed; retrying");
                report(&Outcome::Failed(e.to_string()));
                synced = None;
                retrying = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::datapath::NftDatapath;
    use crate::datapath::fake::{FakeDatapath, RecordingRunner};
    use crate::model::{Protocol, ServicePortName, ServicePortState};
    use crate::nft::RenderOptions;

    fn state_with(ports: u16) -> ProxyState {
        (0..ports)
            .map(|i| {
                (
                    ServicePortName {
                        namespace: "default".into(),
                        name: format!("s{i}"),
                        port: String::new(),
                        protocol: Protocol::Tcp,
                    },
                    ServicePortState {
                        cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
                        port: 80 + i,
                        node_port: None,
                        affinity_seconds: None,
                        external_local: false,
                        backends: Default::default(),
                    },
                )
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_changes_is_one_sync_and_an_unchanged_world_none() {
        let world = Arc::new(Mutex::new(0u16));
        let (tx, rx) = watch::channel(0u64);
        let datapath = FakeDatapath::default();
        let synced = datapath.synced.clone();
        let snapshot_world = world.clone();
        let task = tokio::spawn(run(
            rx,
            move || state_with(snapshot_world.lock().map(|w| *w).unwrap_or(0)),
            datapath,
            Pacing::default(),
            |_| {},
        ));
        for i in 1..=10u16 {
            *world.lock().expect("world") = i;
            tx.send_modify(|g| *g += 1);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        {
            let synced = synced.lock().expect("synced");
            assert_eq!(synced.len(), 1, "one sync for the burst");
            assert_eq!(synced[0].len(), 10, "with the final state");
        }
        // A change event that changes nothing syncs nothing.
        tx.send_modify(|g| *g += 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(synced.lock().expect("synced").len(), 1);
        *world.lock().expect("world") = 3;
        tx.send_modify(|g| *g += 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(synced.lock().expect("synced").len(), 2);
        drop(tx);
        task.await.expect("loop ends when changes close");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_sync_is_retried_without_a_new_change() {
        let runner = RecordingRunner::default();
        runner.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let scripts = runner.scripts.clone();
        let fail = runner.fail.clone();
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let seen = outcomes.clone();
        let (tx, rx) = watch::channel(0u64);
        let task = tokio::spawn(run(
            rx,
            || state_with(1),
            NftDatapath::new(runner, RenderOptions::default()),
            Pacing::default(),
            move |o| seen.lock().expect("outcomes").push(o.clone()),
        ));
        tx.send_modify(|g| *g += 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(scripts.lock().expect("scripts").is_empty());
        fail.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(
            scripts.lock().expect("scripts").len(),
            1,
            "retried and applied"
        );
        let outcomes = outcomes.lock().expect("outcomes").clone();
        assert!(matches!(outcomes.first(), Some(Outcome::Failed(_))));
        assert_eq!(outcomes.last(), Some(&Outcome::Synced { services: 1 }));
        drop(tx);
        task.await.expect("loop ends");
    }
}
