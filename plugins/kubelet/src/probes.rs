//! Liveness, readiness and startup probes: when they are due, how their
//! results count toward thresholds, and how each handler (exec, httpGet,
//! tcpSocket) is run from the kubelet.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ContainerPort, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kerno_proto::runtime::v1 as rt;

use crate::drivers::RuntimeClient;

/// Which probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// Restarts the container when it fails.
    Liveness,
    /// Gates the container's (and pod's) readiness.
    Readiness,
    /// Holds back the other probes until it succeeds; failing restarts.
    Startup,
}

impl ProbeKind {
    /// The name used in events ("Liveness probe failed: ...").
    pub fn label(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

/// One probe's schedule and counters, as Kubernetes' prober worker keeps them.
#[derive(Clone, Debug)]
pub struct ProbeState {
    /// Which probe.
    pub kind: ProbeKind,
    period: Duration,
    /// Per-attempt timeout.
    pub timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    successes: u32,
    failures: u32,
    result: bool,
    next_at: Instant,
}

impl ProbeState {
    /// A probe for a container that started at `started`.
    pub fn new(kind: ProbeKind, probe: &Probe, started: Instant) -> Self {
        let secs =
            |v: Option<i32>, default: i32| Duration::from_secs(v.unwrap_or(default).max(0) as u64);
        Self {
            kind,
            period: secs(probe.period_seconds, 10).max(Duration::from_secs(1)),
            timeout: secs(probe.timeout_seconds, 1).max(Duration::from_secs(1)),
            // Liveness and startup must use 1 (API validation); honour it anyway.
            success_threshold: probe.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: probe.failure_threshold.unwrap_or(3).max(1) as u32,
            successes: 0,
            failures: 0,
            // Liveness is presumed fine until proven otherwise; readiness and
            // startup start out failed.
            result: kind == ProbeKind::Liveness,
            next_at: started + secs(probe.initial_delay_seconds, 0),
        }
    }

    /// Whether an attempt is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_at
    }

    /// When the next attempt is due.
    pub fn next_at(&self) -> Instant {
        self.next_at
    }

    /// The current result (true: passing).
    pub fn passing(&self) -> bool {
        self.result
    }

    /// Counts one attempt's outcome; returns the new result when it flips
    /// (after `successThreshold` successes or `failureThreshold` failures in a row).
    pub fn record(&mut self, ok: bool, now: Instant) -> Option<bool> {
        self.next_at = now + self.period;
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.result && self.successes >= self.success_threshold {
                self.result = true;
                return Some(true);
            }
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.result_can_fail() && self.failures >= self.failure_threshold {
                self.result = false;
                // Start counting afresh: a restarted container gets new chances.
                self.failures = 0;
                return Some(false);
            }
        }
        None
    }

    fn result_can_fail(&self) -> bool {
        // A startup probe that has not succeeded yet still reports its failure
        // (the container is killed); readiness flips only when it was passing.
        self.result || self.kind != ProbeKind::Readiness
    }
}

/// What the handler needs to reach the container.
pub struct ProbeTarget<'a> {
    /// The runtime, for exec probes.
    pub runtime: RuntimeClient,
    /// The container (runtime id).
    pub container_id: &'a str,
    /// The pod's IP (default host of HTTP and TCP probes).
    pub pod_ip: &'a str,
    /// The container's ports, for named ports.
    pub ports: &'a [ContainerPort],
}

/// Runs one probe attempt; `Err` carries the failure message for the event.
pub async fn run_probe(
    probe: &Probe,
    target: ProbeTarget<'_>,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &probe.exec {
        let mut runtime = target.runtime;
        let reply = runtime
            .exec_sync(rt::ExecSyncRequest {
                container_id: target.container_id.to_owned(),
                cmd: exec.command.clone().unwrap_or_default(),
                timeout_seconds: timeout.as_secs() as i64,
            })
            .await
            .map_err(|s| s.message().to_owned())?
            .into_inner();
        if reply.exit_code == 0 {
            return Ok(());
        }
        let out = String::from_utf8_lossy(&reply.stdout).trim().to_owned();
        return Err(format!("command exited with {}: {out}", reply.exit_code));
    }
    if let Some(get) = &probe.http_get {
        let port = resolve_port(&get.port, target.ports)?;
        let host = get.host.clone().unwrap_or_else(|| target.pod_ip.to_owned());
        if get.scheme.as_deref() == Some("HTTPS") {
            return Err("https probes are not supported by this kubelet".to_owned());
        }
        let path = get.path.clone().unwrap_or_else(|| "/".to_owned());
        let headers: Vec<(String, String)> = get
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return tokio::time::timeout(timeout, http_get(&host, port, &path, &headers))
            .await
            .map_err(|_| {
                format!("Get \"http://{host}:{port}{path}\": context deadline exceeded")
            })?;
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = resolve_port(&tcp.port, target.ports)?;
        let host = tcp.host.clone().unwrap_or_else(|| target.pod_ip.to_owned());
        return match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: {e}")),
            Err(_) => Err(format!("dial tcp {host}:{port}: i/o timeout")),
        };
    }
    Err("probe has no supported handler (exec, httpGet, tcpSocket)".to_owned())
}

/// A port number, or a named container port.
pub fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("couldn't find port {name}")),
    }
}

/// One HTTP/1.1 GET; 200..399 is success.
async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let url = format!("http://{host}:{port}{path}");
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("Get \"{url}\": {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
    let conn = tokio::spawn(conn);
    let mut request = hyper::Request::get(path)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::USER_AGENT, "kube-probe/1.33");
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let request = request
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| format!("Get \"{url}\": {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("Get \"{url}\": {e}"));
    conn.abort();
    let status = response?.status();
    if (200..400).contains(&status.as_u16()) {
        Ok(())
    } else {
        Err(format!(
            "HTTP probe failed with statuscode: {}",
            status.as_u16()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(json: serde_json::Value) -> Probe {
        serde_json::from_value(json).unwrap_or_default()
    }

    #[test]
    fn liveness_fails_only_after_the_failure_threshold_in_a_row() {
        let t0 = Instant::now();
        let p = probe(
            serde_json::json!({"initialDelaySeconds": 5, "periodSeconds": 2, "failureThreshold": 3}),
        );
        let mut s = ProbeState::new(ProbeKind::Liveness, &p, t0);
        assert!(s.passing());
        assert!(!s.due(t0));
        assert!(s.due(t0 + Duration::from_secs(5)));
        assert_eq!(s.record(false, t0), None);
        assert_eq!(s.record(false, t0), None);
        // A success in between resets the count.
        assert_eq!(s.record(true, t0), None);
        assert_eq!(s.record(false, t0), None);
        assert_eq!(s.record(false, t0), None);
        assert_eq!(s.record(false, t0), Some(false));
        assert_eq!(s.next_at(), t0 + Duration::from_secs(2));
    }

    #[test]
    fn readiness_needs_the_success_threshold_and_flips_back() {
        let t0 = Instant::now();
        let p = probe(serde_json::json!({"successThreshold": 2, "failureThreshold": 1}));
        let mut s = ProbeState::new(ProbeKind::Readiness, &p, t0);
        assert!(!s.passing());
        // Failing while not ready changes nothing.
        assert_eq!(s.record(false, t0), None);
        assert_eq!(s.record(true, t0), None);
        assert_eq!(s.record(true, t0), Some(true));
        assert_eq!(s.record(true, t0), None);
        assert_eq!(s.record(false, t0), Some(false));
    }

    #[test]
    fn startup_failure_is_reported_before_first_success() {
        let t0 = Instant::now();
        let p = probe(serde_json::json!({"failureThreshold": 2}));
        let mut s = ProbeState::new(ProbeKind::Startup, &p, t0);
        assert_eq!(s.record(false, t0), None);
        assert_eq!(s.record(false, t0), Some(false));
        let mut s = ProbeState::new(ProbeKind::Startup, &p, t0);
        assert_eq!(s.record(true, t0), Some(true));
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        let ports = vec![ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            ..ContainerPort::default()
        }];
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &ports),
            Ok(8080)
        );
        assert_eq!(resolve_port(&IntOrString::Int(81), &ports), Ok(81));
        assert!(resolve_port(&IntOrString::String("x".into()), &ports).is_err());
    }

    #[tokio::test]
    async fn tcp_and_http_handlers_reach_a_local_server() -> anyhow::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut s, _)) = listener.accept().await {
                n += 1;
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let status = if n == 1 { "200 OK" } else { "500 Oops" };
                let _ = s
                    .write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        assert_eq!(http_get("127.0.0.1", port, "/healthz", &[]).await, Ok(()));
        let err = http_get("127.0.0.1", port, "/healthz", &[]).await;
        assert_eq!(
            err,
            Err("HTTP probe failed with statuscode: 500".to_owned())
        );
        Ok(())
    }
}
