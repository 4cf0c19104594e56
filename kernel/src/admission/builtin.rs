//! Built-in admission modules.

use async_trait::async_trait;
use serde_json::json;

use super::{AdmissionModule, AdmissionRequest, AdmissionResponse, Phase};
use crate::error::ApiError;

/// ServiceAccount: a pod without `spec.serviceAccountName` runs as the
/// namespace's `default` ServiceAccount (Kubernetes' ServiceAccount plugin).
pub struct ServiceAccountDefault;

#[async_trait]
impl AdmissionModule for ServiceAccountDefault {
    fn name(&self) -> &str {
        "ServiceAccount"
    }

    fn phase(&self) -> Phase {
        Phase::Mutating
    }

    fn wants(&self, req: &AdmissionRequest) -> bool {
        super::is_pod_create(req)
    }

    async fn review(&self, req: &AdmissionRequest) -> Result<AdmissionResponse, ApiError> {
        let named = req.object["spec"]["serviceAccountName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        if named {
            return Ok(AdmissionResponse::allow());
        }
        let mut pod = req.object.clone();
        if let Some(spec) = pod.get_mut("spec").and_then(|s| s.as_object_mut()) {
            spec.insert("serviceAccountName".into(), json!("default"));
            // The deprecated alias, as Kubernetes stores it: the update
            // defaulting would add it later otherwise, changing the spec.
            spec.entry("serviceAccount")
                .or_insert_with(|| json!("default"));
        }
        Ok(AdmissionResponse::mutate(pod))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pods_default_to_the_default_service_account() {
        let req = AdmissionRequest {
            operation: "CREATE".into(),
            kind: "Pod".into(),
            object: json!({"spec": {"containers": []}}),
            ..AdmissionRequest::default()
        };
        assert!(ServiceAccountDefault.wants(&req));
        let answer = ServiceAccountDefault.review(&req).await.unwrap();
        assert_eq!(
            answer.object.unwrap()["spec"]["serviceAccountName"],
            "default"
        );
        let named = AdmissionRequest {
            object: json!({"spec": {"serviceAccountName": "builder"}}),
            ..req
        };
        assert_eq!(
            ServiceAccountDefault.review(&named).await.unwrap(),
            AdmissionResponse::allow()
        );
    }
}
