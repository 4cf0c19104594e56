//! Defaulting as Kubernetes' `SetDefaults_*` functions do it, for the fields
//! users see in `kubectl get -o yaml`.

use serde_json::{Map, Value, json};

/// Sets `obj[key] = value` unless the key holds a non-null value.
fn set(obj: &mut Map<String, Value>, key: &str, value: Value) {
    match obj.get(key) {
        Some(v) if !v.is_null() => {}
        _ => {
            obj.insert(key.to_owned(), value);
        }
    }
}

/// The object at `key`, created (or replaced if not an object) on demand.
fn child<'a>(obj: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = obj.entry(key.to_owned()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn objects_in<'a>(obj: &'a mut Map<String, Value>, key: &str) -> Vec<&'a mut Map<String, Value>> {
    match obj.get_mut(key) {
        Some(Value::Array(items)) => items.iter_mut().filter_map(Value::as_object_mut).collect(),
        _ => Vec::new(),
    }
}

/// Image pull policy Kubernetes picks: `Always` for `:latest` or no tag.
pub fn default_pull_policy(image: &str) -> &'static str {
    // A digest pins the image; otherwise look at the tag after the last '/'.
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Map<String, Value>) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    set(c, "imagePullPolicy", json!(default_pull_policy(&image)));
    set(c, "terminationMessagePath", json!("/dev/termination-log"));
    set(c, "terminationMessagePolicy", json!("File"));
    set(c, "resources", json!({}));
    for port in objects_in(c, "ports") {
        set(port, "protocol", json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(Value::Object(p)) = c.get_mut(probe) {
            set(p, "timeoutSeconds", json!(1));
            set(p, "periodSeconds", json!(10));
            set(p, "successThreshold", json!(1));
            set(p, "failureThreshold", json!(3));
            if let Some(Value::Object(h)) = p.get_mut("httpGet") {
                set(h, "path", json!("/"));
                set(h, "scheme", json!("HTTP"));
            }
        }
    }
}

/// Defaults of a pod spec (also used in templates).
pub fn default_pod_spec(spec: &mut Map<String, Value>) {
    set(spec, "restartPolicy", json!("Always"));
    set(spec, "dnsPolicy", json!("ClusterFirst"));
    set(spec, "terminationGracePeriodSeconds", json!(30));
    set(spec, "schedulerName", json!("default-scheduler"));
    set(spec, "securityContext", json!({}));
    for key in ["containers", "initContainers"] {
        for c in objects_in(spec, key) {
            default_container(c);
        }
    }
    // `serviceAccount` is the deprecated mirror of `serviceAccountName`.
    if let Some(sa) = spec
        .get("serviceAccountName")
        .cloned()
        .filter(Value::is_string)
    {
        set(spec, "serviceAccount", sa);
    }
}

fn default_template(spec: &mut Map<String, Value>) {
    let template = child(spec, "template");
    child(template, "metadata");
    default_pod_spec(child(template, "spec"));
}

fn spec_of(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    obj.as_object_mut().map(|o| child(o, "spec"))
}

/// Pod defaults.
pub fn pod(obj: &mut Value) {
    if let Some(spec) = spec_of(obj) {
        default_pod_spec(spec);
        set(spec, "enableServiceLinks", json!(true));
    }
}

/// Deployment defaults.
pub fn deployment(obj: &mut Value) {
    let Some(spec) = spec_of(obj) else { return };
    set(spec, "replicas", json!(1));
    let strategy = child(spec, "strategy");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = child(strategy, "rollingUpdate");
        set(ru, "maxUnavailable", json!("25%"));
        set(ru, "maxSurge", json!("25%"));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    set(spec, "progressDeadlineSeconds", json!(600));
    default_template(spec);
}

/// ReplicaSet (and ReplicationController) defaults.
pub fn replicaset(obj: &mut Value) {
    let Some(spec) = spec_of(obj) else { return };
    set(spec, "replicas", json!(1));
    default_template(spec);
}

/// StatefulSet defaults.
pub fn statefulset(obj: &mut Value) {
    let Some(spec) = spec_of(obj) else { return };
    set(spec, "replicas", json!(1));
    set(spec, "podManagementPolicy", json!("OrderedReady"));
    let strategy = child(spec, "updateStrategy");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        set(child(strategy, "rollingUpdate"), "partition", json!(0));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    let retention = child(spec, "persistentVolumeClaimRetentionPolicy");
    set(retention, "whenDeleted", json!("Retain"));
    set(retention, "whenScaled", json!("Retain"));
    for pvc in objects_in(spec, "volumeClaimTemplates") {
        let pvc_spec = child(pvc, "spec");
        set(pvc_spec, "volumeMode", json!("Filesystem"));
    }
    default_template(spec);
}

/// DaemonSet defaults.
pub fn daemonset(obj: &mut Value) {
    let Some(spec) = spec_of(obj) else { return };
    let strategy = child(spec, "updateStrategy");
    set(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let ru = child(strategy, "rollingUpdate");
        set(ru, "maxUnavailable", json!(1));
        set(ru, "maxSurge", json!(0));
    }
    set(spec, "revisionHistoryLimit", json!(10));
    default_template(spec);
}

fn default_job_spec(spec: &mut Map<String, Value>) {
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    set(spec, "parallelism", json!(1));
    set(spec, "backoffLimit", json!(6));
    set(spec, "completionMode", json!("NonIndexed"));
    set(spec, "suspend", json!(false));
    set(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    default_template(spec);
}

/// Job defaults, including the selector and pod labels Kubernetes derives
/// from the job's uid (created here if the object has none yet; the service
/// layer must keep an existing uid).
pub fn job(obj: &mut Value) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = child(root, "metadata");
    let uid = match meta.get("uid").and_then(Value::as_str) {
        Some(u) if !u.is_empty() => u.to_owned(),
        _ => {
            let u = uuid::Uuid::new_v4().to_string();
            meta.insert("uid".into(), json!(u));
            u
        }
    };
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let spec = child(root, "spec");
    default_job_spec(spec);
    let manual = spec.get("manualSelector").and_then(Value::as_bool) == Some(true);
    if !manual && spec.get("selector").is_none_or(Value::is_null) {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
        let labels = child(child(child(spec, "template"), "metadata"), "labels");
        set(labels, "batch.kubernetes.io/controller-uid", json!(uid));
        set(labels, "batch.kubernetes.io/job-name", json!(name));
        set(labels, "controller-uid", json!(uid));
        set(labels, "job-name", json!(name));
    }
}

/// CronJob defaults.
pub fn cronjob(obj: &mut Value) {
    let Some(spec) = spec_of(obj) else { return };
    set(spec, "concurrencyPolicy", json!("Allow"));
    set(spec, "suspend", json!(false));
    set(spec, "successfulJobsHistoryLimit", json!(3));
    set(spec, "failedJobsHistoryLimit", json!(1));
    let job_spec = child(child(spec, "jobTemplate"), "spec");
    default_job_spec(job_spec);
}

/// Service defaults.
pub fn service(obj: &mut Value) {
    let Some(spec) = spec_of(obj) else { return };
    set(spec, "type", json!("ClusterIP"));
    set(spec, "sessionAffinity", json!("None"));
    let ty = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if ty != "ExternalName" {
        set(spec, "internalTrafficPolicy", json!("Cluster"));
        // kerno allocates IPv4 cluster IPs only.
        set(spec, "ipFamilyPolicy", json!("SingleStack"));
        set(spec, "ipFamilies", json!(["IPv4"]));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        set(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    for port in objects_in(spec, "ports") {
        set(port, "protocol", json!("TCP"));
        if let Some(p) = port.get("port").cloned() {
            set(port, "targetPort", p);
        }
    }
}

/// Secret defaults. `stringData` is a write-only convenience: its entries
/// are merged into `data` (base64) and it is never stored, as in Kubernetes.
pub fn secret(obj: &mut Value) {
    use base64::Engine;
    if let Some(o) = obj.as_object_mut() {
        set(o, "type", json!("Opaque"));
        if let Some(Value::Object(strings)) = o.remove("stringData") {
            let data = child(o, "data");
            for (key, value) in strings {
                let text = value.as_str().unwrap_or_default();
                let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
                data.insert(key, Value::String(encoded));
            }
        }
    }
}

/// Namespace defaults.
pub fn namespace(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    set(child(o, "spec"), "finalizers", json!(["kubernetes"]));
    set(child(o, "status"), "phase", json!("Active"));
    // Kubernetes labels every namespace with its own name.
    let name = o
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(name) = name {
        set(
            child(child(o, "metadata"), "labels"),
            "kubernetes.io/metadata.name",
            json!(name),
        );
    }
}

/// PersistentVolumeClaim defaults.
pub fn pvc(obj: &mut Value) {
    if let Some(spec) = spec_of(obj) {
        set(spec, "volumeMode", json!("Filesystem"));
    }
}

/// PersistentVolume defaults.
pub fn pv(obj: &mut Value) {
    if let Some(spec) = spec_of(obj) {
        set(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
        set(spec, "volumeMode", json!("Filesystem"));
    }
}

/// RoleBinding and ClusterRoleBinding: a User or Group subject without an
/// apiGroup gets `rbac.authorization.k8s.io`, as Kubernetes defaults it.
pub fn binding_subjects(obj: &mut Value) {
    let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) else {
        return;
    };
    for subject in subjects.iter_mut().filter_map(Value::as_object_mut) {
        let kind = subject
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group_missing = subject
            .get("apiGroup")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if group_missing && (kind == "User" || kind == "Group") {
            subject.insert("apiGroup".into(), json!("rbac.authorization.k8s.io"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_defaults() {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "reg:5000/busybox:1.36", "imagePullPolicy": "Never"},
            {"name": "c", "image": "busybox:latest"}]}});
        pod(&mut p);
        let spec = &p["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(
            spec["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(spec["containers"][0]["terminationMessagePolicy"], "File");
        assert_eq!(spec["containers"][1]["imagePullPolicy"], "Never");
        assert_eq!(spec["containers"][2]["imagePullPolicy"], "Always");
        assert_eq!(default_pull_policy("reg:5000/busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:1.36"), "IfNotPresent");
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn deployment_defaults_keep_user_values() {
        let mut d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 3,
            "template": {"spec": {"containers": [{"name": "a", "image": "x:1"}]}}}});
        deployment(&mut d);
        assert_eq!(d["spec"]["replicas"], 3);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        let mut r = json!({"spec": {"strategy": {"type": "Recreate"}}});
        deployment(&mut r);
        assert_eq!(r["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(r["spec"]["replicas"], 1);
    }

    #[test]
    fn service_secret_namespace_defaults() {
        let mut s =
            json!({"spec": {"ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}});
        service(&mut s);
        assert_eq!(s["spec"]["type"], "ClusterIP");
        assert_eq!(s["spec"]["sessionAffinity"], "None");
        assert_eq!(
            s["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(s["spec"]["ports"][1]["targetPort"], "https");
        let mut sec = json!({"metadata": {"name": "s"}});
        secret(&mut sec);
        assert_eq!(sec["type"], "Opaque");
        let mut with_strings =
            json!({"stringData": {"password": "s3cr3t"}, "data": {"user": "YWRtaW4="}});
        secret(&mut with_strings);
        assert_eq!(
            with_strings["data"],
            json!({"user": "YWRtaW4=", "password": "czNjcjN0"})
        );
        assert!(with_strings.get("stringData").is_none());
        let mut ns = json!({"metadata": {"name": "team-a"}});
        namespace(&mut ns);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "team-a"
        );
    }

    #[test]
    fn job_and_workload_defaults() {
        let mut j = json!({"metadata": {"name": "pi", "uid": "u1"}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "a", "image": "x"}]}}}});
        job(&mut j);
        assert_eq!(j["spec"]["completions"], 1);
        assert_eq!(j["spec"]["parallelism"], 1);
        assert_eq!(j["spec"]["backoffLimit"], 6);
        assert_eq!(
            j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        assert_eq!(
            j["spec"]["template"]["metadata"]["labels"]["job-name"],
            "pi"
        );
        assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "Never");
        assert!(j["spec"].get("manualSelector").is_none());
        let mut c = json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {}}}}}});
        cronjob(&mut c);
        assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(c["spec"]["jobTemplate"]["spec"]["backoffLimit"], 6);
        let mut ds = json!({"spec": {}});
        daemonset(&mut ds);
        assert_eq!(
            ds["spec"]["updateStrategy"]["rollingUpdate"],
            json!({"maxUnavailable": 1, "maxSurge": 0})
        );
        let mut sts = json!({"spec": {}});
        statefulset(&mut sts);
        assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
            0
        );
    }

    #[test]
    fn binding_subjects_get_the_rbac_group_for_users_and_groups() {
        let mut b = json!({"subjects": [
            {"kind": "User", "name": "alice"},
            {"kind": "Group", "name": "dev", "apiGroup": ""},
            {"kind": "ServiceAccount", "name": "default", "namespace": "ns"}
        ]});
        binding_subjects(&mut b);
        assert_eq!(b["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(b["subjects"][1]["apiGroup"], "rbac.authorization.k8s.io");
        assert!(b["subjects"][2].get("apiGroup").is_none());
    }
}
