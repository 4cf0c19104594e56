//! Tables of workload and batch types.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::Column;
use super::tables::{
    age, arr_at, cols, format_selector, int_at, name, ready_fraction, since_or_none, str_at,
};

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
        ready_fraction(obj),
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
    vec![name(obj), ready_fraction(obj), age(obj, now), c, i]
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
    let last = since_or_none(obj, "/status/lastScheduleTime", now);
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

#[cfg(test)]
mod tests {

    use super::*;

    fn now() -> DateTime<Utc> {
        crate::registry::tables::test_now()
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
}
