//! The service layer: one implementation of every API verb, called by both
//! the REST and the gRPC front-ends so they cannot drift apart.
//!
//! Objects are `serde_json::Value`s in their Kubernetes JSON encoding. The
//! store holds them without `metadata.resourceVersion`; it is the key's mod
//! revision and is filled in on the way out.

mod crd;
pub mod meta;
mod priority;
mod subresources;
pub mod token_request;
pub mod write;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::error::{ApiError, ErrorTarget, Result};
use crate::registry::{Registry, ResourceType};
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{self, KeyValue, Store};
use crate::watch::{self, WatchCache};

pub use write::PatchType;

/// How unknown fields in a request body are treated (`fieldValidation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and warn (the server default).
    #[default]
    Warn,
    /// Refuse the request.
    Strict,
}

impl FieldValidation {
    /// Parses the query parameter value.
    pub fn parse(value: &str) -> Result<Self> {
        match value {
            "" | "Warn" => Ok(Self::Warn),
            "Ignore" => Ok(Self::Ignore),
            "Strict" => Ok(Self::Strict),
            other => Err(ApiError::BadRequest(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\" or \"Strict\", got {other:?}"
            ))),
        }
    }
}

/// Options shared by every write.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Validate and compute the result, but store nothing.
    pub dry_run: bool,
    /// The writer's name recorded in `managedFields`.
    pub field_manager: String,
    /// Treatment of unknown fields.
    pub field_validation: FieldValidation,
    /// Server-side apply: take over conflicting fields.
    pub force: bool,
}

/// Options of a delete.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// `Background`, `Foreground` or `Orphan`.
    pub propagation_policy: Option<String>,
    /// Delete only if the object still has this resourceVersion.
    pub precondition_resource_version: Option<String>,
    /// Delete only if the object still has this uid.
    pub precondition_uid: Option<String>,
    /// Grace period; `None` for the object's default.
    pub grace_period_seconds: Option<i64>,
    /// Compute the result but change nothing.
    pub dry_run: bool,
}

/// Options of a list.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Label selector in Kubernetes syntax.
    pub label_selector: String,
    /// Field selector in Kubernetes syntax.
    pub field_selector: String,
    /// Page size; 0 for everything.
    pub limit: usize,
    /// Continue token of the previous page.
    pub continue_token: Option<String>,
    /// `None`/empty: a consistent, most recent read; a revision: at least as new.
    pub resource_version: Option<String>,
}

/// Options of a watch.
#[derive(Clone, Debug, Default)]
pub struct WatchOptions {
    /// Label selector in Kubernetes syntax.
    pub label_selector: String,
    /// Field selector in Kubernetes syntax.
    pub field_selector: String,
    /// Start after this revision; `None`, empty or "0": current state first.
    pub resource_version: Option<String>,
    /// Send BOOKMARK events.
    pub bookmarks: bool,
}

/// What a write returns.
#[derive(Clone, Debug)]
pub struct WriteResult {
    /// The object as stored (or as it would be, for a dry run).
    pub object: Value,
    /// Warnings for the `Warning` header (unknown fields, ...).
    pub warnings: Vec<String>,
    /// True when the write created the object.
    pub created: bool,
}

/// One page of a list.
pub struct ListResult {
    /// The objects, each already encoded (with resourceVersion).
    pub items: Vec<Arc<watch::CachedObject>>,
    /// The revision the list is consistent at.
    pub resource_version: String,
    /// Token for the next page, if any.
    pub continue_token: Option<String>,
    /// Items remaining after this page, when known.
    pub remaining: Option<i64>,
}

/// What a request addresses: a type, and optionally a namespace and name.
#[derive(Clone, Debug)]
pub struct Target {
    /// The resource type.
    pub rt: Arc<ResourceType>,
    /// The namespace from the path (namespaced types only).
    pub namespace: Option<String>,
    /// The object name from the path.
    pub name: Option<String>,
}

impl Target {
    /// The store key of the addressed object.
    fn key(&self) -> Result<String> {
        let name = self.name.as_deref().ok_or_else(|| {
            ApiError::MethodNotAllowed("this operation needs an object name".into())
        })?;
        if self.rt.namespaced && self.namespace.is_none() {
            return Err(ApiError::NotFoundMessage(format!(
                "the server could not find the requested resource: {} is namespaced",
                self.rt.plural
            )));
        }
        Ok(self.rt.key(self.namespace.as_deref(), name))
    }

    /// Identifies the object in error messages.
    pub fn error_target(&self) -> ErrorTarget {
        ErrorTarget {
            group: self.rt.group.clone(),
            resource: self.rt.plural.clone(),
            kind: self.rt.kind.clone(),
            name: self.name.clone().unwrap_or_default(),
        }
    }
}

/// The kernel's API service over one store and one registry.
pub struct Service {
    store: Arc<dyn Store>,
    registry: Arc<Registry>,
    caches: tokio::sync::Mutex<HashMap<String, Arc<WatchCache>>>,
    cache_config: watch::CacheConfig,
    /// Run on creates and updates before validation (empty until set).
    admission: std::sync::RwLock<Arc<crate::admission::Chain>>,
    /// Signs ServiceAccount tokens for the TokenRequest API (set at start).
    token_signer: std::sync::OnceLock<Arc<crate::auth::serviceaccount::TokenSigner>>,
}

/// How long a consistent read waits for the watch cache to catch up.
const CACHE_CATCH_UP: Duration = Duration::from_secs(5);

impl Service {
    /// A service over `store`, serving the types of `registry`. Registers the
    /// custom resources found in the store. Watch caches use `cache_config`.
    pub async fn new(
        store: Arc<dyn Store>,
        registry: Arc<Registry>,
        cache_config: watch::CacheConfig,
    ) -> Result<Arc<Self>> {
        let service = Arc::new(Self {
            store,
            registry,
            caches: tokio::sync::Mutex::new(HashMap::new()),
            cache_config,
            admission: std::sync::RwLock::new(Arc::new(crate::admission::Chain::default())),
            token_signer: std::sync::OnceLock::new(),
        });
        service.load_crds().await?;
        service.start_caches().await?;
        Ok(service)
    }

    /// Starts the watch cache of every served type that has none yet. Like
    /// Kubernetes, caches run from start-up on, so a watch can resume from
    /// any resourceVersion a client has seen since, within the window.
    pub async fn start_caches(&self) -> Result<()> {
        for rt in self.registry.all() {
            self.cache(&rt).await?;
        }
        Ok(())
    }

    /// Installs the admission chain writes go through from now on.
    pub fn set_admission(&self, chain: crate::admission::Chain) {
        *self.admission.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(chain);
    }

    /// The current admission chain.
    pub(crate) fn admission(&self) -> Arc<crate::admission::Chain> {
        self.admission
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The registry of served types.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The watch cache of a type, started on first use.
    pub async fn cache(&self, rt: &Arc<ResourceType>) -> Result<Arc<WatchCache>> {
        let mut caches = self.caches.lock().await;
        let prefix = rt.key_prefix();
        if let Some(cache) = caches.get(&prefix) {
            return Ok(cache.clone());
        }
        let cache =
            WatchCache::start_with(self.store.clone(), rt.clone(), self.cache_config.clone())
                .await
                .map_err(|e| ApiError::Internal(format!("starting the watch cache: {e}")))?;
        caches.insert(prefix, cache.clone());
        Ok(cache)
    }

    /// Reads one object.
    pub async fn get(&self, t: &Target) -> Result<Value> {
        let key = t.key()?;
        let kv = self.store.get(&key).await.map_err(|e| store_error(t, e))?;
        let kv = kv.ok_or_else(|| ApiError::NotFound(t.error_target()))?;
        decode(&t.rt, &kv)
    }

    /// Lists objects.
    pub async fn list(&self, t: &Target, opts: &ListOptions) -> Result<ListResult> {
        let (labels, fields) = self.selectors(&t.rt, &opts.label_selector, &opts.field_selector)?;
        let cache = self.cache(&t.rt).await?;
        match opts.resource_version.as_deref() {
            // "0": any recent state is fine, serve the cache as it is.
            Some("0") => {}
            None | Some("") => {
                if opts.continue_token.is_none() {
                    let current = self
                        .store
                        .current_revision()
                        .await
                        .map_err(|e| store_error(t, e))?;
                    cache
                        .wait_for_revision(current, CACHE_CATCH_UP)
                        .await
                        .map_err(watch_error)?;
                }
            }
            Some(rv) => {
                let rv = meta::parse_resource_version(rv)?;
                cache
                    .wait_for_revision(rv, CACHE_CATCH_UP)
                    .await
                    .map_err(watch_error)?;
            }
        }
        let page = cache
            .list(watch::ListOptions {
                namespace: t.namespace.clone(),
                labels,
                fields,
                limit: opts.limit,
                continue_token: opts.continue_token.clone(),
            })
            .map_err(watch_error)?;
        Ok(ListResult {
            items: page.items,
            resource_version: page.revision.to_string(),
            continue_token: page.continue_token,
            remaining: page.remaining,
        })
    }

    /// Starts a watch.
    pub async fn watch(&self, t: &Target, opts: &WatchOptions) -> Result<watch::Watcher> {
        let (labels, fields) = self.selectors(&t.rt, &opts.label_selector, &opts.field_selector)?;
        let cache = self.cache(&t.rt).await?;
        let from_revision = match opts.resource_version.as_deref() {
            None | Some("") => None,
            Some(rv) => Some(meta::parse_resource_version(rv)?),
        };
        if from_revision.is_none() {
            // A watch "from now" must not miss writes acknowledged before it.
            let current = self
                .store
                .current_revision()
                .await
                .map_err(|e| store_error(t, e))?;
            cache
                .wait_for_revision(current, CACHE_CATCH_UP)
                .await
                .map_err(watch_error)?;
        }
        cache
            .watch(watch::WatchOptions {
                from_revision,
                namespace: t.namespace.clone(),
                labels,
                fields,
                bookmarks: opts.bookmarks,
            })
            .await
            .map_err(watch_error)
    }

    fn selectors(
        &self,
        rt: &ResourceType,
        labels: &str,
        fields: &str,
    ) -> Result<(LabelSelector, FieldSelector)> {
        let labels =
            LabelSelector::parse(labels).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let fields =
            FieldSelector::parse(fields).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        for field in fields.fields() {
            let supported = field == "metadata.name"
                || field == "metadata.namespace"
                || rt.strategy.selectable_fields().contains(&field);
            if !supported {
                return Err(ApiError::BadRequest(format!(
                    "field label not supported: {field}"
                )));
            }
        }
        Ok((labels, fields))
    }
}

/// Decodes a stored object and fills in its resourceVersion, apiVersion and kind.
pub fn decode(rt: &ResourceType, kv: &KeyValue) -> Result<Value> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::Internal(format!("stored object {} is corrupt: {e}", kv.key)))?;
    meta::set_type(rt, &mut obj);
    meta::meta_mut(&mut obj)?.insert(
        "resourceVersion".into(),
        Value::String(kv.mod_revision.to_string()),
    );
    Ok(obj)
}

/// Encodes an object for the store: everything but its resourceVersion.
pub fn encode(obj: &Value) -> Result<Bytes> {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(&obj)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("encoding the object: {e}")))
}

/// Maps a store error for the object `t` to an API error.
pub fn store_error(t: &Target, err: store::Error) -> ApiError {
    match err {
        store::Error::AlreadyExists { .. } => ApiError::AlreadyExists(t.error_target()),
        store::Error::NotFound { .. } => ApiError::NotFound(t.error_target()),
        store::Error::Conflict { .. } => ApiError::Conflict {
            target: t.error_target(),
            message: CONFLICT_MESSAGE.into(),
        },
        store::Error::Compacted {
            requested,
            compacted,
        } => ApiError::Gone(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        other => {
            tracing::warn!(error = %other, "store failure");
            ApiError::ServiceUnavailable(format!("the store is unavailable: {other}"))
        }
    }
}

/// Kubernetes' message for a stale resourceVersion.
pub const CONFLICT_MESSAGE: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

fn watch_error(err: watch::Error) -> ApiError {
    err.into()
}
