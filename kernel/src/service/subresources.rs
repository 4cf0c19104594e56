//! Verbs beyond plain CRUD: scale patches, pod binding, delete-collection.

use serde_json::{Value, json};

use super::write::{Part, PatchType};
use super::{DeleteOptions, ListOptions, Service, Target, WriteOptions, WriteResult, meta};
use crate::error::{ApiError, Result};
use crate::patch;

impl Service {
    /// Patches the `scale` subresource (what `kubectl scale` does).
    pub async fn patch_scale(
        &self,
        t: &Target,
        patch_type: PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<Value> {
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
        self.update_scale(t, opts, |scale| {
            let patched = match patch_type {
                PatchType::Json => patch::json_patch(scale, &doc),
                PatchType::Merge | PatchType::Strategic | PatchType::Apply => {
                    patch::merge_patch(scale, &doc)
                }
            };
            patched.map_err(|e| super::write::patch_error(t, e))
        })
        .await
    }

    /// `pods/binding`: assigns a pending pod to a node, once.
    pub async fn bind_pod(
        &self,
        t: &Target,
        binding: &Value,
        opts: &WriteOptions,
    ) -> Result<WriteResult> {
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::Invalid {
                target: t.error_target(),
                causes: vec![crate::error::FieldError::required("target.name")],
            })?
            .to_owned();
        let mut current = self.get(t).await?;
        if let Some(bound) = current.pointer("/spec/nodeName").and_then(Value::as_str)
            && !bound.is_empty()
        {
            return Err(ApiError::Conflict {
                target: t.error_target(),
                message: format!(
                    "pod {} is already assigned to node {bound:?}",
                    meta::name(&current)
                ),
            });
        }
        current["spec"]["nodeName"] = json!(node);
        let object = self.update(t, current, Part::Main, opts).await?.object;
        Ok(WriteResult {
            object: json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201, "details": { "name": meta::name(&object), "kind": "pods" } }),
            warnings: Vec::new(),
            created: true,
        })
    }

    /// Deletes every object a list with `list` would return.
    pub async fn delete_collection(
        &self,
        t: &Target,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Value>> {
        let page = self.list(t, list).await?;
        let mut deleted = Vec::with_capacity(page.items.len());
        for item in &page.items {
            let name = item.name.clone();
            let namespace = Some(item.namespace.clone()).filter(|ns| !ns.is_empty());
            let one = Target {
                rt: t.rt.clone(),
                namespace,
                name: Some(name),
            };
            match self.delete(&one, opts).await {
                Ok(obj) => deleted.push(obj),
                Err(ApiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }
}
