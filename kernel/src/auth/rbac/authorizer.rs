//! The live RBAC authorizer: a compiled [`Policy`] kept current from the
//! watch caches of the four RBAC types, so a decision never touches the store
//! or parses JSON.

use std::sync::{Arc, RwLock};

use futures::StreamExt;
use serde_json::Value;

use super::policy::{Decision, Policy};
use super::rules::Attributes;
use crate::auth::user::UserInfo;
use crate::error::ApiError;
use crate::service::Service;
use crate::store::Revision;
use crate::watch::{ListOptions, WatchCache, WatchOptions};

const GROUP: &str = "rbac.authorization.k8s.io";
/// The RBAC resources, in the order [`Policy::compile`] takes them.
const RESOURCES: [&str; 4] = [
    "clusterroles",
    "roles",
    "clusterrolebindings",
    "rolebindings",
];

/// Decides requests by RBAC; cheap to call on every request.
pub struct RbacAuthorizer {
    caches: Vec<Arc<WatchCache>>,
    snapshot: RwLock<Snapshot>,
}

struct Snapshot {
    policy: Arc<Policy>,
    /// The caches' revisions the policy was compiled at.
    revisions: Vec<Revision>,
}

impl RbacAuthorizer {
    /// Compiles the current RBAC objects and keeps recompiling as they change.
    pub async fn start(service: &Service) -> Result<Arc<Self>, ApiError> {
        let mut caches = Vec::new();
        for resource in RESOURCES {
            let rt = service
                .registry()
                .get(GROUP, "v1", resource)
                .ok_or_else(|| {
                    ApiError::Internal(format!("{resource}.{GROUP} is not registered"))
                })?;
            caches.push(service.cache(&rt).await?);
        }
        let snapshot = compile(&caches)?;
        let authorizer = Arc::new(Self {
            caches,
            snapshot: RwLock::new(snapshot),
        });
        let mut watchers = Vec::new();
        for cache in &authorizer.caches {
            let watcher = cache
                .watch(WatchOptions::default())
                .await
                .map_err(|e| ApiError::Internal(format!("watching RBAC objects: {e}")))?;
            watchers.push(watcher.into_stream().boxed());
        }
        let mut changes = futures::stream::select_all(watchers);
        let weak = Arc::downgrade(&authorizer);
        tokio::spawn(async move {
            while changes.next().await.is_some() {
                let Some(authorizer) = weak.upgrade() else {
                    return;
                };
                authorizer.refresh_if_stale();
            }
        });
        Ok(authorizer)
    }

    /// Whether `user` may do `req`. A denial is re-checked against a fresh
    /// policy when an RBAC object changed since the last compile, so a
    /// binding is effective as soon as its write returned.
    pub fn authorize(&self, user: &UserInfo, req: &Attributes) -> Decision {
        let decision = self.policy().authorize(user, req);
        if decision.allowed() || !self.refresh_if_stale() {
            return decision;
        }
        self.policy().authorize(user, req)
    }

    /// The current compiled policy.
    pub fn policy(&self) -> Arc<Policy> {
        match self.snapshot.read() {
            Ok(s) => s.policy.clone(),
            Err(poisoned) => poisoned.into_inner().policy.clone(),
        }
    }

    /// Recompiles when a cache moved past the snapshot; true if it did.
    fn refresh_if_stale(&self) -> bool {
        let current: Vec<Revision> = self.caches.iter().map(|c| c.revision()).collect();
        let stale = match self.snapshot.read() {
            Ok(s) => s.revisions != current,
            Err(_) => true,
        };
        if !stale {
            return false;
        }
        match compile(&self.caches) {
            Ok(fresh) => {
                if let Ok(mut s) = self.snapshot.write() {
                    *s = fresh;
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "recompiling RBAC failed; keeping the previous policy");
                false
            }
        }
    }
}

fn compile(caches: &[Arc<WatchCache>]) -> Result<Snapshot, ApiError> {
    let mut lists: Vec<Vec<Value>> = Vec::new();
    let mut revisions = Vec::new();
    for cache in caches {
        let page = cache
            .list(ListOptions::default())
            .map_err(|e| ApiError::Internal(format!("listing RBAC objects: {e}")))?;
        revisions.push(page.revision);
        lists.push(page.items.iter().map(|o| o.value()).collect());
    }
    let policy = Policy::compile(&lists[0], &lists[1], &lists[2], &lists[3]);
    Ok(Snapshot {
        policy: Arc::new(policy),
        revisions,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::auth::rbac::bootstrap::ensure_default_objects;
    use crate::registry::Registry;
    use crate::service::{Target, WriteOptions};
    use crate::store::embedded::EmbeddedStore;

    async fn service(dir: &std::path::Path) -> Arc<Service> {
        let store = Arc::new(EmbeddedStore::open(dir).await.expect("store"));
        let registry = Arc::new(Registry::new());
        crate::registry::builtin::register_builtins(&registry);
        Service::new(store, registry, Default::default())
            .await
            .expect("service")
    }

    #[tokio::test]
    async fn a_new_binding_takes_effect_at_once_and_defaults_are_installed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let service = service(dir.path()).await;
        ensure_default_objects(&service).await.expect("defaults");
        // Twice is fine: existing objects are kept.
        ensure_default_objects(&service)
            .await
            .expect("defaults again");
        let authz = RbacAuthorizer::start(&service).await.expect("authorizer");

        let alice = UserInfo::new("alice", []);
        let list_pods = Attributes::resource("list", "", "pods", "team", "");
        assert_eq!(authz.authorize(&alice, &list_pods), Decision::Deny);
        let root = UserInfo::new("kerno-admin", ["system:masters".to_owned()]);
        assert!(authz.authorize(&root, &list_pods).allowed());

        let namespaces = Target {
            rt: service
                .registry()
                .get("", "v1", "namespaces")
                .expect("namespaces"),
            namespace: None,
            name: None,
        };
        service
            .create(
                &namespaces,
                json!({"metadata": {"name": "default"}}),
                &WriteOptions::default(),
            )
            .await
            .expect("create namespace");
        let rt = service
            .registry()
            .get("rbac.authorization.k8s.io", "v1", "rolebindings")
            .expect("rolebindings");
        let target = Target {
            rt,
            namespace: Some("default".into()),
            name: None,
        };
        let binding = json!({"metadata": {"name": "alice-view", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "alice"}]});
        service
            .create(&target, binding, &WriteOptions::default())
            .await
            .expect("create binding");
        let list_default = Attributes::resource("list", "", "pods", "default", "");
        // The cache hears of the write moments after it returns.
        let mut allowed = false;
        for _ in 0..100 {
            allowed = authz.authorize(&alice, &list_default).allowed();
            if allowed {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(allowed, "the new binding never took effect");
        assert_eq!(authz.authorize(&alice, &list_pods), Decision::Deny);
    }
}
