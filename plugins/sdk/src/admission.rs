//! Admission plugins: a plugin that takes part in the kernel's admission
//! chain implements [`AdmissionHandler`] and declares its [`Hook`]s on the
//! [`PluginBuilder`](crate::plugin::PluginBuilder) with
//! [`admission`](crate::plugin::PluginBuilder::admission); the SDK serves
//! `kerno.admission.v1.Admission` and registers the hooks.
//!
//! ```no_run
//! use kerno_sdk::admission::{AdmissionHandler, Hook, Review, Verdict};
//! use kerno_sdk::plugin::PluginBuilder;
//!
//! struct NoLatest;
//!
//! #[kerno_sdk::async_trait]
//! impl AdmissionHandler for NoLatest {
//!     async fn review(&self, review: Review) -> Verdict {
//!         let latest = review.object["spec"]["containers"]
//!             .as_array()
//!             .into_iter()
//!             .flatten()
//!             .any(|c| c["image"].as_str().is_some_and(|i| i.ends_with(":latest")));
//!         if latest { Verdict::deny("images must not be :latest") } else { Verdict::allow() }
//!     }
//! }
//!
//! # async fn run() -> Result<(), kerno_sdk::plugin::PluginError> {
//! PluginBuilder::new("admission", "0.1.0")
//!     .admission(vec![Hook::validating("no-latest.example.com").on(&["CREATE", "UPDATE"], &[""], &["pods"])], NoLatest)
//!     .run(|ctx| async move { ctx.shutdown.wait().await; Ok::<(), std::convert::Infallible>(()) })
//!     .await
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kerno_proto::admission::v1 as apb;
use kerno_proto::plugin::v1 as ppb;
use serde_json::Value;

/// What happens when a hook cannot answer in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// The kernel refuses the write.
    Fail,
    /// The kernel lets the write through.
    Ignore,
}

/// One admission hook, as declared at registration.
#[derive(Clone, Debug)]
pub struct Hook {
    proto: ppb::AdmissionHook,
}

impl Hook {
    fn new(name: &str, t: ppb::admission_hook::Type) -> Self {
        Self {
            proto: ppb::AdmissionHook {
                name: name.to_owned(),
                r#type: t as i32,
                rules: Vec::new(),
                timeout_ms: 0,
                failure_policy: ppb::admission_hook::FailurePolicy::Fail as i32,
            },
        }
    }

    /// A hook that may change objects (runs before every validating hook).
    pub fn mutating(name: &str) -> Self {
        Self::new(name, ppb::admission_hook::Type::Mutating)
    }

    /// A hook that may only allow or refuse.
    pub fn validating(name: &str) -> Self {
        Self::new(name, ppb::admission_hook::Type::Validating)
    }

    /// Adds a rule: these operations (`CREATE`, `UPDATE`, `DELETE`, `*`) on
    /// these groups (`""` for core, `*`) and resources (`pods`, `pods/status`, `*`).
    pub fn on(mut self, operations: &[&str], groups: &[&str], resources: &[&str]) -> Self {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        self.proto.rules.push(ppb::AdmissionRule {
            operations: owned(operations),
            api_groups: owned(groups),
            resources: owned(resources),
        });
        self
    }

    /// How long the kernel waits (default 10 s, at most 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.proto.timeout_ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        self
    }

    /// What happens when the hook cannot answer (default [`FailurePolicy::Fail`]).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.proto.failure_policy = match policy {
            FailurePolicy::Fail => ppb::admission_hook::FailurePolicy::Fail,
            FailurePolicy::Ignore => ppb::admission_hook::FailurePolicy::Ignore,
        } as i32;
        self
    }

    /// The registration message.
    pub fn to_proto(&self) -> ppb::AdmissionHook {
        self.proto.clone()
    }
}

/// One write to review, decoded.
#[derive(Clone, Debug, Default)]
pub struct Review {
    /// The hook being called.
    pub hook: String,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: String,
    /// API group ("" for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource.
    pub resource: String,
    /// Kind.
    pub kind: String,
    /// Subresource ("" for the main resource).
    pub sub_resource: String,
    /// Namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// Object name.
    pub name: String,
    /// The requesting user's name.
    pub user: String,
    /// The requesting user's groups.
    pub groups: Vec<String>,
    /// The object being written (`Null` on DELETE).
    pub object: Value,
    /// The stored object (`Null` on CREATE).
    pub old_object: Value,
    /// A dry run: the handler must have no side effects.
    pub dry_run: bool,
}

/// One field problem of an [`Verdict::invalid`] refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldCause {
    /// Kubernetes' cause type, e.g. `FieldValueInvalid`.
    pub reason: String,
    /// The field path, e.g. `spec.clusterIPs`.
    pub field: String,
    /// The full message.
    pub message: String,
}

/// A handler's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    proto: apb::ReviewResponse,
}

impl Verdict {
    /// Allowed, unchanged.
    pub fn allow() -> Self {
        Self {
            proto: apb::ReviewResponse {
                allowed: true,
                ..Default::default()
            },
        }
    }

    /// Refused with `message` (403 Forbidden).
    pub fn deny(message: impl Into<String>) -> Self {
        Self {
            proto: apb::ReviewResponse {
                allowed: false,
                message: message.into(),
                code: 403,
                reason: "Forbidden".into(),
                ..Default::default()
            },
        }
    }

    /// Refused as 422 Invalid with these field problems.
    pub fn invalid(causes: Vec<FieldCause>) -> Self {
        let message = causes
            .iter()
            .map(|c| c.message.clone())
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            proto: apb::ReviewResponse {
                allowed: false,
                message,
                code: 422,
                reason: "Invalid".into(),
                causes: causes
                    .into_iter()
                    .map(|c| apb::FieldCause {
                        reason: c.reason,
                        field: c.field,
                        message: c.message,
                    })
                    .collect(),
                ..Default::default()
            },
        }
    }

    /// Allowed, with the object replaced by `object` (mutating hooks).
    pub fn mutate(object: &Value) -> Self {
        Self {
            proto: apb::ReviewResponse {
                allowed: true,
                object: serde_json::to_vec(object).unwrap_or_default(),
                ..Default::default()
            },
        }
    }

    /// Allowed, with this RFC 6902 JSON patch applied (mutating hooks).
    pub fn patch(operations: &Value) -> Self {
        Self {
            proto: apb::ReviewResponse {
                allowed: true,
                patch: serde_json::to_vec(operations).unwrap_or_default(),
                ..Default::default()
            },
        }
    }

    /// Whether the write may go on.
    pub fn allowed(&self) -> bool {
        self.proto.allowed
    }

    /// The refusal's message.
    pub fn message(&self) -> &str {
        &self.proto.message
    }

    /// The wire message.
    pub fn into_proto(self) -> apb::ReviewResponse {
        self.proto
    }
}

/// What an admission plugin implements: one answer per reviewed write, for
/// any of its hooks ([`Review::hook`] says which).
#[async_trait]
pub trait AdmissionHandler: Send + Sync + 'static {
    /// Reviews one write.
    async fn review(&self, review: Review) -> Verdict;
}

fn decode(bytes: &[u8], what: &str) -> Result<Value, tonic::Status> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .map_err(|e| tonic::Status::invalid_argument(format!("{what} is not JSON: {e}")))
}

/// The gRPC service over a handler.
pub struct AdmissionService<H> {
    handler: Arc<H>,
}

impl<H: AdmissionHandler> AdmissionService<H> {
    /// A service answering with `handler`.
    pub fn new(handler: H) -> Self {
        Self {
            handler: Arc::new(handler),
        }
    }

    /// The tonic server to add to a plugin's routes.
    pub fn into_server(self) -> apb::admission_server::AdmissionServer<Self> {
        apb::admission_server::AdmissionServer::new(self)
    }
}

#[async_trait]
impl<H: AdmissionHandler> apb::admission_server::Admission for AdmissionService<H> {
    async fn review(
        &self,
        request: tonic::Request<apb::ReviewRequest>,
    ) -> Result<tonic::Response<apb::ReviewResponse>, tonic::Status> {
        let r = request.into_inner();
        let user = r.user.unwrap_or_default();
        let review = Review {
            object: decode(&r.object, "object")?,
            old_object: decode(&r.old_object, "oldObject")?,
            hook: r.hook,
            operation: r.operation,
            group: r.group,
            version: r.version,
            resource: r.resource,
            kind: r.kind,
            sub_resource: r.sub_resource,
            namespace: r.namespace,
            name: r.name,
            user: user.username,
            groups: user.groups,
            dry_run: r.dry_run,
        };
        let verdict = self.handler.review(review).await;
        Ok(tonic::Response::new(verdict.into_proto()))
    }
}

#[cfg(test)]
mod tests {
    use kerno_proto::admission::v1::admission_server::Admission;
    use serde_json::json;

    use super::*;

    struct Label;

    #[async_trait]
    impl AdmissionHandler for Label {
        async fn review(&self, review: Review) -> Verdict {
            if review.name == "refused" {
                return Verdict::deny("not this one");
            }
            let mut object = review.object;
            object["metadata"]["labels"] = json!({"hook": review.hook});
            Verdict::mutate(&object)
        }
    }

    #[tokio::test]
    async fn the_service_decodes_requests_and_encodes_verdicts() {
        let service = AdmissionService::new(Label);
        let reply = service
            .review(tonic::Request::new(apb::ReviewRequest {
                hook: "label".into(),
                name: "p".into(),
                object: br#"{"metadata":{"name":"p"}}"#.to_vec(),
                ..Default::default()
            }))
            .await
            .expect("review")
            .into_inner();
        assert!(reply.allowed);
        let object: Value = serde_json::from_slice(&reply.object).expect("json");
        assert_eq!(object["metadata"]["labels"]["hook"], "label");

        let refused = service
            .review(tonic::Request::new(apb::ReviewRequest {
                name: "refused".into(),
                ..Default::default()
            }))
            .await
            .expect("review")
            .into_inner();
        assert!(!refused.allowed);
        assert_eq!(refused.code, 403);
        assert_eq!(refused.message, "not this one");

        let garbled = service
            .review(tonic::Request::new(apb::ReviewRequest {
                object: b"{nope".to_vec(),
                ..Default::default()
            }))
            .await;
        assert_eq!(
            garbled.expect_err("garbled").code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn hooks_and_invalid_verdicts_encode_as_declared() {
        let hook = Hook::mutating("m")
            .on(&["CREATE"], &[""], &["services"])
            .timeout(Duration::from_millis(250))
            .failure_policy(FailurePolicy::Ignore)
            .to_proto();
        assert_eq!(hook.timeout_ms, 250);
        assert_eq!(
            hook.failure_policy,
            ppb::admission_hook::FailurePolicy::Ignore as i32
        );
        assert_eq!(hook.rules[0].resources, ["services"]);
        let invalid = Verdict::invalid(vec![FieldCause {
            reason: "FieldValueInvalid".into(),
            field: "spec.clusterIPs".into(),
            message: "taken".into(),
        }])
        .into_proto();
        assert_eq!(invalid.code, 422);
        assert_eq!(invalid.causes.len(), 1);
    }
}
