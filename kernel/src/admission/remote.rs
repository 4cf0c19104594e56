//! Admission plugins: hooks that plugins declare at registration and serve
//! over gRPC (`kerno.admission.v1.Admission`), kerno's webhooks.
//!
//! [`RemoteHooks`] holds every registered hook; the chain holds two
//! [`RemotePhase`] modules over it, one mutating and one validating, placed
//! after the in-process modules of their phase. Each call has the hook's
//! timeout; a hook that cannot answer (unreachable, timed out, a gRPC error,
//! an unusable answer) is skipped under `Ignore` and refuses the write under
//! `Fail`, as Kubernetes' webhook failure policies do.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use hyper_util::rt::TokioIo;
use kerno_proto::admission::v1 as apb;
use kerno_proto::plugin::v1 as ppb;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint as TonicEndpoint};

use super::{AdmissionModule, AdmissionRequest, AdmissionResponse, Phase};
use crate::error::{ApiError, ErrorTarget, FieldError};

/// Used when a hook declares no timeout (Kubernetes' webhook default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest timeout a hook may declare (as Kubernetes caps webhooks).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a registration's hooks were refused.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The plugin's endpoint is not `unix:///path` or `tcp://host:port`.
    #[error("admission endpoint {0:?} is not unix:///path or tcp://host:port")]
    Endpoint(String),
    /// A hook without a name, or two with one name.
    #[error("admission hook names must be unique and not empty (got {0:?})")]
    Name(String),
    /// A hook that is neither mutating nor validating.
    #[error("admission hook {0:?} must be TYPE_MUTATING or TYPE_VALIDATING")]
    Type(String),
    /// A hook without rules would never be called.
    #[error("admission hook {0:?} has no rule with an operation and a resource")]
    Rules(String),
    /// A timeout above [`MAX_TIMEOUT`].
    #[error("admission hook {name:?}: timeout {ms} ms is above the maximum of 30000 ms")]
    Timeout {
        /// The hook.
        name: String,
        /// What it asked for.
        ms: u32,
    },
    /// The channel to the endpoint could not be configured.
    #[error("admission endpoint {endpoint}: {source}")]
    Channel {
        /// The endpoint.
        endpoint: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
}

/// What the kernel does when a hook cannot answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Refuse the write.
    Fail,
    /// Let the write through.
    Ignore,
}

/// One rule of a hook; empty lists match nothing, `*` matches everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    operations: Vec<String>,
    groups: Vec<String>,
    resources: Vec<String>,
}

impl Rule {
    fn matches(&self, req: &AdmissionRequest) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
        let resource_matches = self.resources.iter().any(|r| {
            let (res, sub) = r.split_once('/').unwrap_or((r.as_str(), ""));
            (res == "*" || res == req.resource) && (sub == "*" || sub == req.sub_resource)
        });
        any(&self.operations, &req.operation) && any(&self.groups, &req.group) && resource_matches
    }
}

/// One registered hook of one plugin.
#[derive(Clone)]
pub struct Hook {
    /// The plugin that serves it.
    pub plugin: String,
    /// The hook's name, shown in refusals.
    pub name: String,
    /// Mutating or validating.
    pub phase: Phase,
    /// How long a call may take.
    pub timeout: Duration,
    /// What happens when it cannot answer.
    pub failure_policy: FailurePolicy,
    rules: Vec<Rule>,
    client: apb::admission_client::AdmissionClient<Channel>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("plugin", &self.plugin)
            .field("name", &self.name)
            .field("phase", &self.phase)
            .field("timeout", &self.timeout)
            .field("failure_policy", &self.failure_policy)
            .field("rules", &self.rules)
            .finish()
    }
}

impl Hook {
    /// Whether the hook wants to see `req`.
    pub fn matches(&self, req: &AdmissionRequest) -> bool {
        self.rules.iter().any(|r| r.matches(req))
    }
}

/// A lazily connecting channel to `endpoint` (`unix:///path` or `tcp://host:port`).
fn channel(endpoint: &str) -> Result<Channel, HookError> {
    let wrap = |source| HookError::Channel {
        endpoint: endpoint.to_owned(),
        source,
    };
    if let Some(addr) = endpoint.strip_prefix("tcp://") {
        if addr.is_empty() {
            return Err(HookError::Endpoint(endpoint.to_owned()));
        }
        return Ok(TonicEndpoint::from_shared(format!("http://{addr}"))
            .map_err(wrap)?
            .connect_timeout(MAX_TIMEOUT)
            .tcp_nodelay(true)
            .connect_lazy());
    }
    let Some(path) = endpoint
        .strip_prefix("unix://")
        .filter(|p| p.starts_with('/'))
    else {
        return Err(HookError::Endpoint(endpoint.to_owned()));
    };
    let path = PathBuf::from(path);
    // The URI is unused: the connector dials the socket.
    Ok(TonicEndpoint::from_static("http://admission.local")
        .connect_timeout(MAX_TIMEOUT)
        .connect_with_connector_lazy(tower::service_fn(move |_: http::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        })))
}

/// Checks a registration's hooks and builds them, all sharing one channel.
pub fn hooks_from_registration(
    plugin: &str,
    endpoint: &str,
    declared: &[ppb::AdmissionHook],
) -> Result<Vec<Hook>, HookError> {
    if declared.is_empty() {
        return Ok(Vec::new());
    }
    let client = apb::admission_client::AdmissionClient::new(channel(endpoint)?);
    let mut hooks: Vec<Hook> = Vec::with_capacity(declared.len());
    for d in declared {
        if d.name.is_empty() || hooks.iter().any(|h| h.name == d.name) {
            return Err(HookError::Name(d.name.clone()));
        }
        let phase = match ppb::admission_hook::Type::try_from(d.r#type) {
            Ok(ppb::admission_hook::Type::Mutating) => Phase::Mutating,
            Ok(ppb::admission_hook::Type::Validating) => Phase::Validating,
            _ => return Err(HookError::Type(d.name.clone())),
        };
        let rules: Vec<Rule> = d
            .rules
            .iter()
            .filter(|r| !r.operations.is_empty() && !r.resources.is_empty())
            .map(|r| Rule {
                operations: r.operations.clone(),
                // No groups listed: the core group, as a rule naming only resources means.
                groups: if r.api_groups.is_empty() {
                    vec![String::new()]
                } else {
                    r.api_groups.clone()
                },
                resources: r.resources.clone(),
            })
            .collect();
        if rules.is_empty() {
            return Err(HookError::Rules(d.name.clone()));
        }
        let timeout = match d.timeout_ms {
            0 => DEFAULT_TIMEOUT,
            ms if Duration::from_millis(u64::from(ms)) > MAX_TIMEOUT => {
                return Err(HookError::Timeout {
                    name: d.name.clone(),
                    ms,
                });
            }
            ms => Duration::from_millis(u64::from(ms)),
        };
        let failure_policy = match ppb::admission_hook::FailurePolicy::try_from(d.failure_policy) {
            Ok(ppb::admission_hook::FailurePolicy::Ignore) => FailurePolicy::Ignore,
            _ => FailurePolicy::Fail,
        };
        hooks.push(Hook {
            plugin: plugin.to_owned(),
            name: d.name.clone(),
            phase,
            timeout,
            failure_policy,
            rules,
            client: client.clone(),
        });
    }
    Ok(hooks)
}

/// Every plugin's registered hooks, by plugin name (so hooks run in a stable order).
#[derive(Default)]
pub struct RemoteHooks {
    plugins: RwLock<BTreeMap<String, Arc<[Hook]>>>,
}

impl RemoteHooks {
    /// Replaces `plugin`'s hooks (none: the plugin takes no part in admission).
    pub fn set(&self, plugin: &str, hooks: Vec<Hook>) {
        let mut plugins = self.plugins.write().unwrap_or_else(|e| e.into_inner());
        if hooks.is_empty() {
            plugins.remove(plugin);
        } else {
            tracing::info!(plugin, hooks = hooks.len(), "admission hooks registered");
            plugins.insert(plugin.to_owned(), hooks.into());
        }
    }

    /// The hooks of `phase` that want `req`, in plugin then declaration order.
    pub fn matching(&self, phase: Phase, req: &AdmissionRequest) -> Vec<Hook> {
        let plugins = self.plugins.read().unwrap_or_else(|e| e.into_inner());
        plugins
            .values()
            .flat_map(|hooks| hooks.iter())
            .filter(|h| h.phase == phase && h.matches(req))
            .cloned()
            .collect()
    }

    /// Whether any hook of `phase` is registered.
    fn has(&self, phase: Phase) -> bool {
        let plugins = self.plugins.read().unwrap_or_else(|e| e.into_inner());
        plugins
            .values()
            .any(|hooks| hooks.iter().any(|h| h.phase == phase))
    }

    /// The two chain modules over these hooks: mutating, then validating.
    pub fn modules(self: &Arc<Self>) -> [Arc<dyn AdmissionModule>; 2] {
        [
            Arc::new(RemotePhase {
                hooks: self.clone(),
                phase: Phase::Mutating,
            }),
            Arc::new(RemotePhase {
                hooks: self.clone(),
                phase: Phase::Validating,
            }),
        ]
    }
}

/// The chain module calling every registered hook of one phase.
pub struct RemotePhase {
    hooks: Arc<RemoteHooks>,
    phase: Phase,
}

/// What came back from one call, before the failure policy.
enum Answer {
    Allowed(Option<Value>),
    Refused(ApiError),
}

fn encode(value: &Value) -> Vec<u8> {
    if value.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(value).unwrap_or_default()
    }
}

fn review_request(hook: &Hook, req: &AdmissionRequest) -> apb::ReviewRequest {
    let groups = crate::auth::user::REQUEST_USER
        .try_with(|u| u.groups.clone())
        .unwrap_or_default();
    apb::ReviewRequest {
        hook: hook.name.clone(),
        uid: uuid::Uuid::new_v4().to_string(),
        operation: req.operation.clone(),
        group: req.group.clone(),
        version: req.version.clone(),
        resource: req.resource.clone(),
        kind: req.kind.clone(),
        sub_resource: req.sub_resource.clone(),
        namespace: req.namespace.clone(),
        name: req.name.clone(),
        user: Some(apb::UserInfo {
            username: req.user.clone(),
            groups,
        }),
        object: encode(&req.object),
        old_object: encode(&req.old_object),
        dry_run: req.dry_run,
    }
}

fn cause_reason(reason: &str) -> &'static str {
    match reason {
        "FieldValueRequired" => "FieldValueRequired",
        "FieldValueForbidden" => "FieldValueForbidden",
        "FieldValueNotSupported" => "FieldValueNotSupported",
        "FieldValueDuplicate" => "FieldValueDuplicate",
        "FieldValueTooLong" => "FieldValueTooLong",
        "FieldValueTypeInvalid" => "FieldValueTypeInvalid",
        _ => "FieldValueInvalid",
    }
}

/// The error for a refusal, in Kubernetes' words.
fn refusal(hook: &Hook, req: &AdmissionRequest, answer: apb::ReviewResponse) -> ApiError {
    let message = if answer.message.is_empty() {
        "denied without a message".to_owned()
    } else {
        answer.message
    };
    let denied = format!(
        "admission webhook {:?} denied the request: {message}",
        hook.name
    );
    match answer.code {
        422 => {
            let mut causes: Vec<FieldError> = answer
                .causes
                .into_iter()
                .map(|c| FieldError {
                    reason: cause_reason(&c.reason),
                    field: c.field,
                    message: c.message,
                })
                .collect();
            if causes.is_empty() {
                causes.push(FieldError {
                    reason: "FieldValueInvalid",
                    field: String::new(),
                    message: denied,
                });
            }
            ApiError::Invalid {
                target: ErrorTarget {
                    group: req.group.clone(),
                    resource: req.resource.clone(),
                    kind: req.kind.clone(),
                    name: req.name.clone(),
                },
                causes,
            }
        }
        400 => ApiError::BadRequest(denied),
        409 => ApiError::Conflict {
            target: ErrorTarget {
                group: req.group.clone(),
                resource: req.resource.clone(),
                kind: req.kind.clone(),
                name: req.name.clone(),
            },
            message: denied,
        },
        429 | 503 => ApiError::ServiceUnavailable(denied),
        // 403, unset and anything else: a refusal.
        _ => ApiError::Forbidden(denied),
    }
}

/// Why a call gave no usable answer.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("{}", .0.message())]
    Rpc(tonic::Status),
    #[error("its answer is unusable: {0}")]
    Answer(String),
}

async fn call(hook: &Hook, req: &AdmissionRequest) -> Result<Answer, CallError> {
    let mut request = tonic::Request::new(review_request(hook, req));
    request.set_timeout(hook.timeout);
    let reply = tokio::time::timeout(hook.timeout, hook.client.clone().review(request))
        .await
        .map_err(|_| CallError::Timeout(hook.timeout))?;
    let answer = match reply {
        Ok(r) => r.into_inner(),
        // The plugin's server gives up at the deadline sent as `grpc-timeout`.
        Err(status)
            if matches!(
                status.code(),
                tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
            ) =>
        {
            return Err(CallError::Timeout(hook.timeout));
        }
        Err(status) => return Err(CallError::Rpc(status)),
    };
    if !answer.allowed {
        return Ok(Answer::Refused(refusal(hook, req, answer)));
    }
    if hook.phase == Phase::Validating {
        return Ok(Answer::Allowed(None));
    }
    if !answer.object.is_empty() {
        let object: Value = serde_json::from_slice(&answer.object)
            .map_err(|e| CallError::Answer(format!("object: {e}")))?;
        if !object.is_object() {
            return Err(CallError::Answer("object: not a JSON object".into()));
        }
        return Ok(Answer::Allowed(Some(object)));
    }
    if !answer.patch.is_empty() {
        let patch: json_patch::Patch = serde_json::from_slice(&answer.patch)
            .map_err(|e| CallError::Answer(format!("patch: {e}")))?;
        let mut object = req.object.clone();
        json_patch::patch(&mut object, &patch)
            .map_err(|e| CallError::Answer(format!("patch: {e}")))?;
        return Ok(Answer::Allowed(Some(object)));
    }
    Ok(Answer::Allowed(None))
}

#[async_trait]
impl AdmissionModule for RemotePhase {
    fn name(&self) -> &str {
        match self.phase {
            Phase::Mutating => "admission-plugins-mutating",
            Phase::Validating => "admission-plugins-validating",
        }
    }

    fn phase(&self) -> Phase {
        self.phase
    }

    fn wants(&self, _req: &AdmissionRequest) -> bool {
        self.hooks.has(self.phase)
    }

    /// Calls each matching hook in turn (mutating hooks see the previous
    /// ones' changes); a refusal is returned as the error it will be on the
    /// wire, so the chain stops with the hook's own name and message.
    async fn review(&self, req: &AdmissionRequest) -> Result<AdmissionResponse, ApiError> {
        let hooks = self.hooks.matching(self.phase, req);
        if hooks.is_empty() {
            return Ok(AdmissionResponse::allow());
        }
        let mut current: Option<AdmissionRequest> = None;
        for hook in &hooks {
            let seen = current.as_ref().unwrap_or(req);
            match call(hook, seen).await {
                Ok(Answer::Allowed(None)) => {}
                Ok(Answer::Allowed(Some(object))) => {
                    let mut next = seen.clone();
                    next.object = object;
                    current = Some(next);
                }
                Ok(Answer::Refused(e)) => {
                    tracing::debug!(plugin = %hook.plugin, hook = %hook.name, "admission hook refused the write");
                    return Err(e);
                }
                Err(e) => match hook.failure_policy {
                    FailurePolicy::Ignore => {
                        tracing::warn!(plugin = %hook.plugin, hook = %hook.name, error = %e, "admission hook failed; ignored (failurePolicy Ignore)");
                    }
                    FailurePolicy::Fail => {
                        tracing::warn!(plugin = %hook.plugin, hook = %hook.name, error = %e, "admission hook failed; write refused (failurePolicy Fail)");
                        return Err(ApiError::Internal(format!(
                            "Internal error occurred: failed calling webhook {:?}: {e}",
                            hook.name
                        )));
                    }
                },
            }
        }
        Ok(match current {
            Some(changed) => AdmissionResponse::mutate(changed.object),
            None => AdmissionResponse::allow(),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn declared(name: &str, t: ppb::admission_hook::Type) -> ppb::AdmissionHook {
        ppb::AdmissionHook {
            name: name.into(),
            r#type: t as i32,
            rules: vec![ppb::AdmissionRule {
                operations: vec!["CREATE".into()],
                api_groups: vec![String::new()],
                resources: vec!["pods".into()],
            }],
            timeout_ms: 0,
            failure_policy: 0,
        }
    }

    fn pod(operation: &str) -> AdmissionRequest {
        AdmissionRequest {
            operation: operation.into(),
            kind: "Pod".into(),
            resource: "pods".into(),
            version: "v1".into(),
            name: "p".into(),
            object: json!({"metadata": {"name": "p"}}),
            ..AdmissionRequest::default()
        }
    }

    #[tokio::test]
    async fn registrations_are_checked_and_rules_match_operation_group_and_resource() {
        let ok = hooks_from_registration(
            "p",
            "tcp://127.0.0.1:1",
            &[declared("m", ppb::admission_hook::Type::Mutating)],
        )
        .expect("hooks");
        assert_eq!(ok[0].timeout, DEFAULT_TIMEOUT);
        assert_eq!(ok[0].failure_policy, FailurePolicy::Fail);
        assert!(ok[0].matches(&pod("CREATE")));
        assert!(!ok[0].matches(&pod("UPDATE")));
        let status = AdmissionRequest {
            sub_resource: "status".into(),
            ..pod("CREATE")
        };
        assert!(!ok[0].matches(&status));
        let apps = AdmissionRequest {
            group: "apps".into(),
            ..pod("CREATE")
        };
        assert!(!ok[0].matches(&apps));

        let bad_endpoint = hooks_from_registration(
            "p",
            "http://x",
            &[declared("m", ppb::admission_hook::Type::Mutating)],
        );
        assert!(matches!(bad_endpoint, Err(HookError::Endpoint(_))));
        let twice = hooks_from_registration(
            "p",
            "tcp://127.0.0.1:1",
            &[
                declared("m", ppb::admission_hook::Type::Mutating),
                declared("m", ppb::admission_hook::Type::Validating),
            ],
        );
        assert!(matches!(twice, Err(HookError::Name(_))));
        let untyped = hooks_from_registration(
            "p",
            "unix:///tmp/x.sock",
            &[declared("m", ppb::admission_hook::Type::Unspecified)],
        );
        assert!(matches!(untyped, Err(HookError::Type(_))));
        let mut slow = declared("m", ppb::admission_hook::Type::Validating);
        slow.timeout_ms = 60_000;
        assert!(matches!(
            hooks_from_registration("p", "tcp://127.0.0.1:1", &[slow]),
            Err(HookError::Timeout { .. })
        ));
    }

    #[tokio::test]
    async fn an_unreachable_hook_follows_its_failure_policy() {
        // Port 1 on loopback: nothing listens there.
        let mut fail = declared("strict", ppb::admission_hook::Type::Validating);
        fail.timeout_ms = 2000;
        let mut ignore = declared("lenient", ppb::admission_hook::Type::Validating);
        ignore.failure_policy = ppb::admission_hook::FailurePolicy::Ignore as i32;
        ignore.timeout_ms = 2000;
        let hooks = Arc::new(RemoteHooks::default());
        let [mutating, validating] = hooks.modules();
        assert!(!validating.wants(&pod("CREATE")));
        hooks.set(
            "lenient",
            hooks_from_registration("lenient", "tcp://127.0.0.1:1", &[ignore]).expect("hooks"),
        );
        assert!(validating.wants(&pod("CREATE")));
        assert!(!mutating.wants(&pod("CREATE")));
        assert_eq!(
            validating.review(&pod("CREATE")).await.expect("ignored"),
            AdmissionResponse::allow()
        );
        hooks.set(
            "strict",
            hooks_from_registration("strict", "tcp://127.0.0.1:1", &[fail]).expect("hooks"),
        );
        let err = validating.review(&pod("CREATE")).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"Internal error occurred: failed calling webhook "strict""#),
            "{err}"
        );
        hooks.set("strict", Vec::new());
        assert!(validating.review(&pod("CREATE")).await.is_ok());
    }

    // A runtime: the hook's lazy channel registers with its reactor.
    #[tokio::test]
    async fn refusals_read_as_kubernetes_errors() {
        let hook = hooks_from_registration(
            "p",
            "tcp://127.0.0.1:1",
            &[declared("v", ppb::admission_hook::Type::Validating)],
        );
        let Ok(hooks) = hook else {
            panic!("hooks");
        };
        let forbidden = refusal(
            &hooks[0],
            &pod("CREATE"),
            apb::ReviewResponse {
                message: "no".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            forbidden.to_string(),
            r#"admission webhook "v" denied the request: no"#
        );
        let invalid = refusal(
            &hooks[0],
            &pod("CREATE"),
            apb::ReviewResponse {
                code: 422,
                causes: vec![apb::FieldCause {
                    reason: "FieldValueInvalid".into(),
                    field: "spec.x".into(),
                    message: "spec.x: Invalid value: 1: taken".into(),
                }],
                ..Default::default()
            },
        );
        assert_eq!(invalid.code_and_reason().0, 422);
        assert_eq!(
            invalid.to_string(),
            r#"Pod "p" is invalid: spec.x: Invalid value: 1: taken"#
        );
    }
}
