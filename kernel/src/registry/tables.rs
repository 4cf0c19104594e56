//! Server-side tables (`kubectl get`): Kubernetes' human durations and the
//! columns and rows of core types. Workload tables live in
//! [`super::tables_apps`], the pod table in [`super::pod_table`].

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Column;

/// Kubernetes' short human duration (`duration.HumanDuration`).
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    if secs < -1 {
        return "<invalid>".into();
    } else if secs < 0 {
        return "0s".into();
    } else if secs < 120 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Parses an RFC 3339 timestamp.
pub fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let s = v?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Time since `v` as a human duration, `<unknown>` when absent.
pub fn since(v: Option<&Value>, now: DateTime<Utc>) -> String {
    match parse_time(v) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".into(),
    }
}

/// Time since the timestamp at `pointer`, `<none>` when it is unset (as
/// kubectl shows LAST SCHEDULE or a missing heartbeat).
pub fn since_or_none(obj: &Value, pointer: &str, now: DateTime<Utc>) -> String {
    match obj.pointer(pointer).filter(|v| !v.is_null()) {
        Some(t) => since(Some(t), now),
        None => "<none>".to_owned(),
    }
}

/// `ready/desired` replicas, as the READY column of workloads shows it.
pub fn ready_fraction(obj: &Value) -> Value {
    let ready = int_at(obj, "/status/readyReplicas");
    json!(format!("{ready}/{}", int_at(obj, "/spec/replicas")))
}

/// The fixed clock of the table tests.
#[cfg(test)]
pub(crate) fn test_now() -> DateTime<Utc> {
    use chrono::TimeZone;
    Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// The AGE cell of an object.
pub fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    json!(since(obj.pointer("/metadata/creationTimestamp"), now))
}

/// The NAME cell of an object.
pub fn name(obj: &Value) -> Value {
    json!(
        obj.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    )
}

/// A string at `pointer`, or `absent`.
pub fn str_at<'a>(obj: &'a Value, pointer: &str, absent: &'a str) -> &'a str {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(absent)
}

/// An integer at `pointer`, 0 when absent.
pub fn int_at(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The array at `pointer`, empty when absent.
pub fn arr_at<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Number of entries of the object at `pointer`.
pub fn len_at(obj: &Value, pointer: &str) -> usize {
    obj.pointer(pointer)
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
}

/// `k=v,k2=v2` of a string map (sorted), `<none>` if empty.
pub fn format_labels(map: Option<&Value>) -> String {
    let Some(m) = map.and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return "<none>".into();
    };
    let mut items: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    items.sort();
    items.join(",")
}

/// A label selector as kubectl prints it: `app=web,env in (a,b)`.
pub fn format_selector(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|s| s.is_object()) else {
        return "<none>".into();
    };
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        let mut items: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        items.sort();
        parts.extend(items);
    }
    for e in arr_at(sel, "/matchExpressions") {
        let key = str_at(e, "/key", "");
        let mut values: Vec<&str> = arr_at(e, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        parts.push(match str_at(e, "/operator", "") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_owned(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

/// Columns from `(name, type, priority)` triples.
pub fn cols(spec: &[(&str, &str, i32)]) -> Vec<Column> {
    spec.iter().map(|(n, t, p)| Column::new(n, t, *p)).collect()
}

/// NAME AGE: the table of types without a dedicated printer.
pub fn name_age_columns() -> Vec<Column> {
    cols(&[("Name", "string", 0), ("Age", "string", 0)])
}

/// Row for [`name_age_columns`].
pub fn name_age_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![name(obj), age(obj, now)]
}

/// NAME CREATED AT: CRDs, roles, cluster roles.
pub fn created_at_columns() -> Vec<Column> {
    cols(&[("Name", "string", 0), ("Created At", "date", 0)])
}

/// Row for [`created_at_columns`].
pub fn created_at_row(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        obj.pointer("/metadata/creationTimestamp")
            .cloned()
            .unwrap_or(Value::Null),
    ]
}

/// Namespaces.
pub fn namespace_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Status", "string", 0),
        ("Age", "string", 0),
    ])
}

/// Namespace row.
pub fn namespace_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        json!(str_at(obj, "/status/phase", "")),
        age(obj, now),
    ]
}

/// Nodes.
pub fn node_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Status", "string", 0),
        ("Roles", "string", 0),
        ("Age", "string", 0),
        ("Version", "string", 0),
        ("Internal-IP", "string", 1),
        ("External-IP", "string", 1),
        ("OS-Image", "string", 1),
        ("Kernel-Version", "string", 1),
        ("Container-Runtime", "string", 1),
    ])
}

/// Node row.
pub fn node_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    for c in arr_at(obj, "/status/conditions") {
        if str_at(c, "/type", "") == "Ready" {
            status.push(
                if str_at(c, "/status", "") == "True" {
                    "Ready"
                } else {
                    "NotReady"
                }
                .into(),
            );
        }
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.push(role.to_owned());
                }
            } else if k == "kubernetes.io/role"
                && let Some(v) = v.as_str().filter(|v| !v.is_empty())
            {
                roles.push(v.to_owned());
            }
        }
    }
    roles.sort();
    roles.dedup();
    let addr = |ty: &str| {
        arr_at(obj, "/status/addresses")
            .iter()
            .find(|a| str_at(a, "/type", "") == ty)
            .map_or("<none>".to_owned(), |a| {
                str_at(a, "/address", "<none>").to_owned()
            })
    };
    vec![
        name(obj),
        json!(status.join(",")),
        json!(if roles.is_empty() {
            "<none>".to_owned()
        } else {
            roles.join(",")
        }),
        age(obj, now),
        json!(str_at(obj, "/status/nodeInfo/kubeletVersion", "")),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        json!(str_at(obj, "/status/nodeInfo/osImage", "<unknown>")),
        json!(str_at(obj, "/status/nodeInfo/kernelVersion", "<unknown>")),
        json!(str_at(
            obj,
            "/status/nodeInfo/containerRuntimeVersion",
            "<unknown>"
        )),
    ]
}

/// Services.
pub fn service_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Type", "string", 0),
        ("Cluster-IP", "string", 0),
        ("External-IP", "string", 0),
        ("Port(s)", "string", 0),
        ("Age", "string", 0),
        ("Selector", "string", 1),
    ])
}

/// Service row.
pub fn service_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ty = str_at(obj, "/spec/type", "ClusterIP");
    let cluster_ip = arr_at(obj, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .or_else(|| {
            obj.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("<none>");
    let external: Vec<String> = arr_at(obj, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let external_ip = match ty {
        "ClusterIP" | "NodePort" if external.is_empty() => "<none>".to_owned(),
        "ClusterIP" | "NodePort" => external.join(","),
        "LoadBalancer" => {
            let mut ips: Vec<String> = arr_at(obj, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| {
                    i.get("ip")
                        .or_else(|| i.get("hostname"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect();
            ips.extend(external);
            if ips.is_empty() {
                "<pending>".to_owned()
            } else {
                ips.join(",")
            }
        }
        "ExternalName" => str_at(obj, "/spec/externalName", "<none>").to_owned(),
        _ => "<unknown>".to_owned(),
    };
    let ports: Vec<String> = arr_at(obj, "/spec/ports")
        .iter()
        .map(|p| {
            let proto = str_at(p, "/protocol", "TCP");
            match p
                .get("nodePort")
                .and_then(Value::as_i64)
                .filter(|n| *n != 0)
            {
                Some(np) => format!("{}:{np}/{proto}", int_at(p, "/port")),
                None => format!("{}/{proto}", int_at(p, "/port")),
            }
        })
        .collect();
    vec![
        name(obj),
        json!(ty),
        json!(cluster_ip),
        json!(external_ip),
        json!(if ports.is_empty() {
            "<none>".to_owned()
        } else {
            ports.join(",")
        }),
        age(obj, now),
        json!(format_labels(obj.pointer("/spec/selector"))),
    ]
}

/// Endpoints.
pub fn endpoints_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Endpoints", "string", 0),
        ("Age", "string", 0),
    ])
}

/// Endpoints row: up to three `ip:port`, then `+ N more...`.
pub fn endpoints_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut all = Vec::new();
    for subset in arr_at(obj, "/subsets") {
        let ports = arr_at(subset, "/ports");
        for addr in arr_at(subset, "/addresses") {
            let ip = str_at(addr, "/ip", "");
            if ports.is_empty() {
                all.push(ip.to_owned());
            }
            for p in ports {
                all.push(format!("{ip}:{}", int_at(p, "/port")));
            }
        }
    }
    let shown = if all.is_empty() {
        "<none>".to_owned()
    } else if all.len() > 3 {
        format!("{} + {} more...", all[..3].join(","), all.len() - 3)
    } else {
        all.join(",")
    };
    vec![name(obj), json!(shown), age(obj, now)]
}

/// ConfigMaps.
pub fn configmap_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Data", "integer", 0),
        ("Age", "string", 0),
    ])
}

/// ConfigMap row.
pub fn configmap_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        json!(len_at(obj, "/data") + len_at(obj, "/binaryData")),
        age(obj, now),
    ]
}

/// Secrets.
pub fn secret_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Type", "string", 0),
        ("Data", "integer", 0),
        ("Age", "string", 0),
    ])
}

/// Secret row.
pub fn secret_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        json!(str_at(obj, "/type", "")),
        json!(len_at(obj, "/data")),
        age(obj, now),
    ]
}

/// ServiceAccounts.
pub fn serviceaccount_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Secrets", "string", 0),
        ("Age", "string", 0),
    ])
}

/// ServiceAccount row.
pub fn serviceaccount_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        json!(arr_at(obj, "/secrets").len()),
        age(obj, now),
    ]
}

/// Events.
pub fn event_columns() -> Vec<Column> {
    cols(&[
        ("Last Seen", "string", 0),
        ("Type", "string", 0),
        ("Reason", "string", 0),
        ("Object", "string", 0),
        ("Subobject", "string", 1),
        ("Source", "string", 1),
        ("Message", "string", 0),
        ("First Seen", "string", 1),
        ("Count", "string", 1),
        ("Name", "string", 1),
    ])
}

/// Event row.
pub fn event_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first = obj
        .pointer("/firstTimestamp")
        .filter(|v| !v.is_null())
        .or_else(|| obj.pointer("/eventTime"));
    let last = obj
        .pointer("/series/lastObservedTime")
        .filter(|v| !v.is_null())
        .or_else(|| obj.pointer("/lastTimestamp").filter(|v| !v.is_null()))
        .or(first);
    let kind = str_at(obj, "/involvedObject/kind", "").to_lowercase();
    let object = format!("{kind}/{}", str_at(obj, "/involvedObject/name", ""));
    let mut source = str_at(obj, "/source/component", "").to_owned();
    if source.is_empty() {
        source = str_at(obj, "/reportingComponent", "").to_owned();
    }
    if let Some(host) = obj
        .pointer("/source/host")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
    {
        source = format!("{source}, {host}");
    }
    let count = obj
        .pointer("/series/count")
        .and_then(Value::as_i64)
        .unwrap_or_else(|| int_at(obj, "/count"));
    vec![
        json!(since(last, now)),
        json!(str_at(obj, "/type", "")),
        json!(str_at(obj, "/reason", "")),
        json!(object),
        json!(str_at(obj, "/involvedObject/fieldPath", "")),
        json!(source),
        json!(str_at(obj, "/message", "").trim()),
        json!(since(first, now)),
        json!(count.to_string()),
        name(obj),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        crate::registry::tables::test_now()
    }

    #[test]
    fn human_durations() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(45)), "45s");
        assert_eq!(human_duration(d(119)), "119s");
        assert_eq!(human_duration(d(5 * 60)), "5m");
        assert_eq!(human_duration(d(5 * 60 + 7)), "5m7s");
        assert_eq!(human_duration(d(3 * 3600 + 12 * 60)), "3h12m");
        assert_eq!(human_duration(d(20 * 3600)), "20h");
        assert_eq!(human_duration(d(2 * 86400)), "2d");
        assert_eq!(human_duration(d(3 * 86400 + 5 * 3600)), "3d5h");
        assert_eq!(human_duration(d(400 * 86400)), "400d");
        assert_eq!(human_duration(d(3 * 365 * 86400 + 86400 * 10)), "3y10d");
        assert_eq!(human_duration(d(-5)), "<invalid>");
        assert_eq!(since(None, now()), "<unknown>");
    }

    #[test]
    fn service_rows() {
        let svc = json!({"metadata": {"name": "web", "creationTimestamp": "2025-01-10T11:59:15Z"},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                "selector": {"app": "web", "tier": "fe"},
                "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(
            service_row(&svc, now()),
            vec![
                json!("web"),
                json!("NodePort"),
                json!("10.96.0.20"),
                json!("<none>"),
                json!("80:30080/TCP,53/UDP"),
                json!("45s"),
                json!("app=web,tier=fe")
            ]
        );
        let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIP": "None"}});
        let row = service_row(&lb, now());
        assert_eq!(row[2], "None");
        assert_eq!(row[3], "<pending>");
        assert_eq!(row[4], "<none>");
        assert_eq!(row[5], "<unknown>");
        assert_eq!(
            service_columns().iter().filter(|c| c.priority == 1).count(),
            1
        );
        assert_eq!(service_columns()[0].format, "name");
    }

    #[test]
    fn node_and_namespace_rows() {
        let node = json!({"metadata": {"name": "n1", "creationTimestamp": "2025-01-08T12:00:00Z",
                "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.33.0"},
                "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}]}});
        let row = node_row(&node, now());
        assert_eq!(
            row[..6],
            [
                json!("n1"),
                json!("Ready,SchedulingDisabled"),
                json!("control-plane,worker"),
                json!("2d"),
                json!("v1.33.0"),
                json!("10.0.0.5")
            ]
        );
        let ns = json!({"metadata": {"name": "default", "creationTimestamp": "2025-01-10T09:00:00Z"}, "status": {"phase": "Active"}});
        assert_eq!(
            namespace_row(&ns, now()),
            vec![json!("default"), json!("Active"), json!("3h")]
        );
    }

    #[test]
    fn data_rows_and_events() {
        let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": ""}});
        assert_eq!(configmap_row(&cm, now())[1], json!(3));
        let s = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "MQ=="}});
        assert_eq!(secret_row(&s, now())[1..3], [json!("Opaque"), json!(1)]);
        let ev = json!({"metadata": {"name": "web.1"}, "type": "Normal", "reason": "Scheduled",
            "involvedObject": {"kind": "Pod", "name": "web"}, "message": "ok\n", "count": 2,
            "firstTimestamp": "2025-01-10T11:50:00Z", "lastTimestamp": "2025-01-10T11:59:00Z",
            "source": {"component": "default-scheduler"}});
        let row = event_row(&ev, now());
        assert_eq!(
            row[..4],
            [
                json!("60s"),
                json!("Normal"),
                json!("Scheduled"),
                json!("pod/web")
            ]
        );
        assert_eq!(row[6], "ok");
        assert_eq!(row[7], "10m");
        assert_eq!(row[8], "2");
        let ep = json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(
            endpoints_row(&ep, now())[1],
            "10.0.0.1:80,10.0.0.1:443,10.0.0.2:80 + 1 more..."
        );
    }

    #[test]
    fn selectors_format() {
        let sel = json!({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]});
        assert_eq!(format_selector(Some(&sel)), "a=1,b=2,env in (dev,prod)");
        assert_eq!(format_selector(None), "<none>");
    }
}
