//! The admission chain: every create, update and delete passes through the
//! mutating modules, then the validating ones, before it is stored. Modules
//! are built in (namespace lifecycle, service account defaulting), loaded
//! in-process from shared libraries (the C ABI of `kerno-admission-ffi`), or
//! called over gRPC (admission plugins).

pub mod builtin;
pub mod dylib;
pub mod limit_ranger;
pub mod namespace_lifecycle;
pub mod quantity;
pub mod remote;
pub mod resource_quota;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::error::ApiError;

pub use kerno_admission_ffi::{Phase, Request as AdmissionRequest, Response as AdmissionResponse};

/// Whether `req` creates a core/v1 Pod (what the pod-defaulting built-ins review).
pub fn is_pod_create(req: &AdmissionRequest) -> bool {
    req.operation == "CREATE"
        && req.kind == "Pod"
        && req.group.is_empty()
        && req.sub_resource.is_empty()
}

/// One admission module.
#[async_trait]
pub trait AdmissionModule: Send + Sync {
    /// The module's name, for errors and audit.
    fn name(&self) -> &str;
    /// Whether it mutates or validates.
    fn phase(&self) -> Phase;
    /// Whether it wants to see `req` at all (cheap; checked before encoding
    /// anything for out-of-process modules).
    fn wants(&self, req: &AdmissionRequest) -> bool {
        let _ = req;
        true
    }
    /// The module's answer about `req`.
    async fn review(&self, req: &AdmissionRequest) -> Result<AdmissionResponse, ApiError>;
}

/// The configured modules, in order.
#[derive(Default)]
pub struct Chain {
    modules: Vec<Arc<dyn AdmissionModule>>,
}

impl Chain {
    /// A chain of `modules`; mutating ones run first, each phase in the given order.
    pub fn new(modules: Vec<Arc<dyn AdmissionModule>>) -> Self {
        Self { modules }
    }

    /// Whether the chain has no module.
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// The module names, mutating first.
    pub fn names(&self) -> Vec<String> {
        self.ordered().map(|m| m.name().to_owned()).collect()
    }

    fn ordered(&self) -> impl Iterator<Item = &Arc<dyn AdmissionModule>> {
        let mutating = self.modules.iter().filter(|m| m.phase() == Phase::Mutating);
        let validating = self
            .modules
            .iter()
            .filter(|m| m.phase() == Phase::Validating);
        mutating.chain(validating)
    }

    /// Runs `req` through every module: mutating modules may replace
    /// `req.object`, and the first refusal ends the chain with Kubernetes'
    /// `admission webhook "<name>" denied the request: <message>` (403).
    /// Returns the final object.
    pub async fn admit(&self, mut req: AdmissionRequest) -> Result<Value, ApiError> {
        for module in self.ordered() {
            if !module.wants(&req) {
                continue;
            }
            let answer = module.review(&req).await?;
            if !answer.allowed {
                let message = if answer.message.is_empty() {
                    "denied without a message".to_owned()
                } else {
                    answer.message
                };
                return Err(ApiError::Forbidden(format!(
                    "admission webhook {:?} denied the request: {message}",
                    module.name()
                )));
            }
            if let Some(object) = answer.object {
                if module.phase() == Phase::Validating {
                    tracing::warn!(
                        module = module.name(),
                        "a validating module returned an object; ignored"
                    );
                } else {
                    req.object = object;
                }
            }
        }
        Ok(req.object)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    struct Fixed {
        name: &'static str,
        phase: Phase,
        answer: AdmissionResponse,
    }

    #[async_trait]
    impl AdmissionModule for Fixed {
        fn name(&self) -> &str {
            self.name
        }
        fn phase(&self) -> Phase {
            self.phase
        }
        async fn review(&self, _req: &AdmissionRequest) -> Result<AdmissionResponse, ApiError> {
            Ok(self.answer.clone())
        }
    }

    fn pod_request() -> AdmissionRequest {
        AdmissionRequest {
            operation: "CREATE".into(),
            kind: "Pod".into(),
            object: json!({"metadata": {"name": "p"}}),
            ..AdmissionRequest::default()
        }
    }

    #[tokio::test]
    async fn mutating_modules_run_before_validating_ones_and_refusals_stop_the_chain() {
        let deny = Arc::new(Fixed {
            name: "deny-all",
            phase: Phase::Validating,
            answer: AdmissionResponse::deny("no pods today"),
        });
        let mutate = Arc::new(Fixed {
            name: "label",
            phase: Phase::Mutating,
            answer: AdmissionResponse::mutate(
                json!({"metadata": {"name": "p", "labels": {"a": "b"}}}),
            ),
        });
        let chain = Chain::new(vec![deny.clone(), mutate.clone()]);
        assert_eq!(chain.names(), ["label", "deny-all"]);
        let err = chain.admit(pod_request()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"admission webhook "deny-all" denied the request: no pods today"#
        );
        let chain = Chain::new(vec![mutate]);
        let object = chain.admit(pod_request()).await.unwrap();
        assert_eq!(object["metadata"]["labels"]["a"], "b");
    }
}
