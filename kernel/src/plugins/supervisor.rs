//! The plugin supervisor: runs every enabled plugin of the config as a child
//! process, watches it (exit, health), restarts it with exponential back-off,
//! reports it on its `Plugin` object, and stops all of them gracefully.
//!
//! Each plugin runs in its own process group with `kill_on_drop`, so the
//! kernel stopping (normally or by panic unwinding) ends the whole group.
//! A `kill -9` of the kernel itself cannot be caught; `PR_SET_PDEATHSIG`
//! would need `unsafe` in `pre_exec`, which the workspace forbids, so
//! plugins orphaned that way notice through their failing heartbeats.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::health::PluginClient;
use super::spawn::{self, SpawnEnv, SpawnError};
use super::status::{StatusWriter, now, phase};
use crate::auth::tokens::TokenAuthenticator;
use crate::config::PluginConfig;
use crate::service::Service;

/// Timing of the supervisor.
#[derive(Clone, Debug)]
pub struct SupervisorTiming {
    /// How long a plugin has to print its handshake line.
    pub handshake_timeout: Duration,
    /// Time between health checks.
    pub health_interval: Duration,
    /// Consecutive failed health checks after which the plugin is restarted.
    pub unhealthy_after: u32,
    /// First restart delay; doubles on each quick failure.
    pub initial_backoff: Duration,
    /// Largest restart delay.
    pub max_backoff: Duration,
    /// A plugin that ran this long before failing starts over at `initial_backoff`.
    pub reset_after: Duration,
    /// Quick failures in a row after which the phase is `CrashLoopBackOff`.
    pub crash_loop_after: u32,
    /// Time between the Shutdown RPC / SIGTERM and SIGKILL.
    pub grace_period: Duration,
}

impl Default for SupervisorTiming {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            health_interval: Duration::from_secs(2),
            unhealthy_after: 3,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            reset_after: Duration::from_secs(60),
            crash_loop_after: 2,
            grace_period: Duration::from_secs(5),
        }
    }
}

/// What the supervisor last saw of a plugin, for progress output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginReport {
    /// The phase (see [`phase`]).
    pub phase: String,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// Restarts so far.
    pub restarts: u32,
}

/// Running plugins; stop them with [`Supervisor::shutdown`].
pub struct Supervisor {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    reports: watch::Receiver<BTreeMap<String, PluginReport>>,
}

/// What every plugin task shares.
struct Shared {
    service: Arc<Service>,
    tokens: Arc<TokenAuthenticator>,
    env: SpawnEnv,
    timing: SupervisorTiming,
    reports: watch::Sender<BTreeMap<String, PluginReport>>,
}

impl Supervisor {
    /// Starts every enabled plugin of `plugins`.
    pub fn start(
        service: Arc<Service>,
        tokens: Arc<TokenAuthenticator>,
        env: SpawnEnv,
        timing: SupervisorTiming,
        plugins: &[PluginConfig],
    ) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let initial: BTreeMap<_, _> = plugins
            .iter()
            .filter(|p| p.enabled)
            .map(|p| {
                let report = PluginReport {
                    phase: phase::STARTING.into(),
                    ..Default::default()
                };
                (p.name.clone(), report)
            })
            .collect();
        let (reports_tx, reports) = watch::channel(initial);
        let shared = Arc::new(Shared {
            service,
            tokens,
            env,
            timing,
            reports: reports_tx,
        });
        let mut tasks = JoinSet::new();
        for plugin in plugins {
            if !plugin.enabled {
                tracing::info!(plugin = %plugin.name, "plugin disabled in the config");
                continue;
            }
            tasks.spawn(supervise(shared.clone(), plugin.clone(), stop_rx.clone()));
        }
        Self {
            stop,
            tasks,
            reports,
        }
    }

    /// Follows the plugins' phases.
    pub fn reports(&self) -> watch::Receiver<BTreeMap<String, PluginReport>> {
        self.reports.clone()
    }

    /// Stops every plugin (Shutdown RPC, SIGTERM, SIGKILL after the grace
    /// period) and waits until all are gone.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Why one run of a plugin ended.
enum RunEnd {
    /// The supervisor stopped it.
    Stopped,
    /// It failed; restart after back-off. `refused` marks a plugin that is
    /// wrong itself (handshake, protocol, binary) rather than crashed.
    Failed { error: String, refused: bool },
}

/// Runs one plugin until the supervisor stops, restarting it as needed.
async fn supervise(shared: Arc<Shared>, plugin: PluginConfig, mut stop: watch::Receiver<bool>) {
    let writer = StatusWriter::new(shared.service.clone(), &plugin.name);
    if let Err(e) = writer.ensure().await {
        tracing::warn!(plugin = %plugin.name, error = %e, "cannot create the Plugin object");
    }
    let timing = &shared.timing;
    let mut restarts: u32 = 0;
    let mut backoff = timing.initial_backoff;
    let mut quick_failures: u32 = 0;
    loop {
        let started = Instant::now();
        let end = run_once(&shared, &plugin, &writer, restarts, &mut stop).await;
        let (error, refused) = match end {
            RunEnd::Stopped => break,
            RunEnd::Failed { error, refused } => (error, refused),
        };
        if started.elapsed() >= timing.reset_after {
            backoff = timing.initial_backoff;
            quick_failures = 0;
        }
        quick_failures += 1;
        let phase = if refused {
            phase::FAILED
        } else if quick_failures >= timing.crash_loop_after {
            phase::CRASH_LOOP_BACK_OFF
        } else {
            phase::STARTING
        };
        tracing::warn!(plugin = %plugin.name, %error, restart_in = ?backoff, phase, "plugin failed");
        report(
            &shared,
            &writer,
            &plugin.name,
            phase,
            Some(&error),
            restarts,
            None,
        )
        .await;
        let delay = backoff;
        backoff = (backoff * 2).min(timing.max_backoff);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut stop) => break,
        }
        restarts += 1;
    }
    shared.tokens.revoke_plugin_token(&plugin.name);
    report(
        &shared,
        &writer,
        &plugin.name,
        phase::STOPPED,
        None,
        restarts,
        None,
    )
    .await;
}

/// Records `phase` on the Plugin object and in the progress reports.
/// `last_error: None` keeps the previous error on the object.
async fn report(
    shared: &Shared,
    writer: &StatusWriter,
    name: &str,
    phase: &str,
    last_error: Option<&str>,
    restarts: u32,
    pid: Option<u32>,
) {
    let mut status = json!({ "phase": phase, "restarts": restarts, "pid": pid });
    if let Some(error) = last_error {
        status["lastError"] = json!(error);
    }
    if phase == phase::RUNNING {
        status["lastHeartbeatTime"] = json!(now());
    }
    if let Err(e) = writer.patch(status).await {
        tracing::warn!(plugin = %name, error = %e, "cannot update the Plugin status");
    }
    shared.reports.send_modify(|reports| {
        let entry = reports.entry(name.to_owned()).or_default();
        entry.phase = phase.to_owned();
        entry.restarts = restarts;
        if let Some(error) = last_error {
            entry.last_error = Some(error.to_owned());
        }
    });
}

/// Starts the plugin once and watches it until it fails or must stop.
async fn run_once(
    shared: &Shared,
    plugin: &PluginConfig,
    writer: &StatusWriter,
    restarts: u32,
    stop: &mut watch::Receiver<bool>,
) -> RunEnd {
    let timing = &shared.timing;
    let name = &plugin.name;
    let failed = |e: SpawnError| RunEnd::Failed {
        refused: e.is_refusal(),
        error: e.to_string(),
    };
    let token = shared.tokens.issue_plugin_token(name);
    let mut started = match spawn::start(plugin, &shared.env, &token) {
        Ok(started) => started,
        Err(e) => return failed(e),
    };
    let pid = started.pid;
    report(
        shared,
        writer,
        name,
        phase::STARTING,
        None,
        restarts,
        Some(pid),
    )
    .await;
    let Some(stdout) = started.child.stdout.take() else {
        return RunEnd::Failed {
            error: "the plugin's stdout is not captured".into(),
            refused: false,
        };
    };
    let log_path = shared.env.log_dir.join(format!("{name}.log"));
    let handshake = tokio::select! {
        h = spawn::read_handshake(stdout, timing.handshake_timeout, log_path) => h,
        _ = stopped(stop) => {
            terminate(&mut started.child, pid, None, timing.grace_period).await;
            return RunEnd::Stopped;
        }
    };
    let endpoint = match handshake {
        Ok(endpoint) => endpoint,
        Err(e) => {
            // A closed stdout usually means the process exited: say how.
            let error = match e {
                SpawnError::Closed => {
                    match tokio::time::timeout(Duration::from_secs(1), started.child.wait()).await {
                        Ok(Ok(status)) => format!("exited before its handshake: {status}"),
                        _ => e.to_string(),
                    }
                }
                _ => e.to_string(),
            };
            let refused = e.is_refusal();
            terminate(&mut started.child, pid, None, Duration::ZERO).await;
            return RunEnd::Failed { error, refused };
        }
    };
    tracing::info!(plugin = %name, pid, %endpoint, "plugin handshake");
    let client = match PluginClient::new(
        &endpoint,
        timing.health_interval.max(Duration::from_secs(1)),
    ) {
        Ok(client) => client,
        Err(e) => {
            terminate(&mut started.child, pid, None, Duration::ZERO).await;
            return RunEnd::Failed {
                error: format!("cannot connect to {endpoint}: {e}"),
                refused: true,
            };
        }
    };
    let mut ticker = tokio::time::interval(timing.health_interval);
    let mut running = false;
    let mut failures = 0;
    loop {
        tokio::select! {
            exit = started.child.wait() => {
                let error = match exit {
                    Ok(status) => format!("exited: {status}"),
                    Err(e) => format!("waiting for the process failed: {e}"),
                };
                return RunEnd::Failed { error, refused: false };
            }
            _ = stopped(stop) => {
                terminate(&mut started.child, pid, Some(&client), timing.grace_period).await;
                return RunEnd::Stopped;
            }
            _ = ticker.tick() => {
                match client.health().await {
                    Ok(None) => {
                        failures = 0;
                        if !running {
                            running = true;
                            report(shared, writer, name, phase::RUNNING, None, restarts, Some(pid)).await;
                        }
                    }
                    Ok(Some(not_serving)) => {
                        failures = 0;
                        if running {
                            running = false;
                            report(shared, writer, name, phase::STARTING, Some(&not_serving), restarts, Some(pid)).await;
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        let error = format!("health check failed: {}", e.message());
                        if failures >= timing.unhealthy_after {
                            report(shared, writer, name, phase::UNREACHABLE, Some(&error), restarts, Some(pid)).await;
                            terminate(&mut started.child, pid, None, timing.grace_period).await;
                            return RunEnd::Failed { error, refused: false };
                        }
                    }
                }
            }
        }
    }
}

/// Stops a plugin: the Shutdown RPC (when it has a client), SIGTERM to its
/// process group, SIGKILL after `grace`, and waits for it.
async fn terminate(
    child: &mut tokio::process::Child,
    pid: u32,
    client: Option<&PluginClient>,
    grace: Duration,
) {
    let group = i32::try_from(pid).ok().and_then(Pid::from_raw);
    if !grace.is_zero() {
        if let Some(client) = client {
            let _ = tokio::time::timeout(Duration::from_secs(1), client.shutdown(grace)).await;
        }
        if let Some(group) = group {
            let _ = kill_process_group(group, Signal::TERM);
        }
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            kill_group(group);
            return;
        }
        tracing::warn!(
            pid,
            "plugin did not stop within its grace period; killing it"
        );
    }
    kill_group(group);
    let _ = child.kill().await;
}

/// Completes once the supervisor is stopping.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it here.
    let _ = stop.wait_for(|s| *s).await.is_ok();
}

/// SIGKILLs what is left of the plugin's process group (its children).
fn kill_group(group: Option<Pid>) {
    if let Some(group) = group {
        let _ = kill_process_group(group, Signal::KILL);
    }
}
