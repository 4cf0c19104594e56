//! Tables of networking, storage, coordination, RBAC, quota and kerno types.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Column;
use super::tables::{age, arr_at, cols, format_selector, int_at, name, since_or_none, str_at};

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
    let heartbeat = since_or_none(obj, "/status/lastHeartbeatTime", now);
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

    use super::*;

    fn now() -> DateTime<Utc> {
        crate::registry::tables::test_now()
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
