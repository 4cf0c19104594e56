//! The write verbs: create, update (main and status), patch (four kinds,
//! including server-side apply), the scale subresource, and delete.

use serde_json::{Value, json};

use super::meta::{self, meta_mut};
use super::{
    CONFLICT_MESSAGE, DeleteOptions, FieldValidation, Service, Target, WriteOptions, WriteResult,
    decode, encode, store_error,
};
use crate::error::{ApiError, ErrorTarget, Result};
use crate::patch;
use crate::registry::ResourceType;
use crate::store;

/// How a patch body is interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// RFC 6902 JSON patch.
    Json,
    /// RFC 7386 JSON merge patch.
    Merge,
    /// Kubernetes strategic merge patch.
    Strategic,
    /// Server-side apply.
    Apply,
}

/// Which part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Everything but status (when the type has a status subresource).
    Main,
    /// Only status.
    Status,
}

/// Attempts of an unconditional read-modify-write before giving up. Each
/// failed attempt means another writer succeeded, so the system as a whole
/// progresses; the bound only protects against a pathological livelock.
const MAX_RETRIES: usize = 1024;

impl Service {
    /// Creates an object.
    /// Runs the admission chain on a write of `obj` (with the stored `old`
    /// on update) and returns the object as the mutating modules left it.
    async fn admit(
        &self,
        operation: &str,
        t: &Target,
        obj: Value,
        old: Value,
        dry_run: bool,
    ) -> Result<Value> {
        let chain = self.admission();
        if chain.is_empty() {
            return Ok(obj);
        }
        // On delete the object is null: the name is the stored object's.
        let name = [meta::name(&obj), meta::name(&old)]
            .into_iter()
            .find(|n| !n.is_empty())
            .unwrap_or_default()
            .to_owned();
        let request = crate::admission::AdmissionRequest {
            operation: operation.to_owned(),
            group: t.rt.group.clone(),
            version: t.rt.version.clone(),
            kind: t.rt.kind.clone(),
            resource: t.rt.plural.clone(),
            namespace: t.namespace.clone().unwrap_or_default(),
            name,
            object: obj,
            old_object: old,
            user: crate::auth::user::current_user_name(),
            dry_run,
            ..Default::default()
        };
        let target = ErrorTarget {
            name: request.name.clone(),
            ..t.error_target()
        };
        chain.admit(request).await.map_err(|e| match e {
            // Kubernetes words a refusal as `<resource> "<name>" is forbidden: ...`.
            ApiError::Forbidden(message) => ApiError::Forbidden(format!(
                "{} {:?} is forbidden: {message}",
                target.qualified_resource(),
                target.name
            )),
            other => other,
        })
    }

    pub async fn create(&self, t: &Target, obj: Value, opts: &WriteOptions) -> Result<WriteResult> {
        self.create_object(t, obj, opts, false).await
    }

    /// Creates an object; `applied` when server-side apply already recorded
    /// its field ownership.
    async fn create_object(
        &self,
        t: &Target,
        mut obj: Value,
        opts: &WriteOptions,
        applied: bool,
    ) -> Result<WriteResult> {
        let rt = t.rt.clone();
        meta::check_type(&rt, &obj)?;
        let warnings = self.check_fields(&rt, &obj, opts.field_validation)?;
        self.place_in_namespace(t, &mut obj)?;
        if let Some(ns) = t.namespace.as_deref() {
            self.check_namespace_accepts(ns).await?;
        }
        let generate = meta::name(&obj).is_empty()
            && meta::meta_str(&obj, "generateName").is_some_and(|g| !g.is_empty());
        if generate {
            let prefix = meta::meta_str(&obj, "generateName")
                .unwrap_or_default()
                .to_owned();
            meta_mut(&mut obj)?.insert("name".into(), Value::String(generated_name(&prefix)));
        }
        if let Some(path_name) = t.name.as_deref()
            && meta::name(&obj) != path_name
        {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({}) does not match the name on the URL ({path_name})",
                meta::name(&obj)
            )));
        }
        prepare_for_create(&rt, &mut obj)?;
        if rt.group.is_empty() && rt.plural == "pods" {
            self.resolve_pod_priority(&mut obj).await?;
        }
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            self.prepare_crd(&mut obj)?;
        }
        obj = self
            .admit("CREATE", t, obj, Value::Null, opts.dry_run)
            .await?;
        self.validate(t, &obj, None)?;
        if !applied {
            obj = track_ownership(&rt, None, obj, opts, Part::Main);
        }
        if opts.dry_run {
            return Ok(WriteResult {
                object: obj,
                warnings,
                created: true,
            });
        }
        let mut attempts = 0;
        loop {
            let target = Target {
                name: Some(meta::name(&obj).to_owned()),
                ..t.clone()
            };
            match self.store.create(&target.key()?, encode(&obj)?).await {
                Ok(kv) => {
                    let object = decode(&rt, &kv)?;
                    self.after_write(&rt, Some(&object)).await;
                    return Ok(WriteResult {
                        object,
                        warnings,
                        created: true,
                    });
                }
                Err(store::Error::AlreadyExists { .. }) if generate && attempts < 8 => {
                    attempts += 1;
                    let prefix = meta::meta_str(&obj, "generateName")
                        .unwrap_or_default()
                        .to_owned();
                    meta_mut(&mut obj)?
                        .insert("name".into(), Value::String(generated_name(&prefix)));
                }
                Err(e) => return Err(store_error(&target, e)),
            }
        }
    }

    /// Replaces an object (PUT), or its status (`part` = Status).
    pub async fn update(
        &self,
        t: &Target,
        obj: Value,
        part: Part,
        opts: &WriteOptions,
    ) -> Result<WriteResult> {
        meta::check_type(&t.rt, &obj)?;
        let warnings = self.check_fields(&t.rt, &obj, opts.field_validation)?;
        let mut obj = obj;
        self.place_in_namespace(t, &mut obj)?;
        let explicit_rv = meta::resource_version(&obj)?;
        // Without a resourceVersion the update is unconditional, which
        // Kubernetes allows for every built-in type.
        let object = self
            .modify(t, part, opts, explicit_rv, true, |_current| Ok(obj.clone()))
            .await?;
        Ok(WriteResult {
            object,
            warnings,
            created: false,
        })
    }

    /// Patches an object; server-side apply creates it if missing.
    pub async fn patch(
        &self,
        t: &Target,
        patch_type: PatchType,
        body: &[u8],
        part: Part,
        opts: &WriteOptions,
    ) -> Result<WriteResult> {
        let patch_doc = parse_patch_body(patch_type, body)?;
        if patch_type == PatchType::Apply {
            if opts.field_manager.is_empty() {
                return Err(ApiError::BadRequest(
                    "PATCH of type application/apply-patch+yaml requires the fieldManager parameter".into(),
                ));
            }
            meta::check_type(&t.rt, &patch_doc)?;
            if patch_doc.get("apiVersion").is_none() || patch_doc.get("kind").is_none() {
                return Err(ApiError::BadRequest(
                    "invalid object type: apiVersion and kind must be set in an apply patch".into(),
                ));
            }
            match self.get(t).await {
                Err(ApiError::NotFound(_)) if part == Part::Main => {
                    let api_version = t.rt.api_version();
                    let fm = field_manager(&t.rt, &opts.field_manager, &api_version, part);
                    let applied = patch::apply(None, &patch_doc, &fm, opts.force)
                        .map_err(|e| apply_error(t, e))?;
                    return self.create_object(t, applied, opts, true).await;
                }
                Err(e) => return Err(e),
                Ok(_) => {}
            }
        }
        let warnings = match patch_type {
            PatchType::Json => Vec::new(),
            _ => self.check_fields_partial(&t.rt, &patch_doc, opts.field_validation)?,
        };
        let rt = t.rt.clone();
        let explicit_rv = meta::resource_version(&patch_doc).ok().flatten();
        let api_version = rt.api_version();
        let track = patch_type != PatchType::Apply;
        let object = self
            .modify(t, part, opts, explicit_rv, track, |current| match patch_type {
                PatchType::Json => patch::json_patch(current, &patch_doc).map_err(|e| patch_error(t, e)),
                PatchType::Merge => patch::merge_patch(current, &patch_doc).map_err(|e| patch_error(t, e)),
                PatchType::Strategic => {
                    let schema = patch::Schema::builtin(&rt.group, &rt.kind).ok_or_else(|| {
                        ApiError::UnsupportedMediaType(format!(
                            "the body of the request was in an unknown format - strategic merge patch is not supported for {}; use application/merge-patch+json, application/json-patch+json or application/apply-patch+yaml",
                            rt.plural
                        ))
                    })?;
                    patch::strategic_merge(current, &patch_doc, schema).map_err(|e| patch_error(t, e))
                }
                PatchType::Apply => {
                    let fm = field_manager(&rt, &opts.field_manager, &api_version, part);
                    // Apply owns the main resource's fields, never status.
                    let mut applied = match patch::apply(Some(current), &patch_doc, &fm, opts.force) {
                        // Moving from client-side to server-side apply: fields
                        // only kubectl's client-side apply owns are taken over,
                        // as Kubernetes' last-applied manager does.
                        Err(patch::ApplyError::Conflicts(conflicts))
                            if has_last_applied(current)
                                && conflicts.iter().all(|c| c.manager == CLIENT_SIDE_APPLY_MANAGER) =>
                        {
                            patch::apply(Some(current), &patch_doc, &fm, true)
                        }
                        other => other,
                    }
                    .map_err(|e| apply_error(t, e))?;
                    if part == Part::Main && rt.status_subresource {
                        match current.get("status") {
                            Some(status) => applied["status"] = status.clone(),
                            None => {
                                if let Some(m) = applied.as_object_mut() {
                                    m.remove("status");
                                }
                            }
                        }
                    }
                    Ok(applied)
                }
            })
            .await?;
        Ok(WriteResult {
            object,
            warnings,
            created: false,
        })
    }

    /// The `scale` subresource of an object, as an `autoscaling/v1` Scale.
    pub async fn get_scale(&self, t: &Target) -> Result<Value> {
        let obj = self.get(t).await?;
        to_scale(&t.rt, &obj)
    }

    /// Changes the desired replicas through the `scale` subresource: `change`
    /// maps the current Scale to the new one.
    pub async fn update_scale(
        &self,
        t: &Target,
        opts: &WriteOptions,
        change: impl Fn(&Value) -> Result<Value>,
    ) -> Result<Value> {
        let rt = t.rt.clone();
        let paths = rt.scale.clone().ok_or_else(|| {
            ApiError::NotFoundMessage(format!("{} has no scale subresource", rt.plural))
        })?;
        let object = self
            .modify(t, Part::Main, opts, None, true, |current| {
                let scale = change(&to_scale(&rt, current)?)?;
                let replicas = scale
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| {
                        ApiError::BadRequest("spec.replicas must be an integer".into())
                    })?;
                if replicas < 0 {
                    return Err(ApiError::Invalid {
                        target: t.error_target(),
                        causes: vec![crate::error::FieldError::invalid(
                            "spec.replicas",
                            &json!(replicas),
                            "must be greater than or equal to 0",
                        )],
                    });
                }
                let mut next = current.clone();
                set_json_path(&mut next, &paths.spec_replicas, json!(replicas))?;
                Ok(next)
            })
            .await?;
        to_scale(&rt, &object)
    }

    /// The read-modify-write loop behind update, patch and scale: `change`
    /// maps the stored object to the desired one; the rest (immutable
    /// metadata, status split, generation, validation, managedFields, the
    /// compare-and-swap) is the same for all of them.
    async fn modify(
        &self,
        t: &Target,
        part: Part,
        opts: &WriteOptions,
        explicit_rv: Option<i64>,
        track: bool,
        mut change: impl FnMut(&Value) -> Result<Value>,
    ) -> Result<Value> {
        let rt = t.rt.clone();
        let key = t.key()?;
        // The first attempt starts from the watch cache's copy, as the
        // Kubernetes API server does: when it is current (the common case)
        // the write costs one store round trip; when it is stale the
        // compare-and-swap fails and the next attempt reads the store.
        let mut guess = match explicit_rv {
            None => self.cache(&rt).await?.get(&key),
            Some(rv) => self
                .cache(&rt)
                .await?
                .get(&key)
                .filter(|o| o.revision == rv),
        };
        for _ in 0..MAX_RETRIES {
            let from_cache = guess.is_some();
            let (current, mod_revision) = match guess.take() {
                Some(cached) => (cached.value(), cached.revision),
                None => {
                    let kv = self
                        .store
                        .get(&key)
                        .await
                        .map_err(|e| store_error(t, e))?
                        .ok_or_else(|| ApiError::NotFound(t.error_target()))?;
                    (decode(&rt, &kv)?, kv.mod_revision)
                }
            };
            if let Some(rv) = explicit_rv
                && rv != mod_revision
            {
                return Err(ApiError::Conflict {
                    target: t.error_target(),
                    message: CONFLICT_MESSAGE.into(),
                });
            }
            let mut next = change(&current)?;
            self.merge_immutable(t, &current, &mut next, part)?;
            if next == current && from_cache {
                // "Nothing to do" must be judged against the store, not a
                // cache that may lag it.
                continue;
            }
            if next == current {
                // Nothing changed: no write, no new resourceVersion.
                return Ok(current);
            }
            let mut next = self
                .admit("UPDATE", t, next, current.clone(), opts.dry_run)
                .await?;
            self.validate(t, &next, Some(&current))?;
            if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
                self.prepare_crd(&mut next)?;
            }
            if track {
                next = track_ownership(&rt, Some(&current), next, opts, part);
            }
            if opts.dry_run {
                return Ok(next);
            }
            // A terminating namespace also waits for its spec finalizers
            // (cleared by the namespace controller once it is empty).
            let finalized = meta::meta_str(&next, "deletionTimestamp").is_some()
                && meta::finalizers(&next).is_empty()
                && !has_spec_finalizers(&rt, &next);
            let result = if finalized {
                // The last finalizer is gone: the pending deletion completes.
                self.store
                    .delete(&key, Some(mod_revision))
                    .await
                    .map(|_| None)
            } else {
                self.store
                    .update(&key, encode(&next)?, mod_revision)
                    .await
                    .map(Some)
            };
            match result {
                Ok(Some(kv)) => {
                    let object = decode(&rt, &kv)?;
                    self.after_write(&rt, Some(&object)).await;
                    return Ok(object);
                }
                Ok(None) => {
                    self.after_delete(&rt, &next).await;
                    return Ok(next);
                }
                Err(store::Error::Conflict { .. }) if explicit_rv.is_none() => {
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(store::Error::Conflict { .. }) => {
                    return Err(ApiError::Conflict {
                        target: t.error_target(),
                        message: CONFLICT_MESSAGE.into(),
                    });
                }
                Err(e) => return Err(store_error(t, e)),
            }
        }
        Err(ApiError::Conflict {
            target: t.error_target(),
            message: CONFLICT_MESSAGE.into(),
        })
    }

    /// Keeps what a write may not change, and splits spec from status.
    fn merge_immutable(
        &self,
        t: &Target,
        current: &Value,
        next: &mut Value,
        part: Part,
    ) -> Result<()> {
        let rt = &t.rt;
        if !next.is_object() {
            return Err(ApiError::BadRequest(
                "the object must be a JSON object".into(),
            ));
        }
        let path_name = t.name.as_deref().unwrap_or_default();
        let name = meta::name(next);
        if !name.is_empty() && name != path_name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({name}) does not match the name on the URL ({path_name})"
            )));
        }
        if let Some(ns) = meta::meta_str(next, "namespace")
            && !ns.is_empty()
            && Some(ns) != t.namespace.as_deref()
        {
            return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
        }
        if part == Part::Status {
            // A status write changes status only.
            let status = next.get("status").cloned();
            let mut merged = current.clone();
            match status {
                Some(s) => merged["status"] = s,
                None => {
                    if let Some(m) = merged.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            *next = merged;
        } else if rt.status_subresource {
            match current.get("status") {
                Some(s) => next["status"] = s.clone(),
                None => {
                    if let Some(m) = next.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        meta::set_type(rt, next);
        let old_meta = current
            .get("metadata")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let new_meta = meta_mut(next)?;
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "generation",
        ] {
            match old_meta.get(field) {
                Some(v) => {
                    new_meta.insert(field.into(), v.clone());
                }
                None => {
                    new_meta.remove(field);
                }
            }
        }
        if part == Part::Main {
            rt.strategy.default(next);
        }
        if meta::spec_changed(current, next) {
            let generation = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(next)?.insert("generation".into(), json!(generation + 1));
        }
        Ok(())
    }

    /// Deletes an object, or marks it for deletion when finalizers or a grace
    /// period hold it back. Returns the object as deleted or marked.
    pub async fn delete(&self, t: &Target, opts: &DeleteOptions) -> Result<Value> {
        let rt = t.rt.clone();
        let key = t.key()?;
        for _ in 0..MAX_RETRIES {
            let kv = self
                .store
                .get(&key)
                .await
                .map_err(|e| store_error(t, e))?
                .ok_or_else(|| ApiError::NotFound(t.error_target()))?;
            let current = decode(&rt, &kv)?;
            check_preconditions(t, &current, opts)?;
            let mut finalizers = meta::finalizers(&current);
            match opts.propagation_policy.as_deref() {
                None | Some("") | Some("Background") => {}
                Some("Foreground") => add_unique(&mut finalizers, "foregroundDeletion"),
                Some("Orphan") => add_unique(&mut finalizers, "orphan"),
                Some(other) => {
                    return Err(ApiError::BadRequest(format!(
                        "unsupported propagationPolicy {other:?}: must be Background, Foreground or Orphan"
                    )));
                }
            }
            if meta::meta_str(&current, "deletionTimestamp").is_none() {
                // Deletes pass the chain once, when they are asked for.
                self.admit("DELETE", t, Value::Null, current.clone(), opts.dry_run)
                    .await?;
            }
            let grace = grace_period(&rt, &current, opts);
            let already_deleting = meta::meta_str(&current, "deletionTimestamp").is_some();
            let must_wait =
                !finalizers.is_empty() || grace > 0 || has_spec_finalizers(&rt, &current);
            if !must_wait {
                if opts.dry_run {
                    return Ok(current);
                }
                match self.store.delete(&key, Some(kv.mod_revision)).await {
                    Ok(_) => {
                        self.after_delete(&rt, &current).await;
                        return Ok(current);
                    }
                    Err(store::Error::Conflict { .. }) => continue,
                    Err(e) => return Err(store_error(t, e)),
                }
            }
            if already_deleting && meta::finalizers(&current) == finalizers {
                return Ok(current);
            }
            let mut next = current.clone();
            {
                let m = meta_mut(&mut next)?;
                if !already_deleting {
                    let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
                    m.insert(
                        "deletionTimestamp".into(),
                        json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    );
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                    let generation = m.get("generation").and_then(Value::as_i64).unwrap_or(0);
                    m.insert("generation".into(), json!(generation + 1));
                }
                m.insert("finalizers".into(), json!(finalizers));
            }
            if rt.kind == "Namespace" && rt.group.is_empty() {
                next["status"]["phase"] = json!("Terminating");
            }
            if opts.dry_run {
                return Ok(next);
            }
            match self
                .store
                .update(&key, encode(&next)?, kv.mod_revision)
                .await
            {
                Ok(kv) => return decode(&rt, &kv),
                Err(store::Error::Conflict { .. }) => continue,
                Err(e) => return Err(store_error(t, e)),
            }
        }
        Err(ApiError::Conflict {
            target: t.error_target(),
            message: CONFLICT_MESSAGE.into(),
        })
    }

    /// Validates with the type's strategy.
    fn validate(&self, t: &Target, obj: &Value, old: Option<&Value>) -> Result<()> {
        let causes = t.rt.strategy.validate(obj, old);
        if causes.is_empty() {
            return Ok(());
        }
        let mut target = t.error_target();
        if target.name.is_empty() {
            target.name = meta::name(obj).to_owned();
        }
        Err(ApiError::Invalid { target, causes })
    }

    /// Applies `fieldValidation` to a whole object.
    fn check_fields(
        &self,
        rt: &ResourceType,
        obj: &Value,
        mode: FieldValidation,
    ) -> Result<Vec<String>> {
        let unknown = rt
            .strategy
            .check_schema(obj)
            .map_err(|e| ApiError::BadRequest(format!("{} in body is invalid: {e}", rt.kind)))?;
        unknown_fields(unknown, mode)
    }

    /// Applies `fieldValidation` to a partial object (a merge patch): only
    /// unknown fields are looked for, since required fields may be absent.
    fn check_fields_partial(
        &self,
        rt: &ResourceType,
        obj: &Value,
        mode: FieldValidation,
    ) -> Result<Vec<String>> {
        if mode == FieldValidation::Ignore || !obj.is_object() {
            return Ok(Vec::new());
        }
        match rt.strategy.check_schema(obj) {
            Ok(unknown) => unknown_fields(unknown, mode),
            // A partial object may fail to decode for missing required
            // fields; the patched result is checked again in full.
            Err(_) => Ok(Vec::new()),
        }
    }

    /// Sets the namespace from the path; refuses a different one in the body.
    fn place_in_namespace(&self, t: &Target, obj: &mut Value) -> Result<()> {
        let body_ns = meta::meta_str(obj, "namespace")
            .unwrap_or_default()
            .to_owned();
        let m = meta_mut(obj)?;
        if t.rt.namespaced {
            let ns = t.namespace.as_deref().ok_or_else(|| {
                ApiError::BadRequest(format!("{} must be created in a namespace", t.rt.plural))
            })?;
            if !body_ns.is_empty() && body_ns != ns {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".into(),
                ));
            }
            m.insert("namespace".into(), Value::String(ns.to_owned()));
        } else {
            m.remove("namespace");
        }
        Ok(())
    }

    /// NamespaceLifecycle: new objects only in existing, active namespaces.
    /// The namespace is read from its watch cache; only when the cache does
    /// not know it (created a moment ago) is the store asked.
    async fn check_namespace_accepts(&self, ns: &str) -> Result<()> {
        let key = format!("/registry/core/namespaces/{ns}");
        let cached = match self.registry.get("", "v1", "namespaces") {
            Some(rt) => self.cache(&rt).await?.get(&key).map(|o| o.value()),
            None => None,
        };
        let namespace = match cached {
            Some(obj) => obj,
            None => {
                let kv = self.store.get(&key).await.map_err(|e| {
                    ApiError::ServiceUnavailable(format!("the store is unavailable: {e}"))
                })?;
                let Some(kv) = kv else {
                    return Err(ApiError::NotFound(crate::error::ErrorTarget {
                        group: String::new(),
                        resource: "namespaces".into(),
                        kind: "Namespace".into(),
                        name: ns.to_owned(),
                    }));
                };
                serde_json::from_slice(&kv.value).unwrap_or(Value::Null)
            }
        };
        if meta::meta_str(&namespace, "deletionTimestamp").is_some() {
            return Err(ApiError::Forbidden(format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            )));
        }
        Ok(())
    }

    /// Reacts to a stored write: custom resource definitions change the registry.
    async fn after_write(&self, rt: &ResourceType, obj: Option<&Value>) {
        if let Some(obj) = obj
            && rt.group == "apiextensions.k8s.io"
            && rt.kind == "CustomResourceDefinition"
        {
            self.sync_crd(obj);
            if let Err(e) = self.start_caches().await {
                tracing::warn!(error = %e, "starting the watch caches of custom resources");
            }
        }
    }

    /// Reacts to a delete.
    async fn after_delete(&self, rt: &ResourceType, obj: &Value) {
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            self.remove_crd(obj).await;
        }
    }
}

fn manager(opts: &WriteOptions) -> &str {
    if opts.field_manager.is_empty() {
        "unknown"
    } else {
        &opts.field_manager
    }
}

/// The field manager of a write: the type's merge rules, and which part of
/// the object the write owns.
fn field_manager<'a>(
    rt: &ResourceType,
    manager: &'a str,
    api_version: &'a str,
    part: Part,
) -> patch::FieldManager<'a> {
    let schema = patch::Schema::builtin(&rt.group, &rt.kind).unwrap_or_else(patch::Schema::generic);
    let (scope, subresource) = match (part, rt.status_subresource) {
        (Part::Status, _) => (patch::Scope::Status, Some("status")),
        (Part::Main, true) => (patch::Scope::MainResource, None),
        (Part::Main, false) => (patch::Scope::All, None),
    };
    patch::FieldManager {
        schema,
        manager,
        api_version,
        subresource,
        scope,
        now: chrono::Utc::now(),
    }
}

/// Records in `managedFields` what an ordinary write changed. Like
/// Kubernetes, a failure to track (an object the schema cannot key) is
/// logged and the write goes on untracked.
fn track_ownership(
    rt: &ResourceType,
    old: Option<&Value>,
    new: Value,
    opts: &WriteOptions,
    part: Part,
) -> Value {
    // A write that changes managedFields itself (kubectl migrating
    // client-side apply ownership to server-side apply) is taken as given.
    if let Some(old) = old {
        let managed = |v: &Value| v.pointer("/metadata/managedFields").cloned();
        if managed(old) != managed(&new) {
            return new;
        }
    }
    let api_version = rt.api_version();
    let fm = field_manager(rt, manager(opts), &api_version, part);
    match patch::track_update(old, &new, &fm) {
        Ok(tracked) => tracked,
        Err(e) => {
            tracing::debug!(error = %e, "field ownership not tracked");
            new
        }
    }
}

/// The manager kubectl's client-side apply writes as.
const CLIENT_SIDE_APPLY_MANAGER: &str = "kubectl-client-side-apply";

fn has_last_applied(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
        .is_some()
}

fn apply_error(t: &Target, err: patch::ApplyError) -> ApiError {
    match err {
        patch::ApplyError::Conflicts(_) => ApiError::ApplyConflict {
            target: t.error_target(),
            causes: err.field_errors(),
        },
        patch::ApplyError::Invalid(message) => ApiError::BadRequest(message),
    }
}

fn unknown_fields(unknown: Vec<String>, mode: FieldValidation) -> Result<Vec<String>> {
    if unknown.is_empty() || mode == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.')))
        .collect();
    if mode == FieldValidation::Strict {
        return Err(ApiError::BadRequest(format!(
            "strict decoding error: {}",
            messages.join(", ")
        )));
    }
    Ok(messages)
}

/// Sets uid, creation time and generation; clears what a create may not set.
fn prepare_for_create(rt: &ResourceType, obj: &mut Value) -> Result<()> {
    meta::set_type(rt, obj);
    if rt.status_subresource
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    let m = meta_mut(obj)?;
    m.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    m.insert(
        "creationTimestamp".into(),
        Value::String(meta::now_rfc3339()),
    );
    m.insert("generation".into(), json!(1));
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        m.remove(field);
    }
    rt.strategy.default(obj);
    Ok(())
}

/// `prefix` plus five random lower-case alphanumerics, as Kubernetes does.
fn generated_name(prefix: &str) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

fn parse_patch_body(patch_type: PatchType, body: &[u8]) -> Result<Value> {
    let parsed: std::result::Result<Value, String> = if patch_type == PatchType::Apply {
        // Apply patches are YAML (JSON is YAML too).
        serde_yaml::from_slice::<Value>(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
    };
    let value = parsed.map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
    let shape_ok = match patch_type {
        PatchType::Json => value.is_array(),
        _ => value.is_object(),
    };
    if !shape_ok {
        let expected = if patch_type == PatchType::Json {
            "a JSON array of operations"
        } else {
            "a JSON object"
        };
        return Err(ApiError::BadRequest(format!(
            "the patch must be {expected}"
        )));
    }
    Ok(value)
}

/// Maps a patch that cannot be applied: 422 when the patch is well formed
/// but does not fit the object (a failed JSON patch operation), 400 otherwise.
pub(super) fn patch_error(t: &Target, err: patch::PatchError) -> ApiError {
    if err.http_status() == 422 {
        ApiError::Invalid {
            target: t.error_target(),
            causes: vec![crate::error::FieldError {
                reason: "FieldValueInvalid",
                field: String::new(),
                message: err.to_string(),
            }],
        }
    } else {
        ApiError::BadRequest(err.to_string())
    }
}

fn check_preconditions(t: &Target, current: &Value, opts: &DeleteOptions) -> Result<()> {
    if let Some(rv) = opts.precondition_resource_version.as_deref() {
        let actual = meta::meta_str(current, "resourceVersion").unwrap_or_default();
        if rv != actual {
            return Err(ApiError::Conflict {
                target: t.error_target(),
                message: format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            });
        }
    }
    if let Some(uid) = opts.precondition_uid.as_deref() {
        let actual = meta::meta_str(current, "uid").unwrap_or_default();
        if uid != actual {
            return Err(ApiError::Conflict {
                target: t.error_target(),
                message: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            });
        }
    }
    Ok(())
}

fn add_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|f| f == item) {
        list.push(item.to_owned());
    }
}

/// Pods bound to a node get a graceful deletion that their kubelet finishes;
/// everything else is deleted at once.
fn grace_period(rt: &ResourceType, obj: &Value, opts: &DeleteOptions) -> i64 {
    if !(rt.group.is_empty() && rt.kind == "Pod") {
        return 0;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    opts.grace_period_seconds
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

/// Namespaces carry `spec.finalizers` that the namespace controller clears
/// after emptying them.
fn has_spec_finalizers(rt: &ResourceType, obj: &Value) -> bool {
    rt.group.is_empty()
        && rt.kind == "Namespace"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
}

/// The Scale view of an object.
fn to_scale(rt: &ResourceType, obj: &Value) -> Result<Value> {
    let paths = rt.scale.as_ref().ok_or_else(|| {
        ApiError::NotFoundMessage(format!("{} has no scale subresource", rt.plural))
    })?;
    let get = |path: &str| obj.pointer(&json_path_to_pointer(path)).cloned();
    let mut metadata = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.get("metadata").and_then(|m| m.get(field)) {
            metadata[field] = v.clone();
        }
    }
    let mut status = json!({ "replicas": get(&paths.status_replicas).unwrap_or(json!(0)) });
    let selector = paths.label_selector.as_deref().and_then(get).or_else(|| {
        obj.pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .map(|labels| {
                Value::String(
                    labels
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(","),
                )
            })
    });
    if let Some(selector) = selector {
        status["selector"] = selector;
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": { "replicas": get(&paths.spec_replicas).unwrap_or(json!(0)) },
        "status": status,
    }))
}

/// `.spec.replicas` → `/spec/replicas`.
fn json_path_to_pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, part| acc + "/" + part)
}

fn set_json_path(obj: &mut Value, path: &str, value: Value) -> Result<()> {
    let mut cursor = obj;
    let parts: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let map = cursor
            .as_object_mut()
            .ok_or_else(|| ApiError::Internal(format!("{path} does not lead through objects")))?;
        if i == parts.len() - 1 {
            map.insert((*part).to_owned(), value);
            return Ok(());
        }
        cursor = map.entry(*part).or_insert_with(|| json!({}));
    }
    Ok(())
}
