//! What the kubelet knows about one container of a pod across its restarts.

use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::backoff::Backoff;
use crate::probes::ProbeState;

/// How a container instance ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    /// Runtime id of that instance.
    pub container_id: String,
    /// Its exit code.
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled`, ...
    pub reason: String,
    /// Details, if any.
    pub message: String,
    /// When it started.
    pub started_at: Option<Time>,
    /// When it ended.
    pub finished_at: Option<Time>,
}

/// A container's current state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerPhase {
    /// Not running: why, and details.
    Waiting {
        /// e.g. `ContainerCreating`, `CrashLoopBackOff`, `ErrImageNeverPull`.
        reason: String,
        /// Details for the user.
        message: String,
    },
    /// Running since.
    Running {
        /// Start time.
        started_at: Option<Time>,
    },
    /// Exited.
    Terminated(Terminated),
}

/// One container (by name) of a pod.
#[derive(Debug)]
pub struct ContainerRecord {
    /// The container's name.
    pub name: String,
    /// The image asked for.
    pub image: String,
    /// The image's id, once known.
    pub image_id: String,
    /// The current instance's runtime id.
    pub container_id: Option<String>,
    /// The instance before it (kept for `logs --previous`).
    pub previous_id: Option<String>,
    /// Current state.
    pub phase: ContainerPhase,
    /// How the previous instance ended.
    pub last_terminated: Option<Terminated>,
    /// Restarts so far (the runtime attempt number of the current instance).
    pub restart_count: i32,
    /// Passing readiness (and running, started).
    pub ready: bool,
    /// Startup probe passed (or none) while running.
    pub started: bool,
    /// Restart back-off.
    pub backoff: Backoff,
    /// The back-off delay in force since the last restart (None: never restarted).
    pub delay: Option<Duration>,
    /// When the current instance exited (for the back-off window).
    pub exited_at: Option<Instant>,
    /// When the current instance started.
    pub started_instant: Option<Instant>,
    /// Probes of the running instance.
    pub probes: Vec<ProbeState>,
    /// The last waiting reason+message reported as an event (to avoid repeats).
    pub reported: Option<String>,
}

impl ContainerRecord {
    /// A container not yet created.
    pub fn new(name: &str, image: &str, backoff: Backoff) -> Self {
        Self {
            name: name.to_owned(),
            image: image.to_owned(),
            image_id: String::new(),
            container_id: None,
            previous_id: None,
            phase: ContainerPhase::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
            },
            last_terminated: None,
            restart_count: 0,
            ready: false,
            started: false,
            backoff,
            delay: None,
            exited_at: None,
            started_instant: None,
            probes: Vec::new(),
            reported: None,
        }
    }

    /// Whether the current instance exited, and how.
    pub fn terminated(&self) -> Option<&Terminated> {
        match &self.phase {
            ContainerPhase::Terminated(t) => Some(t),
            _ => None,
        }
    }

    /// Whether the current instance runs.
    pub fn running(&self) -> bool {
        matches!(self.phase, ContainerPhase::Running { .. })
    }

    /// Sets a waiting state; returns true when it differs from the last one
    /// reported (so the caller emits an event once per change).
    pub fn wait(&mut self, reason: &str, message: String) -> bool {
        let key = format!("{reason}: {message}");
        self.phase = ContainerPhase::Waiting {
            reason: reason.to_owned(),
            message,
        };
        self.ready = false;
        self.started = false;
        if self.reported.as_deref() == Some(key.as_str()) {
            return false;
        }
        self.reported = Some(key);
        true
    }
}

/// Whether an exited container runs again under `restart_policy`.
pub fn should_restart(restart_policy: &str, exit_code: i32) -> bool {
    match restart_policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}
