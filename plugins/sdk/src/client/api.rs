//! Typed and dynamic handles on one resource type: `Api<K>`.

use std::marker::PhantomData;

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use kerno_proto::kernel::v1 as pb;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use super::object::{ApiResource, ScopeInfo};
use super::{Error, KernelClient, Result, from_status_object};

/// Options of a list call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// Label selector, for example `app=web,tier!=db`.
    pub label_selector: Option<String>,
    /// Field selector, for example `spec.nodeName=node-1`.
    pub field_selector: Option<String>,
    /// Page size; `None` lists everything in one reply.
    pub limit: Option<u32>,
    /// Continue token of the previous page.
    pub continue_token: Option<String>,
}

impl ListParams {
    /// Selects by labels.
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Selects by fields.
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// Options of a watch call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchParams {
    /// Label selector.
    pub label_selector: Option<String>,
    /// Field selector.
    pub field_selector: Option<String>,
    /// Ask for BOOKMARK events so a resumed watch starts from a recent revision.
    pub bookmarks: bool,
}

impl From<&ListParams> for WatchParams {
    fn from(lp: &ListParams) -> Self {
        Self {
            label_selector: lp.label_selector.clone(),
            field_selector: lp.field_selector.clone(),
            bookmarks: true,
        }
    }
}

/// Options of create and replace calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostParams {
    /// Validate and default, but do not persist.
    pub dry_run: bool,
    /// Writer name recorded in managedFields.
    pub field_manager: Option<String>,
}

/// Options of a patch call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PatchParams {
    /// Validate and default, but do not persist.
    pub dry_run: bool,
    /// Writer name; required for server-side apply.
    pub field_manager: Option<String>,
    /// Server-side apply: take over fields owned by other managers.
    pub force: bool,
}

impl PatchParams {
    /// Params for server-side apply as `manager`.
    pub fn apply(manager: impl Into<String>) -> Self {
        Self {
            field_manager: Some(manager.into()),
            ..Self::default()
        }
    }

    /// Forces ownership of conflicting fields (server-side apply).
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }
}

/// Options of a delete call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteParams {
    /// `Background`, `Foreground` or `Orphan`; `None` for the resource's default.
    pub propagation_policy: Option<String>,
    /// Delete only if the object is still at this resourceVersion.
    pub resource_version: Option<String>,
    /// Validate, but do not delete.
    pub dry_run: bool,
    /// Seconds of grace; `None` for the resource's default.
    pub grace_period_seconds: Option<u32>,
}

/// A patch document and how to interpret it.
#[derive(Clone, Debug)]
pub enum Patch<P: Serialize> {
    /// RFC 7386 JSON merge patch.
    Merge(P),
    /// RFC 6902 JSON patch (a JSON array of operations).
    Json(P),
    /// Kubernetes strategic merge patch.
    Strategic(P),
    /// Server-side apply of a full intent (needs [`PatchParams::field_manager`]).
    Apply(P),
}

impl<P: Serialize> Patch<P> {
    fn encode(&self) -> Result<(pb::PatchType, Vec<u8>)> {
        let (kind, body) = match self {
            Patch::Merge(p) => (pb::PatchType::Merge, p),
            Patch::Json(p) => (pb::PatchType::Json, p),
            Patch::Strategic(p) => (pb::PatchType::Strategic, p),
            Patch::Apply(p) => (pb::PatchType::Apply, p),
        };
        Ok((kind, serde_json::to_vec(body)?))
    }
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ObjectList<K> {
    /// The objects.
    pub items: Vec<K>,
    /// The revision the list is consistent at; watch from here.
    pub resource_version: String,
    /// Set when more pages remain.
    pub continue_token: Option<String>,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent<K> {
    /// An object was created (or existed when a watch started from a list).
    Added(K),
    /// An object changed.
    Modified(K),
    /// An object was deleted; this is its last state.
    Deleted(K),
    /// Nothing changed, but the stream has reached this resourceVersion.
    Bookmark(String),
}

/// A handle on one resource type, in one namespace or across all of them.
///
/// `K` is a `k8s-openapi` type, [`super::DynamicObject`] or `serde_json::Value`
/// for custom resources ([`Api::dynamic`]).
pub struct Api<K> {
    client: KernelClient,
    resource: ApiResource,
    namespace: Option<String>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            resource: self.resource.clone(),
            namespace: self.namespace.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Api<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("resource", &self.resource)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl<K: k8s_openapi::Resource> Api<K>
where
    K::Scope: ScopeInfo,
{
    /// Objects of `K` in `namespace`.
    pub fn namespaced(client: KernelClient, namespace: &str) -> Self {
        Self::dynamic(client, ApiResource::of::<K>(), Some(namespace))
    }

    /// Objects of `K` in every namespace, or cluster-scoped objects.
    pub fn all(client: KernelClient) -> Self {
        Self::dynamic(client, ApiResource::of::<K>(), None)
    }
}

impl<K> Api<K> {
    /// Objects of any resource type, for custom resources: use
    /// `Api<DynamicObject>` or `Api<serde_json::Value>`.
    pub fn dynamic(client: KernelClient, resource: ApiResource, namespace: Option<&str>) -> Self {
        Self {
            client,
            resource,
            namespace: namespace.map(str::to_owned),
            _kind: PhantomData,
        }
    }

    /// The resource type.
    pub fn resource(&self) -> &ApiResource {
        &self.resource
    }

    /// The namespace, if this handle is bound to one.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The client underneath.
    pub fn client(&self) -> &KernelClient {
        &self.client
    }

    /// A span per kernel call; its trace context travels in the call's metadata.
    fn span(&self, verb: &'static str, name: &str) -> tracing::Span {
        tracing::debug_span!(
            "kernel",
            verb,
            resource = %self.resource.plural,
            namespace = self.namespace.as_deref().unwrap_or(""),
            name
        )
    }

    fn target(&self, namespace: Option<&str>, name: &str) -> Option<pb::ResourceRef> {
        Some(pb::ResourceRef {
            group: self.resource.group.clone(),
            version: self.resource.version.clone(),
            resource: self.resource.plural.clone(),
            namespace: namespace
                .or(self.namespace.as_deref())
                .unwrap_or_default()
                .to_owned(),
            name: name.to_owned(),
        })
    }
}

fn decode<K: DeserializeOwned>(bytes: &[u8]) -> Result<K> {
    Ok(serde_json::from_slice(bytes)?)
}

/// Namespace and name written in an object, to address writes of objects
/// whose handle spans all namespaces.
fn written_namespace(json: &Value) -> Option<&str> {
    json.pointer("/metadata/namespace")?
        .as_str()
        .filter(|s| !s.is_empty())
}

impl<K: Serialize + DeserializeOwned> Api<K> {
    /// Reads one object.
    pub async fn get(&self, name: &str) -> Result<K> {
        let reply = self
            .client
            .kernel()
            .get(pb::GetRequest {
                resource: self.target(None, name),
            })
            .instrument(self.span("get", name))
            .await?;
        decode(&reply.into_inner().json)
    }

    /// Reads one object, `None` if it does not exist.
    pub async fn get_opt(&self, name: &str) -> Result<Option<K>> {
        match self.get(name).await {
            Ok(obj) => Ok(Some(obj)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists one page of objects (everything when `lp.limit` is `None`).
    pub async fn list(&self, lp: &ListParams) -> Result<ObjectList<K>> {
        let reply = self
            .client
            .kernel()
            .list(pb::ListRequest {
                resource: self.target(None, ""),
                label_selector: lp.label_selector.clone().unwrap_or_default(),
                field_selector: lp.field_selector.clone().unwrap_or_default(),
                limit: lp.limit.map(i64::from).unwrap_or(0),
                continue_token: lp.continue_token.clone().unwrap_or_default(),
            })
            .instrument(self.span("list", ""))
            .await?
            .into_inner();
        let items = reply
            .items
            .iter()
            .map(|b| decode(b))
            .collect::<Result<Vec<K>>>()?;
        Ok(ObjectList {
            items,
            resource_version: reply.resource_version,
            continue_token: Some(reply.continue_token).filter(|c| !c.is_empty()),
        })
    }

    /// Creates an object; its namespace is the handle's or the object's own.
    pub async fn create(&self, pp: &PostParams, obj: &K) -> Result<K> {
        let json = serde_json::to_value(obj)?;
        let reply = self
            .client
            .kernel()
            .create(pb::CreateRequest {
                resource: self.target(written_namespace(&json), ""),
                json: serde_json::to_vec(&json)?,
                dry_run: pp.dry_run,
                field_manager: pp.field_manager.clone().unwrap_or_default(),
                subresource: String::new(),
            })
            .instrument(self.span("create", ""))
            .await?;
        decode(&reply.into_inner().json)
    }

    /// Replaces an object; a set `metadata.resourceVersion` must match the
    /// stored one, else [`Error::Conflict`].
    pub async fn replace(&self, name: &str, pp: &PostParams, obj: &K) -> Result<K> {
        let (resource, json) = self.update_request(name, obj)?;
        let reply = self
            .client
            .kernel()
            .update(pb::UpdateRequest {
                resource,
                json,
                dry_run: pp.dry_run,
                field_manager: pp.field_manager.clone().unwrap_or_default(),
            })
            .instrument(self.span("update", name))
            .await?;
        decode(&reply.into_inner().json)
    }

    /// Replaces an object's `status` subresource.
    pub async fn replace_status(&self, name: &str, pp: &PostParams, obj: &K) -> Result<K> {
        let (resource, json) = self.update_request(name, obj)?;
        let reply = self
            .client
            .kernel()
            .update_status(pb::UpdateRequest {
                resource,
                json,
                dry_run: pp.dry_run,
                field_manager: pp.field_manager.clone().unwrap_or_default(),
            })
            .instrument(self.span("update_status", name))
            .await?;
        decode(&reply.into_inner().json)
    }

    fn update_request(&self, name: &str, obj: &K) -> Result<(Option<pb::ResourceRef>, Vec<u8>)> {
        let json = serde_json::to_value(obj)?;
        Ok((
            self.target(written_namespace(&json), name),
            serde_json::to_vec(&json)?,
        ))
    }

    /// Patches an object.
    pub async fn patch<P: Serialize>(
        &self,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        self.patch_subresource("", name, pp, patch).await
    }

    /// Patches an object's `status` subresource.
    pub async fn patch_status<P: Serialize>(
        &self,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        self.patch_subresource("status", name, pp, patch).await
    }

    async fn patch_subresource<P: Serialize>(
        &self,
        subresource: &str,
        name: &str,
        pp: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<K> {
        let (patch_type, body) = patch.encode()?;
        let reply = self
            .client
            .kernel()
            .patch(pb::PatchRequest {
                resource: self.target(None, name),
                patch_type: patch_type.into(),
                patch: body,
                subresource: subresource.to_owned(),
                dry_run: pp.dry_run,
                field_manager: pp.field_manager.clone().unwrap_or_default(),
                force: pp.force,
            })
            .instrument(self.span("patch", name))
            .await?;
        decode(&reply.into_inner().json)
    }

    /// Deletes an object. Returns its last state, or `None` when the kernel
    /// answered with a `Status` instead (the object was already gone).
    pub async fn delete(&self, name: &str, dp: &DeleteParams) -> Result<Option<K>> {
        let reply = self
            .client
            .kernel()
            .delete(pb::DeleteRequest {
                resource: self.target(None, name),
                propagation_policy: dp.propagation_policy.clone().unwrap_or_default(),
                resource_version: dp.resource_version.clone().unwrap_or_default(),
                dry_run: dp.dry_run,
                grace_period_seconds: dp.grace_period_seconds.map(i64::from).unwrap_or(-1),
            })
            .instrument(self.span("delete", name))
            .await?
            .into_inner();
        let json: Value = serde_json::from_slice(&reply.json)?;
        if json.get("kind").and_then(Value::as_str) == Some("Status") {
            return Ok(None);
        }
        Ok(Some(serde_json::from_value(json)?))
    }

    /// Watches changes after `resource_version` (empty: from now on).
    ///
    /// A watch ERROR event ends up as an `Err` item, `Error::Gone` when the
    /// revision has left the kernel's window: list again, then watch.
    pub async fn watch(
        &self,
        wp: &WatchParams,
        resource_version: &str,
    ) -> Result<BoxStream<'static, Result<WatchEvent<K>>>>
    where
        K: Send + 'static,
    {
        let stream = self
            .client
            .kernel()
            .watch(pb::WatchRequest {
                resource: self.target(None, ""),
                resource_version: resource_version.to_owned(),
                label_selector: wp.label_selector.clone().unwrap_or_default(),
                field_selector: wp.field_selector.clone().unwrap_or_default(),
                allow_bookmarks: wp.bookmarks,
            })
            .instrument(self.span("watch", ""))
            .await?
            .into_inner();
        Ok(stream
            .map_err(Error::from)
            .and_then(|event| async move { decode_event(&event.r#type, &event.object) })
            .boxed())
    }
}

/// Decodes one watch event of the kernel.
pub(crate) fn decode_event<K: DeserializeOwned>(
    kind: &str,
    object: &[u8],
) -> Result<WatchEvent<K>> {
    match kind {
        "ADDED" => Ok(WatchEvent::Added(decode(object)?)),
        "MODIFIED" => Ok(WatchEvent::Modified(decode(object)?)),
        "DELETED" => Ok(WatchEvent::Deleted(decode(object)?)),
        "BOOKMARK" => {
            let json: Value = serde_json::from_slice(object)?;
            let rv = json
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok(WatchEvent::Bookmark(rv.to_owned()))
        }
        "ERROR" => Err(from_status_object(&serde_json::from_slice(object)?)),
        other => Err(Error::Invalid(format!(
            "unknown watch event type {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn decodes_watch_events() {
        let cm = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"5"}}"#;
        let Ok(WatchEvent::Added(obj)) = decode_event::<ConfigMap>("ADDED", cm) else {
            panic!("expected ADDED");
        };
        assert_eq!(obj.metadata.name.as_deref(), Some("a"));
        let bookmark = br#"{"kind":"ConfigMap","metadata":{"resourceVersion":"42"}}"#;
        assert!(matches!(
            decode_event::<ConfigMap>("BOOKMARK", bookmark),
            Ok(WatchEvent::Bookmark(rv)) if rv == "42"
        ));
        let gone = br#"{"kind":"Status","code":410,"message":"too old"}"#;
        assert!(matches!(
            decode_event::<ConfigMap>("ERROR", gone),
            Err(Error::Gone(_))
        ));
        assert!(decode_event::<ConfigMap>("WEIRD", cm).is_err());
    }

    #[test]
    fn patches_encode_their_type() {
        let merge = Patch::Merge(serde_json::json!({"data": {"a": "b"}})).encode();
        assert!(
            matches!(merge, Ok((pb::PatchType::Merge, ref body)) if body == br#"{"data":{"a":"b"}}"#)
        );
        let json = Patch::Json(serde_json::json!([{"op": "remove", "path": "/data"}])).encode();
        assert!(matches!(json, Ok((pb::PatchType::Json, _))));
        assert!(matches!(
            Patch::Apply(1).encode(),
            Ok((pb::PatchType::Apply, _))
        ));
    }

    #[test]
    fn writes_address_the_objects_namespace() {
        let json = serde_json::json!({"metadata": {"namespace": "team"}});
        assert_eq!(written_namespace(&json), Some("team"));
        assert_eq!(
            written_namespace(&serde_json::json!({"metadata": {}})),
            None
        );
    }
}
