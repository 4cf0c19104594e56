//! NamespaceLifecycle on deletes: the initial namespaces (`default`,
//! `kube-system`, `kube-public`, `kube-node-lease`) cannot be deleted, with
//! Kubernetes' `namespaces "default" is forbidden: this namespace may not
//! be deleted`. (Creates in a missing or terminating namespace are refused
//! on the write path itself, before defaulting, as Kubernetes words them.)

use async_trait::async_trait;

use super::{AdmissionModule, AdmissionRequest, AdmissionResponse, Phase};
use crate::error::ApiError;

/// The NamespaceLifecycle module.
pub struct NamespaceLifecycle;

#[async_trait]
impl AdmissionModule for NamespaceLifecycle {
    fn name(&self) -> &str {
        "NamespaceLifecycle"
    }

    fn phase(&self) -> Phase {
        Phase::Validating
    }

    fn wants(&self, req: &AdmissionRequest) -> bool {
        req.operation == "DELETE" && req.group.is_empty() && req.resource == "namespaces"
    }

    async fn review(&self, req: &AdmissionRequest) -> Result<AdmissionResponse, ApiError> {
        if crate::server::INITIAL_NAMESPACES.contains(&req.name.as_str()) {
            return Err(ApiError::Forbidden(
                "this namespace may not be deleted".into(),
            ));
        }
        Ok(AdmissionResponse::allow())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn initial_namespaces_may_not_be_deleted() {
        let mut req = AdmissionRequest {
            operation: "DELETE".into(),
            kind: "Namespace".into(),
            resource: "namespaces".into(),
            name: "kube-node-lease".into(),
            ..AdmissionRequest::default()
        };
        assert!(NamespaceLifecycle.wants(&req));
        let err = NamespaceLifecycle.review(&req).await.expect_err("refused");
        assert_eq!(err.to_string(), "this namespace may not be deleted");
        req.name = "team".into();
        assert_eq!(
            NamespaceLifecycle.review(&req).await.expect("allowed"),
            AdmissionResponse::allow()
        );
    }
}
