//! The pod table, with Kubernetes' STATUS and RESTARTS logic (`printPod`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Column;
use super::tables::{age, arr_at, cols, human_duration, int_at, name, parse_time, str_at};

/// Pod columns: NAME READY STATUS RESTARTS AGE, wide: IP NODE NOMINATED NODE READINESS GATES.
pub fn pod_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Status", "string", 0),
        ("Restarts", "string", 0),
        ("Age", "string", 0),
        ("IP", "string", 1),
        ("Node", "string", 1),
        ("Nominated Node", "string", 1),
        ("Readiness Gates", "string", 1),
    ])
}

fn later(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn terminated_reason(t: &Value, prefix: &str) -> String {
    let reason = str_at(t, "/reason", "");
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int_at(t, "/signal");
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int_at(t, "/exitCode"))
    }
}

fn condition_true(pod: &Value, ty: &str) -> bool {
    arr_at(pod, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type", "") == ty && str_at(c, "/status", "") == "True")
}

/// The pod row as `kubectl get pods` shows it.
pub fn pod_row(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let init_specs = arr_at(pod, "/spec/initContainers");
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| str_at(c, "/name", "") == name && str_at(c, "/restartPolicy", "") == "Always")
    };
    let mut total = arr_at(pod, "/spec/containers").len();
    total += init_specs
        .iter()
        .filter(|c| str_at(c, "/restartPolicy", "") == "Always")
        .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut sidecar_last_restart: Option<DateTime<Utc>> = None;
    let phase = str_at(pod, "/status/phase", "");
    let mut reason = str_at(pod, "/status/reason", phase).to_owned();
    for c in arr_at(pod, "/status/conditions") {
        if str_at(c, "/type", "") == "PodScheduled" && str_at(c, "/reason", "") == "SchedulingGated"
        {
            reason = "SchedulingGated".into();
        }
    }

    let mut initializing = false;
    for (i, c) in arr_at(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        restarts += int_at(c, "/restartCount");
        let finished = parse_time(c.pointer("/lastState/terminated/finishedAt"));
        last_restart = later(last_restart, finished);
        let cname = str_at(c, "/name", "");
        let is_sidecar = restartable(cname);
        if is_sidecar {
            sidecar_restarts += int_at(c, "/restartCount");
            sidecar_last_restart = later(sidecar_last_restart, finished);
        }
        let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
        let waiting_reason = str_at(c, "/state/waiting/reason", "");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if is_sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            terminated_reason(t, "Init:")
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = sidecar_last_restart;
        let mut has_running = false;
        for c in arr_at(pod, "/status/containerStatuses").iter().rev() {
            restarts += int_at(c, "/restartCount");
            last_restart = later(
                last_restart,
                parse_time(c.pointer("/lastState/terminated/finishedAt")),
            );
            let waiting = str_at(c, "/state/waiting/reason", "");
            let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
            if !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if let Some(t) = terminated {
                reason = terminated_reason(t, "");
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some_and(Value::is_object)
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .into();
        }
    }

    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    if deleting && str_at(pod, "/status/reason", "") == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", human_duration(now - t)),
        _ => restarts.to_string(),
    };
    let ip = arr_at(pod, "/status/podIPs")
        .first()
        .map(|p| str_at(p, "/ip", "<none>"))
        .unwrap_or_else(|| str_at(pod, "/status/podIP", "<none>"));
    let gates = arr_at(pod, "/spec/readinessGates");
    let gates_cell = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let ok = gates
            .iter()
            .filter(|g| condition_true(pod, str_at(g, "/conditionType", "")))
            .count();
        format!("{ok}/{}", gates.len())
    };
    vec![
        name(pod),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        age(pod, now),
        json!(ip),
        json!(str_at(pod, "/spec/nodeName", "<none>")),
        json!(str_at(pod, "/status/nominatedNodeName", "<none>")),
        json!(gates_cell),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        crate::registry::tables::test_now()
    }

    fn pod(status: Value) -> Value {
        json!({"metadata": {"name": "web", "creationTimestamp": "2025-01-10T11:00:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": "a"}, {"name": "b"}],
                "initContainers": [{"name": "init"}]},
            "status": status})
    }

    fn cells(status: Value) -> (String, String, String) {
        let row = pod_row(&pod(status), now());
        (
            row[1].as_str().unwrap_or("").into(),
            row[2].as_str().unwrap_or("").into(),
            row[3].as_str().unwrap_or("").into(),
        )
    }

    #[test]
    fn pending_and_init() {
        assert_eq!(
            cells(json!({"phase": "Pending"})),
            ("0/2".into(), "Pending".into(), "0".into())
        );
        assert_eq!(
            cells(json!({"phase": "Pending", "initContainerStatuses": [{"name": "init", "state": {"running": {}}}]})).1,
            "Init:0/1"
        );
        assert_eq!(
            cells(json!({"phase": "Pending", "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 2}}}]})).1,
            "Init:ExitCode:2"
        );
        assert_eq!(
            cells(json!({"phase": "Pending", "initContainerStatuses": [{"name": "init", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]})).1,
            "Init:CrashLoopBackOff"
        );
    }

    #[test]
    fn running_crashloop_completed() {
        let running = json!({"phase": "Running", "podIP": "10.244.0.5",
            "initContainerStatuses": [{"name": "init", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-01-10T11:55:00Z"}}}]});
        let row = pod_row(&pod(running), now());
        assert_eq!(
            row[..5],
            [
                json!("web"),
                json!("1/2"),
                json!("CrashLoopBackOff"),
                json!("2 (5m ago)"),
                json!("60m")
            ]
        );
        assert_eq!(
            row[5..],
            [
                json!("10.244.0.5"),
                json!("n1"),
                json!("<none>"),
                json!("<none>")
            ]
        );
        let creating = json!({"phase": "Pending", "containerStatuses": [
            {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}]});
        assert_eq!(cells(creating).1, "ContainerCreating");
        let done = json!({"phase": "Succeeded", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "b", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
        assert_eq!(cells(done).1, "Completed");
        let ok = json!({"phase": "Running", "containerStatuses": [
            {"name": "a", "ready": true, "state": {"running": {}}}, {"name": "b", "ready": true, "state": {"running": {}}}]});
        assert_eq!(cells(ok).0, "2/2");
    }

    #[test]
    fn terminating() {
        let mut p = pod(json!({"phase": "Running"}));
        p["metadata"]["deletionTimestamp"] = json!("2025-01-10T11:59:00Z");
        assert_eq!(pod_row(&p, now())[2], "Terminating");
    }
}
