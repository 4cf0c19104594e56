//! A validating admission module: pods whose containers use an image without
//! an explicit tag or digest (`busybox` rather than `busybox:1.36`) are
//! refused, with a message naming the container.

use kerno_admission_ffi::{Request, Response};

kerno_admission_ffi::export_admission_module!(Validating, review);

/// Refuses pods (on create and update) with untagged images.
pub fn review(req: &Request) -> Response {
    if req.kind != "Pod" || !req.group.is_empty() || req.operation == "DELETE" {
        return Response::allow();
    }
    let spec = &req.object["spec"];
    for list in ["initContainers", "containers"] {
        for c in spec[list].as_array().into_iter().flatten() {
            let image = c["image"].as_str().unwrap_or_default();
            if !has_tag_or_digest(image) {
                return Response::deny(format!(
                    "container {:?} uses image {image:?} without a tag: name a version, e.g. {image}:1.0",
                    c["name"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    Response::allow()
}

/// `name:tag` or `name@sha256:…`; a registry port (`host:5000/name`) is not a tag.
fn has_tag_or_digest(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_digests_and_registry_ports() {
        assert!(has_tag_or_digest("busybox:1.36"));
        assert!(has_tag_or_digest("busybox@sha256:abc"));
        assert!(has_tag_or_digest("registry:5000/team/app:v2"));
        assert!(!has_tag_or_digest("registry:5000/team/app"));
        assert!(!has_tag_or_digest("busybox"));
    }

    #[test]
    fn untagged_images_are_refused_with_the_container_name() {
        let req = Request {
            operation: "CREATE".into(),
            kind: "Pod".into(),
            object: serde_json::json!({"spec": {"containers": [
                {"name": "ok", "image": "busybox:1.36"}, {"name": "bad", "image": "busybox"}]}}),
            ..Request::default()
        };
        let answer = review(&req);
        assert!(!answer.allowed);
        assert!(answer.message.contains("\"bad\""), "{}", answer.message);
    }
}
