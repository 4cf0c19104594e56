//! The `pod-template-hash`: names a Deployment's ReplicaSet after its pod template.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// The label that distinguishes a Deployment's ReplicaSets (and their pods).
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The alphabet of Kubernetes' `rand.SafeEncodeString` (no vowels, no
/// look-alike characters), so hashes never spell words.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The template as JSON without the hash label: what "same template" compares.
pub fn template_without_hash(template: &PodTemplateSpec) -> Value {
    let mut value = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(labels) = value
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty()
            && let Some(meta) = value
                .pointer_mut("/metadata")
                .and_then(Value::as_object_mut)
        {
            meta.remove("labels");
        }
    }
    value
}

/// Whether two templates are equal apart from the hash label.
pub fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    template_without_hash(a) == template_without_hash(b)
}

/// FNV-1a (32 bit) of the template's JSON, salted with the collision count,
/// encoded like Kubernetes' `SafeEncodeString` of the decimal hash.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = template_without_hash(template).to_string().into_bytes();
    if let Some(count) = collision_count {
        bytes.extend_from_slice(&count.to_le_bytes());
    }
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash.to_string()
        .bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn template(image: &str, hash: Option<&str>) -> PodTemplateSpec {
        let mut labels = BTreeMap::from([("app".to_owned(), "web".to_owned())]);
        if let Some(h) = hash {
            labels.insert(POD_TEMPLATE_HASH.to_owned(), h.to_owned());
        }
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                ..ObjectMeta::default()
            }),
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                containers: vec![k8s_openapi::api::core::v1::Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn hash_ignores_the_hash_label_and_changes_with_the_template() {
        let a = pod_template_hash(&template("nginx:1", None), None);
        assert_eq!(a, pod_template_hash(&template("nginx:1", Some("x")), None));
        assert_ne!(a, pod_template_hash(&template("nginx:2", None), None));
        assert_ne!(a, pod_template_hash(&template("nginx:1", None), Some(1)));
        assert!(a.bytes().all(|b| SAFE_ALPHABET.contains(&b)), "{a}");
        assert!(equal_ignoring_hash(
            &template("nginx:1", Some("abc")),
            &template("nginx:1", None)
        ));
    }
}
