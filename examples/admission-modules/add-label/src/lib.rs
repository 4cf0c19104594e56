//! A mutating admission module: every pod created gets the label
//! `kerno.dev/admitted-by: add-label`.
//!
//! Build with `cargo build -p kerno-admission-add-label` and list
//! `target/debug/libkerno_admission_add_label.so` under
//! `kernel.admission.modules` in the config file.

use kerno_admission_ffi::{Request, Response};

/// The label this module adds.
pub const LABEL: &str = "kerno.dev/admitted-by";

kerno_admission_ffi::export_admission_module!(Mutating, review);

/// Adds the label to pods on create; everything else passes unchanged.
pub fn review(req: &Request) -> Response {
    if req.operation != "CREATE" || req.kind != "Pod" || !req.group.is_empty() {
        return Response::allow();
    }
    let mut pod = req.object.clone();
    let Some(meta) = pod.get_mut("metadata").and_then(|m| m.as_object_mut()) else {
        return Response::deny("the pod has no metadata");
    };
    let labels = meta
        .entry("labels")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(LABEL.into(), "add-label".into());
    }
    Response::mutate(pod)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_the_label_and_others_pass() {
        let req = Request {
            operation: "CREATE".into(),
            kind: "Pod".into(),
            object: serde_json::json!({"metadata": {"name": "p"}}),
            ..Request::default()
        };
        let answer = review(&req);
        assert!(answer.allowed);
        assert_eq!(
            answer.object.unwrap()["metadata"]["labels"][LABEL],
            "add-label"
        );
        let cm = Request {
            kind: "ConfigMap".into(),
            ..req
        };
        assert_eq!(review(&cm), Response::allow());
    }
}
