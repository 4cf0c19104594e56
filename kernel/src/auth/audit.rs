//! The audit log (`--audit-log FILE`, `kernel.auditLog`): one JSON line per
//! request, in the shape of Kubernetes' `audit.k8s.io/v1` `Event` at level
//! `Metadata`: who (user, groups, source IP, user agent), what (verb,
//! resource, subresource, namespace, name, request URI), the authorization
//! decision and the response code. Request and response bodies are never
//! read, so no Secret's data can reach the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::gate::Decision;
use super::rbac::review::request_attributes;
use super::user::UserInfo;

/// Why the audit log could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {path}: {source}")]
pub struct Error {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// An open audit log; lines are written by a thread of their own so a slow
/// disk never blocks a request.
#[derive(Debug, Clone)]
pub struct AuditLog {
    lines: std::sync::mpsc::Sender<String>,
}

impl AuditLog {
    /// Opens `path` for appending (creating it, mode 0600) and starts its writer.
    pub fn open(path: &Path) -> Result<Self, Error> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| Error {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| Error {
                path: path.to_path_buf(),
                source,
            })?;
        let (lines, rx) = std::sync::mpsc::channel::<String>();
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || {
                let mut out = std::io::LineWriter::new(file);
                for line in rx {
                    if let Err(e) = writeln!(out, "{line}") {
                        tracing::warn!(error = %e, file = %shown, "writing the audit log");
                    }
                }
            })
            .map_err(|source| Error {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self { lines })
    }

    /// Appends one event.
    pub fn record(&self, event: &Value) {
        // The writer thread lives as long as the process; a send can only
        // fail once it has stopped on shutdown.
        let _ = self.lines.send(event.to_string());
    }
}

/// What the audit log notes about a request before it is served.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    received: chrono::DateTime<chrono::Utc>,
    uri: String,
    verb: String,
    object_ref: Option<Value>,
    user: Option<UserInfo>,
    decision: Option<Decision>,
    source_ip: String,
    user_agent: String,
}

impl RequestRecord {
    /// Notes `req` once authentication and authorization have run (their
    /// results are in its extensions), from `peer`.
    pub fn new<B>(
        req: &http::Request<B>,
        peer: std::net::SocketAddr,
        received: chrono::DateTime<chrono::Utc>,
        grpc: bool,
    ) -> Self {
        let path = req.uri().path().to_owned();
        let query = req.uri().query().unwrap_or_default().to_owned();
        let (verb, object_ref) = if grpc {
            // `/kerno.kernel.v1.Kernel/Create`: the method is the verb; the
            // addressed object is in the (unread) message.
            let method = path.rsplit('/').next().unwrap_or_default().to_lowercase();
            (method, None)
        } else {
            let parsed = crate::api::rest::path::parse(&path);
            let attrs = request_attributes(req.method(), &path, parsed.as_ref(), &query);
            let object_ref = parsed.as_ref().map(|p| {
                let mut r = json!({ "resource": p.resource, "apiVersion": p.version });
                if !p.group.is_empty() {
                    r["apiGroup"] = json!(p.group);
                }
                if !attrs.namespace.is_empty() {
                    r["namespace"] = json!(attrs.namespace);
                }
                if !attrs.name.is_empty() {
                    r["name"] = json!(attrs.name);
                }
                if !attrs.subresource.is_empty() {
                    r["subresource"] = json!(attrs.subresource);
                }
                r
            });
            (attrs.verb, object_ref)
        };
        Self {
            received,
            // Path and query, as Kubernetes records (HTTP/2 requests carry
            // the scheme and authority too).
            uri: req
                .uri()
                .path_and_query()
                .map(|pq| pq.as_str().to_owned())
                .unwrap_or_else(|| path.clone()),
            verb,
            object_ref,
            user: req.extensions().get::<UserInfo>().cloned(),
            decision: req.extensions().get::<Decision>().cloned(),
            source_ip: peer.ip().to_string(),
            user_agent: req
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// The event for this request answered with HTTP `code` (and, for
    /// gRPC, `grpc_status` when the response headers carry one).
    pub fn event(&self, code: u16, grpc_status: Option<&str>) -> Value {
        let mut event = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": uuid::Uuid::new_v4().to_string(),
            "stage": "ResponseStarted",
            "requestURI": self.uri,
            "verb": self.verb,
            "user": {},
            "sourceIPs": [self.source_ip],
            "responseStatus": { "metadata": {}, "code": code },
            "requestReceivedTimestamp": micros(self.received),
            "stageTimestamp": micros(chrono::Utc::now()),
        });
        if let Some(user) = &self.user {
            event["user"] = json!({ "username": user.name, "groups": user.groups });
        }
        if !self.user_agent.is_empty() {
            event["userAgent"] = json!(self.user_agent);
        }
        if let Some(r) = &self.object_ref {
            event["objectRef"] = r.clone();
        }
        let mut annotations = serde_json::Map::new();
        match &self.decision {
            Some(Decision::Allow) => {
                annotations.insert("authorization.k8s.io/decision".into(), json!("allow"));
            }
            Some(Decision::Forbid(reason)) => {
                annotations.insert("authorization.k8s.io/decision".into(), json!("forbid"));
                annotations.insert("authorization.k8s.io/reason".into(), json!(reason));
            }
            Some(Decision::PerCall) => {
                // gRPC calls are authorized per call: a denial is status 7.
                let decision = if grpc_status == Some("7") {
                    "forbid"
                } else {
                    "allow"
                };
                annotations.insert("authorization.k8s.io/decision".into(), json!(decision));
            }
            None => {}
        }
        if let Some(status) = grpc_status {
            annotations.insert("kerno.dev/grpc-status".into(), json!(status));
        }
        if !annotations.is_empty() {
            event["annotations"] = Value::Object(annotations);
        }
        event
    }
}

fn micros(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_who_what_decision_and_code() {
        let mut req = http::Request::builder()
            .method("DELETE")
            .uri("/api/v1/namespaces/team/secrets/db?dryRun=All")
            .header("user-agent", "kubectl/v1.32")
            .body(())
            .unwrap_or_default();
        req.extensions_mut()
            .insert(UserInfo::new("alice", ["dev".to_owned()]));
        req.extensions_mut()
            .insert(Decision::Forbid("no, alice".into()));
        let peer = "127.0.0.1:5000".parse().unwrap_or_else(|e| panic!("{e}"));
        let record = RequestRecord::new(&req, peer, chrono::Utc::now(), false);
        let event = record.event(403, None);
        assert_eq!(event["verb"], "delete");
        assert_eq!(event["user"]["username"], "alice");
        assert_eq!(event["user"]["groups"][0], "dev");
        assert_eq!(
            event["objectRef"],
            json!({"resource": "secrets", "apiVersion": "v1", "namespace": "team", "name": "db"})
        );
        assert_eq!(event["responseStatus"]["code"], 403);
        assert_eq!(
            event["annotations"]["authorization.k8s.io/decision"],
            "forbid"
        );
        assert_eq!(
            event["annotations"]["authorization.k8s.io/reason"],
            "no, alice"
        );
        assert_eq!(
            event["requestURI"],
            "/api/v1/namespaces/team/secrets/db?dryRun=All"
        );
        assert_eq!(event["userAgent"], "kubectl/v1.32");
    }

    #[test]
    fn the_log_appends_json_lines() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("audit").join("audit.log");
        let log = AuditLog::open(&path).unwrap_or_else(|e| panic!("{e}"));
        log.record(&json!({"a": 1}));
        log.record(&json!({"b": 2}));
        let patience = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let text = loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if text.lines().count() == 2 || std::time::Instant::now() > patience {
                break text;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!(text, "{\"a\":1}\n{\"b\":2}\n");
    }
}
