//! Translating a pod spec into the runtime's sandbox and container configs.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod};
use kerno_proto::runtime::v1 as rt;

use crate::config::KubeletConfig;
use crate::env::expand;
use crate::quantity;

/// Label: the pod's uid (adoption finds sandboxes and containers by it).
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
/// Label: the pod's name.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
/// Label: the pod's namespace.
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Label: the container's name.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
/// Label: `init` or `regular`.
pub const LABEL_CONTAINER_KIND: &str = "kerno.dev/container-kind";
/// Label: which kubelet (node) created the object.
pub const LABEL_NODE: &str = "kerno.dev/node";

/// The labels identifying `pod`'s sandbox on `node`.
pub fn sandbox_labels(pod: &Pod, node: &str) -> HashMap<String, String> {
    HashMap::from([
        (
            LABEL_POD_UID.to_owned(),
            pod.metadata.uid.clone().unwrap_or_default(),
        ),
        (
            LABEL_POD_NAME.to_owned(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        (
            LABEL_POD_NAMESPACE.to_owned(),
            pod.metadata.namespace.clone().unwrap_or_default(),
        ),
        (LABEL_NODE.to_owned(), node.to_owned()),
    ])
}

/// Where a pod's container logs go: `<rootDir>/logs/<ns>_<name>_<uid>`.
pub fn log_directory(cfg: &KubeletConfig, pod: &Pod) -> PathBuf {
    let m = &pod.metadata;
    cfg.root_dir.join("logs").join(format!(
        "{}_{}_{}",
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
        m.uid.as_deref().unwrap_or_default()
    ))
}

/// The pod's resolv.conf per its dnsPolicy and dnsConfig; empty keeps the node's.
pub fn resolv_conf(cfg: &KubeletConfig, pod: &Pod) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network == Some(true);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster_first = match policy {
        "ClusterFirst" => !host_network,
        "ClusterFirstWithHostNet" => true,
        _ => false,
    };
    let mut nameservers: Vec<String> = Vec::new();
    let mut searches: Vec<String> = Vec::new();
    let mut options: Vec<String> = Vec::new();
    if cluster_first && let Some(dns) = &cfg.cluster_dns {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let domain = cfg.cluster_domain();
        nameservers.push(dns.clone());
        searches.extend([
            format!("{ns}.svc.{domain}"),
            format!("svc.{domain}"),
            domain.to_owned(),
        ]);
        options.push("ndots:5".to_owned());
    }
    if let Some(dc) = &spec.dns_config {
        nameservers.extend(dc.nameservers.iter().flatten().cloned());
        searches.extend(dc.searches.iter().flatten().cloned());
        for o in dc.options.iter().flatten() {
            let name = o.name.clone().unwrap_or_default();
            options.retain(|existing| existing.split(':').next() != Some(name.as_str()));
            options.push(match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name,
            });
        }
    }
    if nameservers.is_empty() && searches.is_empty() && policy != "None" {
        return String::new();
    }
    let mut out = String::new();
    for ns in nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// The sandbox config of `pod`.
pub fn sandbox_config(cfg: &KubeletConfig, pod: &Pod, attempt: u32) -> rt::PodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let mut hostname = spec.hostname.clone().unwrap_or_else(|| name.clone());
    hostname.truncate(63);
    rt::PodSandboxConfig {
        metadata: Some(rt::PodSandboxMetadata {
            name,
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            attempt,
        }),
        hostname,
        labels: sandbox_labels(pod, &cfg.node_name),
        annotations: HashMap::new(),
        log_directory: log_directory(cfg, pod).to_string_lossy().into_owned(),
        resolv_conf: resolv_conf(cfg, pod),
        hosts: String::new(),
        resources: None,
        host_network: spec.host_network == Some(true),
        runtime_handler: spec.runtime_class_name.clone().unwrap_or_default(),
    }
}

/// The runtime resources of a container (cpu request/limit, memory limit).
pub fn resources(container: &Container) -> rt::Resources {
    let res = container.resources.as_ref();
    let get = |section: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >,
               name: &str,
               parse: fn(&str) -> Option<i64>| {
        section
            .and_then(|m| m.get(name))
            .and_then(|q| parse(&q.0))
            .unwrap_or(0)
    };
    let limits = res.and_then(|r| r.limits.as_ref());
    let requests = res.and_then(|r| r.requests.as_ref());
    let cpu_limit = get(limits, "cpu", quantity::cpu_millis);
    let cpu_request = get(requests, "cpu", quantity::cpu_millis);
    rt::Resources {
        // A limit without a request implies the request (Kubernetes defaulting).
        cpu_millis_request: if cpu_request == 0 {
            cpu_limit
        } else {
            cpu_request
        },
        cpu_millis_limit: cpu_limit,
        memory_limit_bytes: get(limits, "memory", quantity::value),
    }
}

/// Why a container config could not be built (`CreateContainerConfigError`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// A volumeMount names no volume of the pod.
    #[error("cannot find volume \"{0}\" to mount into container \"{1}\"")]
    UnknownVolume(String, String),
    /// A subPath escapes its volume.
    #[error("invalid subPath \"{0}\": must be a relative path without '..'")]
    BadSubPath(String),
}

/// The runtime config of `container` of `pod` at restart `attempt`.
pub fn container_config(
    pod: &Pod,
    container: &Container,
    kind: &str,
    env: &[(String, String)],
    volumes: &BTreeMap<String, PathBuf>,
    attempt: u32,
) -> Result<rt::ContainerConfig, SpecError> {
    let vars: BTreeMap<String, String> = env.iter().cloned().collect();
    let expand_all = |v: &Option<Vec<String>>| -> Vec<String> {
        v.iter().flatten().map(|s| expand(s, &vars)).collect()
    };
    let mut mounts = Vec::new();
    for m in container.volume_mounts.iter().flatten() {
        let base = volumes
            .get(&m.name)
            .ok_or_else(|| SpecError::UnknownVolume(m.name.clone(), container.name.clone()))?;
        let mut host = base.clone();
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            let ok = std::path::Path::new(sub)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !ok {
                return Err(SpecError::BadSubPath(sub.to_owned()));
            }
            host = host.join(sub);
            // Kubernetes creates a missing subPath as a directory.
            if !host.exists() {
                let _ = std::fs::create_dir_all(&host);
            }
        }
        mounts.push(rt::Mount {
            container_path: m.mount_path.clone(),
            host_path: host.to_string_lossy().into_owned(),
            readonly: m.read_only == Some(true),
        });
    }
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = container.security_context.as_ref();
    let mut labels = sandbox_labels(pod, "");
    labels.remove(LABEL_NODE);
    labels.insert(LABEL_CONTAINER_NAME.to_owned(), container.name.clone());
    labels.insert(LABEL_CONTAINER_KIND.to_owned(), kind.to_owned());
    Ok(rt::ContainerConfig {
        metadata: Some(rt::ContainerMetadata {
            name: container.name.clone(),
            attempt,
        }),
        image: container.image.clone().unwrap_or_default(),
        command: expand_all(&container.command),
        args: expand_all(&container.args),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs: env
            .iter()
            .map(|(k, v)| rt::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        mounts,
        resources: Some(resources(container)),
        labels,
        annotations: HashMap::new(),
        log_path: format!("{}/{attempt}.log", container.name),
        tty: container.tty == Some(true),
        stdin: container.stdin == Some(true),
        run_as_user: sc
            .and_then(|s| s.run_as_user)
            .or_else(|| pod_sc.and_then(|s| s.run_as_user)),
        run_as_group: sc
            .and_then(|s| s.run_as_group)
            .or_else(|| pod_sc.and_then(|s| s.run_as_group)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> KubeletConfig {
        serde_json::from_value(serde_json::json!({
            "nodeName": "n1", "runtimeEndpoint": "unix:///r", "networkEndpoint": "unix:///n",
            "rootDir": "/var/lib/kerno", "clusterDNS": "10.96.0.10"
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "team", "uid": "u-1"}, "spec": spec
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn resolv_conf_follows_dns_policy() {
        let p = pod(serde_json::json!({"containers": []}));
        assert_eq!(
            resolv_conf(&cfg(), &p),
            "nameserver 10.96.0.10\nsearch team.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        );
        let p = pod(serde_json::json!({"containers": [], "dnsPolicy": "Default"}));
        assert_eq!(resolv_conf(&cfg(), &p), "");
        let p = pod(serde_json::json!({"containers": [], "hostNetwork": true}));
        assert_eq!(resolv_conf(&cfg(), &p), "");
        let p = pod(serde_json::json!({"containers": [], "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["1.2.3.4"], "options": [{"name": "ndots", "value": "2"}]}}));
        assert_eq!(
            resolv_conf(&cfg(), &p),
            "nameserver 1.2.3.4\noptions ndots:2\n"
        );
    }

    #[test]
    fn container_config_expands_args_and_maps_mounts_and_resources() {
        let p = pod(serde_json::json!({"containers": [{
            "name": "c", "image": "busybox", "command": ["sh", "-c"], "args": ["echo $(GREETING)"],
            "workingDir": "/work",
            "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "memory": "64Mi"}},
            "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true},
                             {"name": "data", "mountPath": "/sub", "subPath": "x"}]
        }]}));
        let c = p
            .spec
            .as_ref()
            .map(|s| s.containers[0].clone())
            .unwrap_or_default();
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let vols = BTreeMap::from([("data".to_owned(), tmp.path().to_path_buf())]);
        let env = [("GREETING".to_owned(), "hi".to_owned())];
        let cc = container_config(&p, &c, "regular", &env, &vols, 3).unwrap_or_default();
        assert_eq!(cc.command, vec!["sh", "-c"]);
        assert_eq!(cc.args, vec!["echo hi"]);
        assert_eq!(cc.working_dir, "/work");
        assert_eq!(cc.log_path, "c/3.log");
        assert_eq!(cc.mounts.len(), 2);
        assert!(cc.mounts[0].readonly);
        assert!(tmp.path().join("x").is_dir());
        let r = cc.resources.unwrap_or_default();
        assert_eq!(
            (
                r.cpu_millis_request,
                r.cpu_millis_limit,
                r.memory_limit_bytes
            ),
            (250, 1000, 64 << 20)
        );
        assert_eq!(
            cc.labels.get(LABEL_CONTAINER_NAME).map(String::as_str),
            Some("c")
        );
        let bad = BTreeMap::new();
        assert_eq!(
            container_config(&p, &c, "regular", &env, &bad, 0).err(),
            Some(SpecError::UnknownVolume("data".into(), "c".into()))
        );
    }
}
