use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::json;

use super::*;

fn service(spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"app": "web"}},
        "spec": spec,
    }))
    .expect("service")
}

fn pod(name: &str, ip: &str, ready: bool, labels: serde_json::Value) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("{name}-uid"), "labels": labels},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
        .expect("pod"),
    )
}

fn web_service() -> Service {
    service(
        json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.10",
        "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}),
    )
}

#[test]
fn ready_and_not_ready_pods_are_kept_apart() {
    let pods = vec![
        pod("a", "10.0.0.2", true, json!({"app": "web"})),
        pod("b", "10.0.0.3", false, json!({"app": "web"})),
        pod("other", "10.0.0.4", true, json!({"app": "db"})),
    ];
    let ep = desired_endpoints(&web_service(), &pods).expect("managed");
    let subsets = ep.subsets.expect("subsets");
    assert_eq!(subsets.len(), 1);
    let ips = |a: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| {
        a.iter().flatten().map(|a| a.ip.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ips(&subsets[0].addresses), ["10.0.0.2"]);
    assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.0.0.3"]);
    let ports = subsets[0].ports.as_ref().expect("ports");
    assert_eq!(
        ports[0].port, 8080,
        "the named port resolves to the container port"
    );
    assert_eq!(
        ep.metadata
            .owner_references
            .as_ref()
            .map(|o| o[0].uid.as_str()),
        Some("svc-uid")
    );

    let slices = desired_slices(&web_service(), &pods);
    assert_eq!(slices.len(), 1);
    let slice = slices.values().next().expect("slice");
    let labels = slice.metadata.labels.as_ref().expect("labels");
    assert_eq!(
        labels.get(SERVICE_NAME_LABEL).map(String::as_str),
        Some("web")
    );
    assert_eq!(
        labels.get(MANAGED_BY_LABEL).map(String::as_str),
        Some(MANAGED_BY)
    );
    let readiness: Vec<_> = slice
        .endpoints
        .iter()
        .map(|e| {
            (
                e.addresses[0].clone(),
                e.conditions.as_ref().and_then(|c| c.ready),
            )
        })
        .collect();
    assert_eq!(
        readiness,
        [
            ("10.0.0.2".to_owned(), Some(true)),
            ("10.0.0.3".to_owned(), Some(false))
        ]
    );
    assert_eq!(slice.ports.as_ref().and_then(|p| p[0].port), Some(8080));
}

#[test]
fn named_ports_resolve_per_pod_into_separate_groups() {
    let mut other_port = (*pod("b", "10.0.0.3", true, json!({"app": "web"}))).clone();
    if let Some(spec) = other_port.spec.as_mut() {
        spec.containers[0].ports =
            serde_json::from_value(json!([{"name": "http", "containerPort": 9090}])).ok();
    }
    let no_port = {
        let mut p = (*pod("c", "10.0.0.4", true, json!({"app": "web"}))).clone();
        if let Some(spec) = p.spec.as_mut() {
            spec.containers[0].ports = None;
        }
        Arc::new(p)
    };
    let pods = vec![
        pod("a", "10.0.0.2", true, json!({"app": "web"})),
        Arc::new(other_port),
        no_port,
    ];
    let ep = desired_endpoints(&web_service(), &pods).expect("managed");
    let mut by_port: Vec<(i32, Vec<String>)> = ep
        .subsets
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s.ports.as_ref().map(|p| p[0].port).unwrap_or_default(),
                s.addresses.iter().flatten().map(|a| a.ip.clone()).collect(),
            )
        })
        .collect();
    by_port.sort();
    assert_eq!(
        by_port,
        [
            (8080, vec!["10.0.0.2".to_owned()]),
            (9090, vec!["10.0.0.3".to_owned()])
        ],
        "a pod without the named port is no endpoint"
    );
    let slices = desired_slices(&web_service(), &pods);
    assert_eq!(slices.len(), 2, "one slice per port set");
}

#[test]
fn selectorless_and_external_name_services_are_not_managed() {
    let pods = vec![pod("a", "10.0.0.2", true, json!({"app": "web"}))];
    let manual = service(json!({"ports": [{"port": 80}]}));
    assert!(desired_endpoints(&manual, &pods).is_none());
    assert!(desired_slices(&manual, &pods).is_empty());
    let external = service(
        json!({"type": "ExternalName", "externalName": "example.org",
        "selector": {"app": "web"}}),
    );
    assert!(desired_endpoints(&external, &pods).is_none());
    assert!(desired_slices(&external, &pods).is_empty());
}

#[test]
fn pods_without_ip_or_finished_or_terminating() {
    let mut finished = (*pod("done", "10.0.0.5", false, json!({"app": "web"}))).clone();
    if let Some(s) = finished.status.as_mut() {
        s.phase = Some("Succeeded".into());
    }
    let mut terminating = (*pod("going", "10.0.0.6", true, json!({"app": "web"}))).clone();
    terminating.metadata.deletion_timestamp =
        serde_json::from_value(json!("2026-01-01T00:00:00Z")).ok();
    let pods = vec![
        pod("pending", "", false, json!({"app": "web"})),
        Arc::new(finished),
        Arc::new(terminating),
    ];
    let slices = desired_slices(&web_service(), &pods);
    let slice = slices.values().next().expect("slice");
    assert_eq!(slice.endpoints.len(), 1);
    let conditions = slice.endpoints[0].conditions.clone().expect("conditions");
    assert_eq!(
        (conditions.ready, conditions.serving, conditions.terminating),
        (Some(false), Some(true), Some(true))
    );
}

#[test]
fn a_service_without_pods_gets_one_empty_slice_and_no_subsets() {
    let slices = desired_slices(&web_service(), &[]);
    assert_eq!(slices.len(), 1);
    assert!(slices.values().all(|s| s.endpoints.is_empty()));
    let ep = desired_endpoints(&web_service(), &[]).expect("managed");
    assert!(ep.subsets.is_none());
}

#[test]
fn publish_not_ready_addresses_makes_every_pod_ready() {
    let svc = service(
        json!({"selector": {"app": "web"}, "publishNotReadyAddresses": true,
        "ports": [{"port": 80, "targetPort": 8080}]}),
    );
    let pods = vec![pod("b", "10.0.0.3", false, json!({"app": "web"}))];
    let ep = desired_endpoints(&svc, &pods).expect("managed");
    let subsets = ep.subsets.expect("subsets");
    assert!(subsets[0].not_ready_addresses.is_none());
    assert_eq!(subsets[0].addresses.as_ref().map(Vec::len), Some(1));
}

#[test]
fn slices_are_chunked_by_a_hundred_and_named_stably() {
    let pods: Vec<_> = (0..150)
        .map(|i| {
            pod(
                &format!("p{i}"),
                &format!("10.0.{}.{}", i / 200, i % 200 + 1),
                true,
                json!({"app": "web"}),
            )
        })
        .collect();
    let a = desired_slices(&web_service(), &pods);
    let b = desired_slices(&web_service(), &pods);
    assert_eq!(a.len(), 2);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(
        a.values()
            .all(|s| s.endpoints.len() <= MAX_ENDPOINTS_PER_SLICE)
    );
    assert!(a.keys().all(|k| k.starts_with("web-") && k.len() <= 63));
}

#[test]
fn up_to_date_ignores_server_fields_and_sees_content_changes() {
    let pods = vec![pod("a", "10.0.0.2", true, json!({"app": "web"}))];
    let want = desired_slices(&web_service(), &pods)
        .into_values()
        .next()
        .expect("slice");
    let mut have = want.clone();
    have.metadata.resource_version = Some("42".into());
    have.metadata.uid = Some("x".into());
    assert!(slice_up_to_date(&have, &want));
    have.endpoints.clear();
    assert!(!slice_up_to_date(&have, &want));
}
