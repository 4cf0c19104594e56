//! Resource quantities as integers: CPU in millicores, everything else in
//! units (bytes for memory), and a pod's effective requests.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Parses a Kubernetes quantity, scaled by `scale` (1000 for millicores).
/// Unparseable quantities count as 0 (the kernel validates them on write).
pub fn parse_quantity(q: &str, scale: i64) -> i64 {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let Ok(number) = number.parse::<f64>() else {
        return 0;
    };
    let multiplier: f64 = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "u" => 1e-6,
        "n" => 1e-9,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "Pi" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "Ei" => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        s if s.starts_with(['e', 'E']) => match s[1..].parse::<i32>() {
            Ok(exp) => 10f64.powi(exp),
            Err(_) => return 0,
        },
        _ => return 0,
    };
    // Round up like Kubernetes' Value()/MilliValue().
    (number * multiplier * scale as f64).ceil() as i64
}

/// An amount of every schedulable resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in millicores.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Number of pods.
    pub pods: i64,
    /// Extended and other resources, by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// From a resource list (capacity, allocatable or requests).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Self {
        let mut r = Resources::default();
        for (name, q) in list {
            r.set(name, &q.0);
        }
        r
    }

    fn set(&mut self, name: &str, q: &str) {
        match name {
            "cpu" => self.milli_cpu = parse_quantity(q, 1000),
            "memory" => self.memory = parse_quantity(q, 1),
            "ephemeral-storage" => self.ephemeral_storage = parse_quantity(q, 1),
            "pods" => self.pods = parse_quantity(q, 1),
            _ => {
                self.scalar.insert(name.to_owned(), parse_quantity(q, 1));
            }
        }
    }

    /// Adds `other` to this.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Subtracts `other` from this.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) -= v;
        }
    }

    /// Each resource the larger of this and `other`.
    fn max(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }
}

/// What a pod asks for: the sum of its containers' requests, at least the
/// largest init container's, plus overhead; `pods` is 1.
pub fn pod_requests(pod: &Pod) -> Resources {
    let mut total = Resources::default();
    let Some(spec) = pod.spec.as_ref() else {
        total.pods = 1;
        return total;
    };
    for c in &spec.containers {
        if let Some(req) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) {
            total.add(&Resources::from_list(req));
        }
    }
    for c in spec.init_containers.iter().flatten() {
        if let Some(req) = c.resources.as_ref().and_then(|r| r.requests.as_ref()) {
            total.max(&Resources::from_list(req));
        }
    }
    if let Some(overhead) = spec.overhead.as_ref() {
        total.add(&Resources::from_list(overhead));
    }
    total.pods = 1;
    total
}

/// The pod's priority (0 when unset).
pub fn pod_priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};

    #[test]
    fn quantities_parse_with_suffixes() {
        assert_eq!(parse_quantity("100m", 1000), 100);
        assert_eq!(parse_quantity("2", 1000), 2000);
        assert_eq!(parse_quantity("1.5", 1000), 1500);
        assert_eq!(parse_quantity("128Mi", 1), 128 * 1024 * 1024);
        assert_eq!(parse_quantity("1G", 1), 1_000_000_000);
        assert_eq!(parse_quantity("1e3", 1), 1000);
        assert_eq!(parse_quantity("junk", 1), 0);
    }

    fn container(cpu: &str) -> Container {
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([("cpu".into(), Quantity(cpu.into()))])),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        }
    }

    #[test]
    fn requests_sum_containers_and_cover_init_containers() {
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![container("100m"), container("200m")],
                init_containers: Some(vec![container("500m")]),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        let r = pod_requests(&pod);
        assert_eq!(r.milli_cpu, 500);
        assert_eq!(r.pods, 1);
    }
}
