//! Tables of workload, batch, networking, RBAC and kerno types.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Column;
use super::tables::{age, arr_at, cols, format_selector, int_at, name, since, str_at};

fn containers_images(obj: &Value, pod_spec: &str) -> (Value, Value) {
    let containers = arr_at(obj, &format!("{pod_spec}/containers"));
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name", "")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image", "")).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

/// Deployments.
pub fn deployment_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Up-to-date", "integer", 0),
        ("Available", "integer", 0),
        ("Age", "string", 0),
        ("Containers", "string", 1),
        ("Images", "string", 1),
        ("Selector", "string", 1),
    ])
}

/// Deployment row.
pub fn deployment_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (c, i) = containers_images(obj, "/spec/template/spec");
    vec![
        name(obj),
        json!(format!(
            "{}/{}",
            int_at(obj, "/status/readyReplicas"),
            int_at(obj, "/spec/replicas")
        )),
        json!(int_at(obj, "/status/updatedReplicas")),
        json!(int_at(obj, "/status/availableReplicas")),
        age(obj, now),
        c,
        i,
        json!(format_selector(obj.pointer("/spec/selector"))),
    ]
}

/// ReplicaSets.
pub fn replicaset_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Desired", "integer", 0),
        ("Current", "integer", 0),
        ("Ready", "integer", 0),
        ("Age", "string", 0),
        ("Containers", "string", 1),
        ("Images", "string", 1),
        ("Selector", "string", 1),
    ])
}

/// ReplicaSet row.
pub fn replicaset_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (c, i) = containers_images(obj, "/spec/template/spec");
    vec![
        name(obj),
        json!(int_at(obj, "/spec/replicas")),
        json!(int_at(obj, "/status/replicas")),
        json!(int_at(obj, "/status/readyReplicas")),
        age(obj, now),
        c,
        i,
        json!(format_selector(obj.pointer("/spec/selector"))),
    ]
}

/// DaemonSets.
pub fn daemonset_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Desired", "integer", 0),
        ("Current", "integer", 0),
        ("Ready", "integer", 0),
        ("Up-to-date", "integer", 0),
        ("Available", "integer", 0),
        ("Node Selector", "string", 0),
        ("Age", "string", 0),
        ("Containers", "string", 1),
        ("Images", "string", 1),
        ("Selector", "string", 1),
    ])
}

/// DaemonSet row.
pub fn daemonset_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (c, i) = containers_images(obj, "/spec/template/spec");
    vec![
        name(obj),
        json!(int_at(obj, "/status/desiredNumberScheduled")),
        json!(int_at(obj, "/status/currentNumberScheduled")),
        json!(int_at(obj, "/status/numberReady")),
        json!(int_at(obj, "/status/updatedNumberScheduled")),
        json!(int_at(obj, "/status/numberAvailable")),
        json!(super::tables::format_labels(
            obj.pointer("/spec/template/spec/nodeSelector")
        )),
        age(obj, now),
        c,
        i,
        json!(format_selector(obj.pointer("/spec/selector"))),
    ]
}

/// StatefulSets.
pub fn statefulset_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Ready", "string", 0),
        ("Age", "string", 0),
        ("Containers", "string", 1),
        ("Images", "string", 1),
    ])
}

/// StatefulSet row.
pub fn statefulset_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (c, i) = containers_images(obj, "/spec/template/spec");
    vec![
        name(obj),
        json!(format!(
            "{}/{}",
            int_at(obj, "/status/readyReplicas"),
            int_at(obj, "/spec/replicas")
        )),
        age(obj, now),
        c,
        i,
    ]
}

/// Jobs.
pub fn job_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Status", "string", 0),
        ("Completions", "string", 0),
        ("Duration", "string", 0),
        ("Age", "string", 0),
        ("Containers", "string", 1),
        ("Images", "string", 1),
        ("Selector", "string", 1),
    ])
}

fn has_condition(obj: &Value, ty: &str) -> bool {
    arr_at(obj, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type", "") == ty && str_at(c, "/status", "") == "True")
}

/// Job row.
pub fn job_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int_at(obj, "/status/succeeded");
    let completions = match obj.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(n) => format!("{succeeded}/{n}"),
        None => match int_at(obj, "/spec/parallelism") {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = super::tables::parse_time(obj.pointer("/status/startTime"));
    let end = super::tables::parse_time(obj.pointer("/status/completionTime"));
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => super::tables::human_duration(now - s),
        (Some(s), Some(e)) => super::tables::human_duration(e - s),
    };
    let status = if has_condition(obj, "Complete") {
        "Complete"
    } else if has_condition(obj, "Failed") {
        "Failed"
    } else if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        "Terminating"
    } else if has_condition(obj, "Suspended") {
        "Suspended"
    } else if has_condition(obj, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(obj, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (c, i) = containers_images(obj, "/spec/template/spec");
    vec![
        name(obj),
        json!(status),
        json!(completions),
        json!(duration),
        age(obj, now),
        c,
        i,
        json!(format_selector(obj.pointer("/spec/selector"))),
    ]
}

/// CronJobs.
pub fn cronjob_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Schedule", "string", 0),
        ("Timezone", "string", 0),
        ("Suspend", "boolean", 0),
        ("Active", "integer", 0),
        ("Last Schedule", "string", 0),
        ("Age", "string", 0),
        ("Containers", "string", 1),
        ("Images", "string", 1),
        ("Selector", "string", 1),
    ])
}

/// CronJob row.
pub fn cronjob_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last = match obj
        .pointer("/status/lastScheduleTime")
        .filter(|v| !v.is_null())
    {
        Some(t) => since(Some(t), now),
        None => "<none>".to_owned(),
    };
    let (c, i) = containers_images(obj, "/spec/jobTemplate/spec/template/spec");
    vec![
        name(obj),
        json!(str_at(obj, "/spec/schedule", "")),
        json!(str_at(obj, "/spec/timeZone", "<none>")),
        json!(
            obj.pointer("/spec/suspend")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
        json!(arr_at(obj, "/status/active").len()),
        json!(last),
        age(obj, now),
        c,
        i,
        json!(format_selector(
            obj.pointer("/spec/jobTemplate/spec/selector")
        )),
    ]
}

/// Ingresses.
pub fn ingress_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Class", "string", 0),
        ("Hosts", "string", 0),
        ("Address", "string", 0),
        ("Ports", "string", 0),
        ("Age", "string", 0),
    ])
}

/// Ingress row.
pub fn ingress_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let hosts: Vec<&str> = arr_at(obj, "/spec/rules")
        .iter()
        .map(|r| str_at(r, "/host", "*"))
        .collect();
    let hosts = if hosts.is_empty() {
        "*".to_owned()
    } else {
        hosts.join(",")
    };
    let addrs: Vec<&str> = arr_at(obj, "/status/loadBalancer/ingress")
        .iter()
        .filter_map(|i| {
            i.get("ip")
                .or_else(|| i.get("hostname"))
                .and_then(Value::as_str)
        })
        .collect();
    let ports = if arr_at(obj, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        name(obj),
        json!(str_at(obj, "/spec/ingressClassName", "<none>")),
        json!(hosts),
        json!(addrs.join(",")),
        json!(ports),
        age(obj, now),
    ]
}

/// Leases.
pub fn lease_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Holder", "string", 0),
        ("Age", "string", 0),
    ])
}

/// Lease row.
pub fn lease_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        json!(str_at(obj, "/spec/holderIdentity", "")),
        age(obj, now),
    ]
}

/// RoleBindings and ClusterRoleBindings.
pub fn binding_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Role", "string", 0),
        ("Age", "string", 0),
        ("Users", "string", 1),
        ("Groups", "string", 1),
        ("ServiceAccounts", "string", 1),
    ])
}

/// Binding row.
pub fn binding_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let subjects = arr_at(obj, "/subjects");
    let of = |kind: &str| {
        let v: Vec<String> = subjects
            .iter()
            .filter(|s| str_at(s, "/kind", "") == kind)
            .map(|s| match kind {
                "ServiceAccount" => {
                    format!("{}/{}", str_at(s, "/namespace", ""), str_at(s, "/name", ""))
                }
                _ => str_at(s, "/name", "").to_owned(),
            })
            .collect();
        json!(v.join(", "))
    };
    vec![
        name(obj),
        json!(format!(
            "{}/{}",
            str_at(obj, "/roleRef/kind", ""),
            str_at(obj, "/roleRef/name", "")
        )),
        age(obj, now),
        of("User"),
        of("Group"),
        of("ServiceAccount"),
    ]
}

/// NetworkPolicies.
pub fn netpol_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Pod-Selector", "string", 0),
        ("Age", "string", 0),
    ])
}

/// NetworkPolicy row.
pub fn netpol_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let sel = format_selector(obj.pointer("/spec/podSelector"));
    vec![
        name(obj),
        json!(if sel == "<none>" { String::new() } else { sel }),
        age(obj, now),
    ]
}

/// PersistentVolumeClaims.
pub fn pvc_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Status", "string", 0),
        ("Volume", "string", 0),
        ("Capacity", "string", 0),
        ("Access Modes", "string", 0),
        ("StorageClass", "string", 0),
        ("Age", "string", 0),
        ("VolumeMode", "string", 1),
    ])
}

fn access_modes(modes: &[Value]) -> String {
    let short: Vec<&str> = modes
        .iter()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    short.join(",")
}

/// PersistentVolumeClaim row.
pub fn pvc_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        name(obj),
        json!(str_at(obj, "/status/phase", "")),
        json!(str_at(obj, "/spec/volumeName", "")),
        json!(str_at(obj, "/status/capacity/storage", "")),
        json!(access_modes(arr_at(obj, "/status/accessModes"))),
        json!(str_at(obj, "/spec/storageClassName", "")),
        age(obj, now),
        json!(str_at(obj, "/spec/volumeMode", "")),
    ]
}

/// PersistentVolumes.
pub fn pv_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Capacity", "string", 0),
        ("Access Modes", "string", 0),
        ("Reclaim Policy", "string", 0),
        ("Status", "string", 0),
        ("Claim", "string", 0),
        ("StorageClass", "string", 0),
        ("VolumeAttributesClass", "string", 0),
        ("Reason", "string", 0),
        ("Age", "string", 0),
        ("VolumeMode", "string", 1),
    ])
}

/// PersistentVolume row.
pub fn pv_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = match obj.pointer("/spec/claimRef").filter(|c| c.is_object()) {
        Some(c) => format!("{}/{}", str_at(c, "/namespace", ""), str_at(c, "/name", "")),
        None => String::new(),
    };
    vec![
        name(obj),
        json!(str_at(obj, "/spec/capacity/storage", "")),
        json!(access_modes(arr_at(obj, "/spec/accessModes"))),
        json!(str_at(obj, "/spec/persistentVolumeReclaimPolicy", "")),
        json!(str_at(obj, "/status/phase", "")),
        json!(claim),
        json!(str_at(obj, "/spec/storageClassName", "")),
        json!(str_at(obj, "/spec/volumeAttributesClassName", "<unset>")),
        json!(str_at(obj, "/status/reason", "")),
        age(obj, now),
        json!(str_at(obj, "/spec/volumeMode", "")),
    ]
}

/// IngressClasses.
pub fn ingressclass_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Controller", "string", 0),
        ("Parameters", "string", 0),
        ("Age", "string", 0),
    ])
}

/// IngressClass row.
pub fn ingressclass_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let params = match obj.pointer("/spec/parameters").filter(|p| p.is_object()) {
        Some(p) => {
            let group = str_at(p, "/apiGroup", "");
            let kind = str_at(p, "/kind", "");
            let kind = if group.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind}.{group}")
            };
            format!("{kind}/{}", str_at(p, "/name", ""))
        }
        None => "<none>".to_owned(),
    };
    vec![
        name(obj),
        json!(str_at(obj, "/spec/controller", "")),
        json!(params),
        age(obj, now),
    ]
}

/// EndpointSlices.
pub fn endpointslice_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("AddressType", "string", 0),
        ("Ports", "string", 0),
        ("Endpoints", "string", 0),
        ("Age", "string", 0),
    ])
}

/// EndpointSlice row: ports and up to three addresses, then `+ N more...`.
pub fn endpointslice_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports: Vec<String> = arr_at(obj, "/ports")
        .iter()
        .map(|p| match p.get("port").and_then(Value::as_i64) {
            Some(n) => n.to_string(),
            None => "<unset>".to_owned(),
        })
        .collect();
    let addrs: Vec<&str> = arr_at(obj, "/endpoints")
        .iter()
        .flat_map(|e| arr_at(e, "/addresses").iter().filter_map(Value::as_str))
        .collect();
    let endpoints = match addrs.len() {
        0 => "<unset>".to_owned(),
        n if n > 3 => format!("{} + {} more...", addrs[..3].join(","), n - 3),
        _ => addrs.join(","),
    };
    vec![
        name(obj),
        json!(str_at(obj, "/addressType", "")),
        json!(if ports.is_empty() {
            "<unset>".to_owned()
        } else {
            ports.join(",")
        }),
        json!(endpoints),
        age(obj, now),
    ]
}

/// ResourceQuotas.
pub fn quota_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Age", "string", 0),
        ("Request", "string", 0),
        ("Limit", "string", 0),
    ])
}

/// ResourceQuota row: `resource: used/hard` pairs, limits apart from requests.
pub fn quota_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut request = Vec::new();
    let mut limit = Vec::new();
    if let Some(hard) = obj
        .pointer("/status/hard")
        .or_else(|| obj.pointer("/spec/hard"))
        .and_then(Value::as_object)
    {
        let mut keys: Vec<&String> = hard.keys().collect();
        keys.sort();
        for k in keys {
            let used = obj
                .pointer("/status/used")
                .and_then(|u| u.get(k.as_str()))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_else(|| "0".into());
            let h = hard
                .get(k.as_str())
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .unwrap_or_default();
            let item = format!("{k}: {used}/{h}");
            if k.starts_with("limits.") {
                limit.push(item)
            } else {
                request.push(item)
            }
        }
    }
    vec![
        name(obj),
        age(obj, now),
        json!(request.join(", ")),
        json!(limit.join(", ")),
    ]
}

/// ControllerRevisions.
pub fn controllerrevision_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Controller", "string", 0),
        ("Revision", "integer", 0),
        ("Age", "string", 0),
    ])
}

/// ControllerRevision row.
pub fn controllerrevision_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let owner = arr_at(obj, "/metadata/ownerReferences")
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
        .map(|o| {
            let group = str_at(o, "/apiVersion", "")
                .split('/')
                .next()
                .unwrap_or("")
                .to_owned();
            let kind = str_at(o, "/kind", "").to_lowercase();
            let kind = if str_at(o, "/apiVersion", "").contains('/') {
                format!("{kind}.{group}")
            } else {
                kind
            };
            format!("{kind}/{}", str_at(o, "/name", ""))
        })
        .unwrap_or_else(|| "<none>".into());
    vec![
        name(obj),
        json!(owner),
        json!(int_at(obj, "/revision")),
        age(obj, now),
    ]
}

/// Plugins: NAME KIND VERSION PHASE RESTARTS AGE.
pub fn plugin_columns() -> Vec<Column> {
    cols(&[
        ("Name", "string", 0),
        ("Kind", "string", 0),
        ("Version", "string", 0),
        ("Phase", "string", 0),
        ("Restarts", "integer", 0),
        ("Age", "string", 0),
        ("Endpoint", "string", 1),
        ("Last Heartbeat", "string", 1),
    ])
}

/// Plugin row.
pub fn plugin_row(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let heartbeat = match obj
        .pointer("/status/lastHeartbeatTime")
        .filter(|v| !v.is_null())
    {
        Some(t) => since(Some(t), now),
        None => "<none>".to_owned(),
    };
    vec![
        name(obj),
        json!(str_at(obj, "/spec/kind", "")),
        json!(str_at(obj, "/spec/version", "")),
        json!(str_at(obj, "/status/phase", "")),
        json!(int_at(obj, "/status/restarts")),
        age(obj, now),
        json!(str_at(obj, "/spec/endpoint", "")),
        json!(heartbeat),
    ]
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 10, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn deployment_and_replicaset() {
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2025-01-10T11:58:00Z"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        assert_eq!(
            deployment_row(&d, now()),
            vec![
                json!("web"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("2m"),
                json!("nginx,log"),
                json!("nginx:1.27,busybox"),
                json!("app=web")
            ]
        );
        assert_eq!(
            deployment_columns()
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()[..5],
            ["Name", "Ready", "Up-to-date", "Available", "Age"]
        );
        let rs = replicaset_row(&d, now());
        assert_eq!(rs[1..4], [json!(3), json!(0), json!(2)]);
    }

    #[test]
    fn job_rows() {
        let j = json!({"metadata": {"name": "pi", "creationTimestamp": "2025-01-10T11:00:00Z"},
            "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
            "status": {"succeeded": 1, "startTime": "2025-01-10T11:00:00Z", "completionTime": "2025-01-10T11:00:30Z",
                "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(
            job_row(&j, now())[..5],
            [
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("30s"),
                json!("60m")
            ]
        );
        let running = json!({"metadata": {"name": "p"}, "spec": {"parallelism": 3}, "status": {}});
        assert_eq!(
            job_row(&running, now())[1..4],
            [json!("Running"), json!("0/1 of 3"), json!("")]
        );
        let cj = json!({"metadata": {"name": "c"}, "spec": {"schedule": "*/5 * * * *", "suspend": false},
            "status": {"active": [{"name": "c-1"}], "lastScheduleTime": "2025-01-10T11:55:00Z"}});
        assert_eq!(
            cronjob_row(&cj, now())[1..6],
            [
                json!("*/5 * * * *"),
                json!("<none>"),
                json!(false),
                json!(1),
                json!("5m")
            ]
        );
    }

    #[test]
    fn storage_networking_quota_rows() {
        let pv = json!({"metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
            "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "ns", "name": "data"}, "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}});
        assert_eq!(
            pv_row(&pv, now())[1..8],
            [
                json!("1Gi"),
                json!("RWO,ROX"),
                json!("Retain"),
                json!("Bound"),
                json!("ns/data"),
                json!(""),
                json!("<unset>")
            ]
        );
        let es = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4", "ports": [{"port": 80}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]});
        assert_eq!(
            endpointslice_row(&es, now())[1..4],
            [json!("IPv4"), json!("80"), json!("10.0.0.1,10.0.0.2")]
        );
        let q = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "10", "limits.cpu": "2"}},
            "status": {"hard": {"pods": "10", "limits.cpu": "2"}, "used": {"pods": "3"}}});
        assert_eq!(
            quota_row(&q, now())[2..],
            [json!("pods: 3/10"), json!("limits.cpu: 0/2")]
        );
        let ic = json!({"metadata": {"name": "kerno"}, "spec": {"controller": "kerno.dev/ingress-http"}});
        assert_eq!(
            ingressclass_row(&ic, now())[1..3],
            [json!("kerno.dev/ingress-http"), json!("<none>")]
        );
    }

    #[test]
    fn plugin_binding_ingress_rows() {
        let p = json!({"metadata": {"name": "scheduler-default", "creationTimestamp": "2025-01-10T11:59:00Z"},
            "spec": {"kind": "scheduler", "version": "0.1.0", "endpoint": "unix:///run/s.sock"},
            "status": {"phase": "Running", "restarts": 2}});
        assert_eq!(
            plugin_row(&p, now())[..6],
            [
                json!("scheduler-default"),
                json!("scheduler"),
                json!("0.1.0"),
                json!("Running"),
                json!(2),
                json!("60s")
            ]
        );
        let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}]});
        assert_eq!(
            binding_row(&rb, now())[1..],
            [
                json!("ClusterRole/view"),
                json!("<unknown>"),
                json!("alice"),
                json!(""),
                json!("ns/sa")
            ]
        );
        let ing = json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "kerno", "rules": [{"host": "a.example"}, {}], "tls": [{}]}});
        assert_eq!(
            ingress_row(&ing, now())[1..5],
            [
                json!("kerno"),
                json!("a.example,*"),
                json!(""),
                json!("80, 443")
            ]
        );
    }
}
