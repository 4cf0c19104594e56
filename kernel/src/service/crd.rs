//! Custom resource definitions: the registry follows the CRDs in the store.

use serde_json::Value;

use super::{Service, meta};
use crate::error::{ApiError, Result};
use crate::registry::crd::{crd_status_accepted, types_from_crd};

const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";

impl Service {
    /// Registers the custom resources of every CRD in the store.
    pub(super) async fn load_crds(&self) -> Result<()> {
        let mut start_after: Option<String> = None;
        loop {
            let page = self
                .store
                .list(CRD_PREFIX, start_after.as_deref(), 500)
                .await
                .map_err(|e| ApiError::ServiceUnavailable(format!("loading CRDs: {e}")))?;
            for kv in &page.kvs {
                match serde_json::from_slice::<Value>(&kv.value) {
                    Ok(crd) => self.sync_crd(&crd),
                    Err(e) => tracing::warn!(key = %kv.key, error = %e, "skipping a corrupt CRD"),
                }
            }
            match (page.more, page.kvs.last()) {
                (true, Some(last)) => start_after = Some(last.key.clone()),
                _ => return Ok(()),
            }
        }
    }

    /// Validates a CRD's versions and sets the status Kubernetes reports once
    /// its names are accepted.
    pub(super) fn prepare_crd(&self, crd: &mut Value) -> Result<()> {
        if let Err(causes) = types_from_crd(crd) {
            return Err(ApiError::Invalid {
                target: crate::error::ErrorTarget {
                    group: "apiextensions.k8s.io".into(),
                    resource: "customresourcedefinitions".into(),
                    kind: "CustomResourceDefinition".into(),
                    name: meta::name(crd).to_owned(),
                },
                causes,
            });
        }
        crd["status"] = crd_status_accepted(crd);
        Ok(())
    }

    /// Serves the versions a CRD defines (replacing earlier ones).
    pub(super) fn sync_crd(&self, crd: &Value) {
        let Ok(types) = types_from_crd(crd) else {
            tracing::warn!(
                crd = meta::name(crd),
                "stored CRD is invalid; not serving it"
            );
            return;
        };
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // Versions no longer served disappear.
        for rt in self.registry.all() {
            if rt.group == group
                && rt.plural == plural
                && !types.iter().any(|t| t.version == rt.version)
            {
                self.registry.unregister(&rt.group, &rt.version, &rt.plural);
            }
        }
        for rt in types {
            tracing::debug!(group = %rt.group, version = %rt.version, plural = %rt.plural, "serving custom resource");
            self.registry.register(rt);
        }
    }

    /// Stops serving a deleted CRD's resources and deletes its objects.
    pub(super) async fn remove_crd(&self, crd: &Value) {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut prefix = None;
        for rt in self.registry.all() {
            if rt.group == group && rt.plural == plural {
                prefix = Some(rt.key_prefix());
                self.registry.unregister(&rt.group, &rt.version, &rt.plural);
            }
        }
        let Some(prefix) = prefix else { return };
        self.caches.lock().await.remove(&prefix);
        loop {
            let page = match self.store.list(&prefix, None, 500).await {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!(error = %e, %prefix, "could not delete custom resources");
                    return;
                }
            };
            for kv in &page.kvs {
                if let Err(e) = self.store.delete(&kv.key, None).await {
                    tracing::debug!(error = %e, key = %kv.key, "custom resource already gone");
                }
            }
            if !page.more {
                return;
            }
        }
    }
}
