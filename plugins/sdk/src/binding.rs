//! `pods/binding`: how a scheduler assigns a pod to a node.

use k8s_openapi::api::core::v1::Pod;
use kerno_proto::kernel::v1 as pb;
use serde_json::json;
use tracing::Instrument;

use crate::client::{Api, Error, Result};

impl Api<Pod> {
    /// Binds the pod `name` to `node` through the `binding` subresource.
    ///
    /// Fails with [`Error::Conflict`] when the pod is already bound and
    /// [`Error::NotFound`] when it is gone.
    pub async fn bind(&self, name: &str, node: &str) -> Result<()> {
        let namespace = self
            .namespace()
            .ok_or_else(|| Error::Invalid("binding a pod needs a namespaced handle".into()))?;
        let metadata = json!({ "name": name, "namespace": namespace });
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": metadata,
            "target": { "apiVersion": "v1", "kind": "Node", "name": node },
        });
        let resource = self.resource();
        self.client()
            .kernel()
            .create(pb::CreateRequest {
                resource: Some(pb::ResourceRef {
                    group: resource.group.clone(),
                    version: resource.version.clone(),
                    resource: resource.plural.clone(),
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                }),
                json: serde_json::to_vec(&binding)?,
                dry_run: false,
                field_manager: String::new(),
                subresource: "binding".into(),
            })
            .instrument(tracing::debug_span!("kernel", verb = "bind", name, node))
            .await?;
        Ok(())
    }
}
