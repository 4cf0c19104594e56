//! OpenAPI documents: the `/openapi/v3` index, one OpenAPI 3.0 document per
//! group version (`/openapi/v3/apis/apps/v1`), and the Swagger 2.0 document
//! of `/openapi/v2` (JSON, plus the minimal protobuf form client-go asks for).
//!
//! Schemas come from each type's [`Strategy::openapi_schema`]: built-ins add
//! their k8s-openapi definitions to a `schemars` generator set up for OpenAPI
//! 3.0 (definitions under `#/components/schemas/`, `$ref` siblings moved into
//! `allOf`, as Kubernetes publishes them); custom resources return their inline
//! schema, published under Kubernetes' name for it (`com.example.stable.v1.CronTab`).
//!
//! What kubectl 1.32 relies on here:
//! - `kubectl explain` finds the kind through `x-kubernetes-group-version-kind`
//!   on the operations of `/apis/<g>/<v>/[namespaces/{namespace}/]<plural>`,
//!   then the schema carrying the same extension (a list) in
//!   `components.schemas`, and follows `$ref`/`allOf` for field descriptions.
//! - `kubectl apply/create/replace` (`--validate=strict`) trusts the server to
//!   validate when the PATCH operation of the kind lists `fieldValidation`;
//!   it still fetches `/openapi/v2` as protobuf first and fails if that does
//!   not parse, hence [`OpenApiDocs::v2_protobuf`].
//!
//! [`Strategy::openapi_schema`]: crate::registry::Strategy::openapi_schema

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::registry::{Registry, ResourceType};

/// The Kubernetes version the documents describe.
const API_VERSION: &str = "v1.33.0";

/// The `Content-Type` of the protobuf `/openapi/v2` document.
pub const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// One group version's OpenAPI 3.0 document, serialized once.
#[derive(Debug)]
pub struct GroupVersionDoc {
    /// The document.
    pub doc: Value,
    /// Its JSON encoding, what is served.
    pub json: Bytes,
    /// Stable hash of `json`, used in the index URL and as an ETag.
    pub hash: String,
}

/// Every OpenAPI document of one registry state.
#[derive(Debug)]
pub struct OpenApiDocs {
    index: Value,
    index_json: Bytes,
    group_versions: BTreeMap<String, GroupVersionDoc>,
    v2: Value,
    v2_json: Bytes,
    v2_protobuf: Bytes,
}

impl OpenApiDocs {
    /// Builds every document from the registry. CPU-bound (tens of ms for the
    /// built-in catalog): call it off the async runtime, or through
    /// [`OpenApiCache`].
    pub fn build(registry: &Registry) -> Self {
        let types = registry.all();
        let mut by_gv = ByGroupVersion::new();
        for rt in &types {
            by_gv
                .entry(gv_path(&rt.group, &rt.version))
                .or_insert_with(|| (rt.group.clone(), rt.version.clone(), Vec::new()))
                .2
                .push(rt.clone());
        }
        let mut group_versions = BTreeMap::new();
        let mut index_paths = Map::new();
        for (path, (group, version, gv_types)) in &by_gv {
            let doc = group_version_doc(group, version, gv_types, Flavor::V3);
            let json = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
            let hash = stable_hash(&json);
            index_paths.insert(
                path.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}") }),
            );
            group_versions.insert(path.clone(), GroupVersionDoc { doc, json, hash });
        }
        let index = json!({ "paths": index_paths });
        let index_json = Bytes::from(serde_json::to_vec(&index).unwrap_or_default());

        let v2 = swagger_doc(&by_gv);
        let v2_json = Bytes::from(serde_json::to_vec(&v2).unwrap_or_default());
        Self {
            index,
            index_json,
            group_versions,
            v2,
            v2_json,
            v2_protobuf: Bytes::from(minimal_v2_protobuf()),
        }
    }

    /// The `/openapi/v3` index: `{"paths": {"apis/apps/v1": {"serverRelativeURL": ...}}}`.
    pub fn index(&self) -> &Value {
        &self.index
    }

    /// The index as served JSON.
    pub fn index_json(&self) -> &Bytes {
        &self.index_json
    }

    /// The document of `/openapi/v3/<path>`, `path` being `api/v1` or
    /// `apis/<group>/<version>` (no leading slash). A request whose `hash`
    /// query parameter equals [`GroupVersionDoc::hash`] may be answered with
    /// `Cache-Control: public, immutable` as Kubernetes does.
    pub fn group_version(&self, path: &str) -> Option<&GroupVersionDoc> {
        self.group_versions.get(path.trim_matches('/'))
    }

    /// The Swagger 2.0 document of `/openapi/v2` (JSON).
    pub fn v2(&self) -> &Value {
        &self.v2
    }

    /// [`Self::v2`] as served JSON.
    pub fn v2_json(&self) -> &Bytes {
        &self.v2_json
    }

    /// `/openapi/v2` for `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`
    /// (content type [`OPENAPI_V2_PROTOBUF`]): a gnostic `openapi.v2.Document`
    /// with only `swagger` and `info`. kubectl must be able to parse it before
    /// it applies anything; with no definitions in it, kubectl validates on
    /// the server (the v3 documents advertise `fieldValidation`) and computes
    /// strategic merge patches from its compiled-in types.
    pub fn v2_protobuf(&self) -> &Bytes {
        &self.v2_protobuf
    }
}

/// Keeps the documents of the current registry state. The state is the list
/// of registered types by identity: re-registering a type (a changed CRD)
/// creates a new `Arc`, so any change rebuilds. Holding the `Arc`s keeps their
/// addresses from being reused, so identity comparison is sound.
#[derive(Default)]
pub struct OpenApiCache {
    state: Mutex<Option<Snapshot>>,
}

/// The types the cached documents were built from, and the documents.
type Snapshot = (Vec<Arc<ResourceType>>, Arc<OpenApiDocs>);

/// Resource types of one group version, keyed by `api/v1` / `apis/<g>/<v>`.
type ByGroupVersion = BTreeMap<String, (String, String, Vec<Arc<ResourceType>>)>;

impl OpenApiCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The documents for the registry as it is now, built on first use and
    /// after every registry change. Building holds the lock so concurrent
    /// callers wait for one build instead of each doing it.
    pub fn docs(&self, registry: &Registry) -> Arc<OpenApiDocs> {
        let types = registry.all();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached, docs)) = state.as_ref()
            && cached.len() == types.len()
            && cached.iter().zip(&types).all(|(a, b)| Arc::ptr_eq(a, b))
        {
            return docs.clone();
        }
        let docs = Arc::new(OpenApiDocs::build(registry));
        *state = Some((types, docs.clone()));
        docs
    }
}

/// `api/v1` or `apis/<group>/<version>`.
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// Which OpenAPI dialect a document is written in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V2,
    V3,
}

impl Flavor {
    fn ref_prefix(self) -> &'static str {
        match self {
            Flavor::V2 => "#/definitions/",
            Flavor::V3 => "#/components/schemas/",
        }
    }

    fn reference(self, name: &str) -> Value {
        json!({ "$ref": format!("{}{name}", self.ref_prefix()) })
    }
}

/// Names of the definitions every group version document refers to.
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// One served kind and the definition names of its object and list.
struct Kind<'a> {
    rt: &'a ResourceType,
    object: String,
    list: String,
    builtin: bool,
}

/// Generates the schemas of `types` plus the shared meta types; returns the
/// definitions (refs in the given flavor) and the kinds found.
fn schemas<'a>(
    types: &'a [Arc<ResourceType>],
    flavor: Flavor,
) -> (Map<String, Value>, Vec<Kind<'a>>) {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| {
            s.meta_schema = None;
            if flavor == Flavor::V2 {
                s.definitions_path = "/definitions".into();
            }
        })
        .into_generator();
    let mut inline = Vec::new();
    let mut kinds = Vec::new();
    for rt in types {
        let schema = rt.strategy.openapi_schema(&mut generator);
        let referenced = schema
            .as_ref()
            .and_then(|s| s.get("$ref"))
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(flavor.ref_prefix()))
            .map(str::to_owned);
        let (object, builtin) = match referenced {
            Some(name) => (name, true),
            None => {
                let name = custom_definition_name(rt);
                inline.push((name.clone(), schema.map(Schema::to_value)));
                (name, false)
            }
        };
        let list = format!("{object}List");
        kinds.push(Kind {
            rt,
            object,
            list,
            builtin,
        });
    }
    add::<meta::ObjectMeta>(&mut generator);
    add::<meta::ListMeta>(&mut generator);
    add::<meta::Status>(&mut generator);
    add::<meta::DeleteOptions>(&mut generator);
    add::<meta::Patch>(&mut generator);
    if types.iter().any(|rt| rt.scale.is_some()) {
        add::<k8s_openapi::api::autoscaling::v1::Scale>(&mut generator);
    }
    let mut defs = generator.take_definitions(true);
    for (name, schema) in inline {
        let mut schema = custom_schema(schema, flavor);
        for t in generator.transforms_mut() {
            t.transform(&mut schema);
        }
        defs.insert(name, schema.to_value());
    }
    for kind in &kinds {
        let list = list_schema(kind, flavor);
        defs.insert(kind.list.clone(), list);
        let gvk =
            json!({ "group": kind.rt.group, "kind": kind.rt.kind, "version": kind.rt.version });
        add_gvk(&mut defs, &kind.object, gvk);
    }
    add_gvk(
        &mut defs,
        STATUS,
        json!({ "group": "", "kind": "Status", "version": "v1" }),
    );
    add_gvk(
        &mut defs,
        DELETE_OPTIONS,
        json!({ "group": "", "kind": "DeleteOptions", "version": "v1" }),
    );
    add_gvk(
        &mut defs,
        SCALE,
        json!({ "group": "autoscaling", "kind": "Scale", "version": "v1" }),
    );
    (defs, kinds)
}

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
    generator.subschema_for::<T>();
}

/// Adds `gvk` to the `x-kubernetes-group-version-kind` list of a definition.
fn add_gvk(defs: &mut Map<String, Value>, name: &str, gvk: Value) {
    let Some(def) = defs.get_mut(name).and_then(Value::as_object_mut) else {
        return;
    };
    let list = def
        .entry("x-kubernetes-group-version-kind")
        .or_insert_with(|| json!([]));
    if let Some(list) = list.as_array_mut()
        && !list.contains(&gvk)
    {
        list.push(gvk);
    }
}

/// Kubernetes' definition name of a custom resource: the group's domain
/// reversed, then version and kind (`com.example.stable.v1.CronTab`).
fn custom_definition_name(rt: &ResourceType) -> String {
    let mut parts: Vec<&str> = rt.group.split('.').filter(|p| !p.is_empty()).collect();
    parts.reverse();
    parts.push(&rt.version);
    parts.push(&rt.kind);
    parts.join(".")
}

/// A custom resource's schema as published: its own schema (or an open
/// object when it has none) with `apiVersion`, `kind` and `metadata` filled in
/// the way the API server does, so `kubectl explain` shows them.
fn custom_schema(schema: Option<Value>, flavor: Flavor) -> Schema {
    let mut schema = match schema {
        Some(Value::Object(map)) => map,
        _ => {
            let mut m = Map::new();
            m.insert("type".into(), "object".into());
            m.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
            m
        }
    };
    let props = schema
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut filled = Map::new();
    filled.insert("apiVersion".into(), type_meta_field("apiVersion"));
    filled.insert("kind".into(), type_meta_field("kind"));
    filled.insert(
        "metadata".into(),
        json!({
            "allOf": [flavor.reference(OBJECT_META)],
            "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        }),
    );
    for (k, v) in props {
        // The server owns metadata's schema; everything else is the CRD's.
        if k != "metadata" {
            filled.insert(k, v);
        }
    }
    schema.insert("properties".into(), Value::Object(filled));
    schema.entry("type").or_insert_with(|| "object".into());
    Schema::from(schema)
}

fn type_meta_field(name: &str) -> Value {
    let description = match name {
        "apiVersion" => {
            "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
        }
        _ => {
            "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
        }
    };
    json!({ "type": "string", "description": description })
}

/// The `<Kind>List` definition.
fn list_schema(kind: &Kind<'_>, flavor: Flavor) -> Value {
    let rt = kind.rt;
    json!({
        "description": format!("{}List is a list of {}.", rt.kind, rt.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": type_meta_field("apiVersion"),
            "items": {
                "description": format!("List of {}.", rt.plural),
                "type": "array",
                "items": flavor.reference(&kind.object),
            },
            "kind": type_meta_field("kind"),
            "metadata": {
                "allOf": [flavor.reference(LIST_META)],
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "x-kubernetes-group-version-kind": [
            { "group": rt.group, "kind": format!("{}List", rt.kind), "version": rt.version }
        ],
    })
}

/// The OpenAPI 3.0 document of one group version.
fn group_version_doc(
    group: &str,
    version: &str,
    types: &[Arc<ResourceType>],
    flavor: Flavor,
) -> Value {
    let (defs, kinds) = schemas(types, flavor);
    let mut paths = Map::new();
    for kind in &kinds {
        resource_paths(kind, flavor, &mut paths);
    }
    let title = if group.is_empty() {
        "Kubernetes".to_owned()
    } else {
        format!("Kubernetes {group}/{version}")
    };
    json!({
        "openapi": "3.0.0",
        "info": { "title": title, "version": API_VERSION },
        "paths": paths,
        "components": { "schemas": defs },
    })
}

/// The Swagger 2.0 document of every group version.
fn swagger_doc(by_gv: &ByGroupVersion) -> Value {
    let mut definitions = Map::new();
    let mut paths = Map::new();
    for (_, _, types) in by_gv.values() {
        let (defs, kinds) = schemas(types, Flavor::V2);
        for (name, mut def) in defs {
            strip_v3_only(&mut def);
            definitions.entry(name).or_insert(def);
        }
        for kind in &kinds {
            resource_paths(kind, Flavor::V2, &mut paths);
        }
    }
    json!({
        "swagger": "2.0",
        "info": { "title": "Kubernetes", "version": API_VERSION },
        "paths": paths,
        "definitions": definitions,
    })
}

/// Removes OpenAPI 3.0 keywords Swagger 2.0 does not know.
fn strip_v3_only(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("nullable");
            map.values_mut().for_each(strip_v3_only);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_v3_only),
        _ => {}
    }
}

/// A query parameter: name, type, description.
type Param = (&'static str, &'static str, &'static str);

const PRETTY: Param = (
    "pretty",
    "string",
    "If 'true', then the output is pretty printed.",
);
const DRY_RUN: Param = (
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
);
const FIELD_MANAGER: Param = (
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
);
const FIELD_VALIDATION: Param = (
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
);
const FORCE: Param = (
    "force",
    "boolean",
    "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.",
);
const LIST_PARAMS: [Param; 10] = [
    (
        "allowWatchBookmarks",
        "boolean",
        "allowWatchBookmarks requests watch events with type \"BOOKMARK\".",
    ),
    (
        "continue",
        "string",
        "The continue option should be set when retrieving more results from the server.",
    ),
    (
        "fieldSelector",
        "string",
        "A selector to restrict the list of returned objects by their fields.",
    ),
    (
        "labelSelector",
        "string",
        "A selector to restrict the list of returned objects by their labels.",
    ),
    (
        "limit",
        "integer",
        "limit is a maximum number of responses to return for a list call.",
    ),
    (
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from.",
    ),
    (
        "resourceVersionMatch",
        "string",
        "resourceVersionMatch determines how resourceVersion is applied to list calls.",
    ),
    (
        "sendInitialEvents",
        "boolean",
        "`sendInitialEvents=true` may be set together with `watch=true`.",
    ),
    (
        "timeoutSeconds",
        "integer",
        "Timeout for the list/watch call.",
    ),
    (
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
    ),
];
const DELETE_PARAMS: [Param; 4] = [
    DRY_RUN,
    (
        "gracePeriodSeconds",
        "integer",
        "The duration in seconds before the object should be deleted.",
    ),
    (
        "orphanDependents",
        "boolean",
        "Deprecated: please use the PropagationPolicy.",
    ),
    (
        "propagationPolicy",
        "string",
        "Whether and how garbage collection will be performed.",
    ),
];

fn query(flavor: Flavor, (name, ty, description): Param) -> Value {
    match flavor {
        Flavor::V3 => json!({
            "name": name, "in": "query", "description": description,
            "schema": { "type": ty, "uniqueItems": true },
        }),
        Flavor::V2 => json!({
            "name": name, "in": "query", "description": description,
            "type": ty, "uniqueItems": true,
        }),
    }
}

fn path_param(flavor: Flavor, name: &str, description: &str) -> Value {
    match flavor {
        Flavor::V3 => json!({
            "name": name, "in": "path", "required": true, "description": description,
            "schema": { "type": "string", "uniqueItems": true },
        }),
        Flavor::V2 => json!({
            "name": name, "in": "path", "required": true, "description": description,
            "type": "string", "uniqueItems": true,
        }),
    }
}

/// Group and version as they appear in operation ids (`AppsV1`, `CoreV1`,
/// `RbacAuthorizationV1`).
fn op_prefix(group: &str, version: &str) -> String {
    let group = group.strip_suffix(".k8s.io").unwrap_or(group);
    let group = if group.is_empty() { "core" } else { group };
    let mut out = String::new();
    for part in group.split(['.', '-']).chain(std::iter::once(version)) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// One HTTP method of a path.
struct Op {
    method: &'static str,
    action: &'static str,
    verb: &'static str,
    /// Definition returned (and, for create/replace, sent).
    returns: String,
    /// Request body definition, if any.
    body: Option<String>,
    params: Vec<Param>,
    /// Extra success codes beyond 200.
    created: bool,
    accepted: bool,
}

/// Adds the paths of one kind: collection, item, and subresources.
fn resource_paths(kind: &Kind<'_>, flavor: Flavor, paths: &mut Map<String, Value>) {
    let rt = kind.rt;
    let root = if rt.group.is_empty() {
        format!("/api/{}", rt.version)
    } else {
        format!("/apis/{}/{}", rt.group, rt.version)
    };
    let scope = if rt.namespaced {
        format!("{root}/namespaces/{{namespace}}")
    } else {
        root.clone()
    };
    let prefix = op_prefix(&rt.group, &rt.version);
    let ns = if rt.namespaced { "Namespaced" } else { "" };
    let gvk = json!({ "group": rt.group, "kind": rt.kind, "version": rt.version });
    let tag = format!(
        "{}_{}",
        if rt.group.is_empty() {
            "core"
        } else {
            &rt.group
        },
        rt.version
    );
    let obj = kind.object.clone();
    let write = vec![DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION];
    let patch = vec![DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE];
    let path_params = |with_name: bool| {
        let mut p = Vec::new();
        if with_name {
            p.push(path_param(
                flavor,
                "name",
                &format!("name of the {}", rt.kind),
            ));
        }
        if rt.namespaced {
            p.push(path_param(
                flavor,
                "namespace",
                "object name and auth scope, such as for teams and projects",
            ));
        }
        p.push(query(flavor, PRETTY));
        p
    };
    let has = |verb: &str| rt.verbs.iter().any(|v| v == verb);
    let ctx = PathCtx {
        flavor,
        tag: &tag,
        builtin: kind.builtin,
    };

    let mut collection = Vec::new();
    if has("list") {
        collection.push(Op {
            method: "get",
            action: "list",
            verb: "list",
            returns: kind.list.clone(),
            body: None,
            params: LIST_PARAMS.to_vec(),
            created: false,
            accepted: false,
        });
    }
    if has("create") {
        collection.push(Op {
            method: "post",
            action: "post",
            verb: "create",
            returns: obj.clone(),
            body: Some(obj.clone()),
            params: write.clone(),
            created: true,
            accepted: true,
        });
    }
    if has("deletecollection") {
        let mut params = DELETE_PARAMS.to_vec();
        params.extend(
            LIST_PARAMS
                .iter()
                .filter(|p| p.0 != "watch" && p.0 != "allowWatchBookmarks"),
        );
        collection.push(Op {
            method: "delete",
            action: "deletecollection",
            verb: "deleteCollection",
            returns: STATUS.into(),
            body: Some(DELETE_OPTIONS.into()),
            params,
            created: false,
            accepted: false,
        });
    }
    let item = item_ops(&obj, &write, &patch, &has, true);
    let id = |verb: &str, suffix: &str| {
        if verb == "deleteCollection" {
            format!("delete{prefix}Collection{ns}{}{suffix}", rt.kind)
        } else {
            format!("{verb}{prefix}{ns}{}{suffix}", rt.kind)
        }
    };
    ctx.insert(
        paths,
        format!("{scope}/{}", rt.plural),
        &collection,
        &gvk,
        path_params(false),
        |v| id(v, ""),
    );
    ctx.insert(
        paths,
        format!("{scope}/{}/{{name}}", rt.plural),
        &item,
        &gvk,
        path_params(true),
        |v| id(v, ""),
    );
    if rt.namespaced && has("list") {
        let all = [Op {
            method: "get",
            action: "list",
            verb: "list",
            returns: kind.list.clone(),
            body: None,
            params: LIST_PARAMS.to_vec(),
            created: false,
            accepted: false,
        }];
        let params = vec![query(flavor, PRETTY)];
        ctx.insert(
            paths,
            format!("{root}/{}", rt.plural),
            &all,
            &gvk,
            params,
            |_| format!("list{prefix}{}ForAllNamespaces", rt.kind),
        );
    }
    if rt.status_subresource {
        let ops = item_ops(&obj, &write, &patch, &|v| v != "delete", false);
        ctx.insert(
            paths,
            format!("{scope}/{}/{{name}}/status", rt.plural),
            &ops,
            &gvk,
            path_params(true),
            |v| id(v, "Status"),
        );
    }
    if rt.scale.is_some() {
        let scale_gvk = json!({ "group": "autoscaling", "kind": "Scale", "version": "v1" });
        let ops = item_ops(SCALE, &write, &patch, &|v| v != "delete", false);
        ctx.insert(
            paths,
            format!("{scope}/{}/{{name}}/scale", rt.plural),
            &ops,
            &scale_gvk,
            path_params(true),
            |v| id(v, "Scale"),
        );
    }
}

/// get, put, patch and (optionally) delete of one object.
fn item_ops(
    obj: &str,
    write: &[Param],
    patch: &[Param],
    has: &dyn Fn(&str) -> bool,
    delete: bool,
) -> Vec<Op> {
    let mut ops = Vec::new();
    if has("get") {
        ops.push(Op {
            method: "get",
            action: "get",
            verb: "read",
            returns: obj.into(),
            body: None,
            params: Vec::new(),
            created: false,
            accepted: false,
        });
    }
    if has("update") {
        ops.push(Op {
            method: "put",
            action: "put",
            verb: "replace",
            returns: obj.into(),
            body: Some(obj.into()),
            params: write.to_vec(),
            created: true,
            accepted: false,
        });
    }
    if has("patch") {
        ops.push(Op {
            method: "patch",
            action: "patch",
            verb: "patch",
            returns: obj.into(),
            body: Some(PATCH.into()),
            params: patch.to_vec(),
            created: true,
            accepted: false,
        });
    }
    if delete && has("delete") {
        ops.push(Op {
            method: "delete",
            action: "delete",
            verb: "delete",
            returns: obj.into(),
            body: Some(DELETE_OPTIONS.into()),
            params: DELETE_PARAMS.to_vec(),
            created: false,
            accepted: true,
        });
    }
    ops
}

/// What every operation of one kind shares.
struct PathCtx<'a> {
    flavor: Flavor,
    tag: &'a str,
    builtin: bool,
}

impl PathCtx<'_> {
    /// Adds one path with its operations (none: no path).
    fn insert(
        &self,
        paths: &mut Map<String, Value>,
        path: String,
        ops: &[Op],
        gvk: &Value,
        params: Vec<Value>,
        op_id: impl Fn(&str) -> String,
    ) {
        if ops.is_empty() {
            return;
        }
        let mut item = Map::new();
        for op in ops {
            item.insert(op.method.into(), self.operation(op, gvk, op_id(op.verb)));
        }
        item.insert("parameters".into(), Value::Array(params));
        paths.insert(path, Value::Object(item));
    }

    fn operation(&self, op: &Op, gvk: &Value, operation_id: String) -> Value {
        let flavor = self.flavor;
        let returns = flavor.reference(&op.returns);
        let mut responses = Map::new();
        let ok = |description: &str| match flavor {
            Flavor::V3 => json!({
                "description": description,
                "content": {
                    "application/json": { "schema": returns },
                    "application/yaml": { "schema": returns },
                },
            }),
            Flavor::V2 => json!({ "description": description, "schema": returns }),
        };
        responses.insert("200".into(), ok("OK"));
        if op.created {
            responses.insert("201".into(), ok("Created"));
        }
        if op.accepted {
            responses.insert("202".into(), ok("Accepted"));
        }
        responses.insert("401".into(), json!({ "description": "Unauthorized" }));

        let mut parameters: Vec<Value> = op.params.iter().map(|p| query(flavor, *p)).collect();
        let mut operation = Map::new();
        operation.insert("tags".into(), json!([self.tag]));
        operation.insert(
            "description".into(),
            format!(
                "{} the specified {}",
                op.action,
                gvk["kind"].as_str().unwrap_or_default()
            )
            .into(),
        );
        operation.insert("operationId".into(), operation_id.into());
        if let Some(body) = &op.body {
            let media: Vec<&str> = if op.method == "patch" {
                let mut m = vec![
                    "application/apply-patch+yaml",
                    "application/json-patch+json",
                    "application/merge-patch+json",
                ];
                // Custom resources have no strategic merge patch. Built-ins
                // accept it, but the v3 documents do not say so: kubectl 1.32
                // computes a strategic merge patch from the v3 schema of any
                // kind whose PATCH lists this media type, and k8s-openapi's
                // schemas carry no `x-kubernetes-patch-merge-key`, so lists
                // like `containers` would be diffed as atomic and removals
                // lost. Unadvertised, kubectl falls back to its compiled-in
                // patch metadata, which is complete.
                if self.builtin && flavor == Flavor::V2 {
                    m.push("application/strategic-merge-patch+json");
                }
                m
            } else {
                vec!["*/*"]
            };
            let schema = flavor.reference(body);
            match flavor {
                Flavor::V3 => {
                    let content: Map<String, Value> = media
                        .iter()
                        .map(|m| ((*m).to_owned(), json!({ "schema": schema })))
                        .collect();
                    operation.insert(
                        "requestBody".into(),
                        json!({ "content": content, "required": op.method != "delete" }),
                    );
                }
                Flavor::V2 => {
                    operation.insert("consumes".into(), json!(media));
                    parameters.insert(
                        0,
                        json!({ "name": "body", "in": "body", "required": op.method != "delete", "schema": schema }),
                    );
                }
            }
        }
        if flavor == Flavor::V2 {
            operation.insert(
                "produces".into(),
                json!([
                    "application/json",
                    "application/yaml",
                    "application/vnd.kubernetes.protobuf"
                ]),
            );
            operation.insert("schemes".into(), json!(["https"]));
        }
        if !parameters.is_empty() {
            operation.insert("parameters".into(), Value::Array(parameters));
        }
        operation.insert("responses".into(), Value::Object(responses));
        operation.insert("x-kubernetes-action".into(), op.action.into());
        operation.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
        Value::Object(operation)
    }
}

/// A hash of `data` that is the same across processes and builds (unlike
/// std's `DefaultHasher`), so clients' disk caches stay valid over restarts:
/// two FNV-1a 64 passes with different offsets, as 32 upper-case hex digits.
fn stable_hash(data: &[u8]) -> String {
    let fnv = |mut h: u64| {
        for b in data {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    };
    format!(
        "{:016X}{:016X}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

/// A gnostic `openapi.v2.Document` with `swagger = "2.0"` (field 1) and
/// `info { title (1), version (2) }` (field 2), protobuf-encoded.
fn minimal_v2_protobuf() -> Vec<u8> {
    fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
        // Wire type 2 (length-delimited); field numbers here are below 16,
        // so the tag is one byte.
        out.push((number << 3) | 2);
        let mut len = bytes.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
        out.extend_from_slice(bytes);
    }
    let mut info = Vec::new();
    field(&mut info, 1, b"Kubernetes");
    field(&mut info, 2, API_VERSION.as_bytes());
    let mut doc = Vec::new();
    field(&mut doc, 1, b"2.0");
    field(&mut doc, 2, &info);
    doc
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::{apps::v1::Deployment, core::v1::Pod};

    use super::*;
    use crate::api::discovery::tests::{Plain, rt};
    use crate::registry::{Column, ScalePaths, Strategy};

    /// A built-in type's strategy, as the catalog implements it.
    struct Builtin<T>(std::marker::PhantomData<T>);

    impl<T: JsonSchema + Send + Sync> Strategy for Builtin<T> {
        fn check_schema(&self, _obj: &Value) -> Result<Vec<String>, String> {
            Ok(Vec::new())
        }
        fn validate(&self, _obj: &Value, _old: Option<&Value>) -> Vec<crate::error::FieldError> {
            Vec::new()
        }
        fn columns(&self) -> Vec<Column> {
            Vec::new()
        }
        fn row(&self, _obj: &Value) -> Vec<Value> {
            Vec::new()
        }
        fn openapi_schema(&self, generator: &mut SchemaGenerator) -> Option<Schema> {
            Some(generator.subschema_for::<T>())
        }
    }

    /// A custom resource's strategy: its inline `openAPIV3Schema`.
    struct Custom(Value);

    impl Strategy for Custom {
        fn check_schema(&self, _obj: &Value) -> Result<Vec<String>, String> {
            Ok(Vec::new())
        }
        fn validate(&self, _obj: &Value, _old: Option<&Value>) -> Vec<crate::error::FieldError> {
            Vec::new()
        }
        fn columns(&self) -> Vec<Column> {
            Vec::new()
        }
        fn row(&self, _obj: &Value) -> Vec<Value> {
            Vec::new()
        }
        fn openapi_schema(&self, _generator: &mut SchemaGenerator) -> Option<Schema> {
            Schema::try_from(self.0.clone()).ok()
        }
    }

    fn builtin<T: JsonSchema + Send + Sync + 'static>() -> Arc<dyn Strategy> {
        Arc::new(Builtin::<T>(std::marker::PhantomData))
    }

    fn registry() -> Registry {
        let reg = Registry::new();
        reg.register(rt("", "v1", "Pod", true, &["po"], builtin::<Pod>()));
        let mut deploy = rt(
            "apps",
            "v1",
            "Deployment",
            true,
            &["deploy"],
            builtin::<Deployment>(),
        );
        deploy.scale = Some(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        });
        reg.register(deploy);
        let crd = json!({
            "type": "object",
            "description": "A cron tab.",
            "properties": {
                "spec": {
                    "type": "object",
                    "description": "What to run and when.",
                    "properties": { "cronSpec": { "type": "string", "description": "When." } },
                },
            },
        });
        let mut ct = rt(
            "stable.example.com",
            "v1",
            "CronTab",
            true,
            &["ct"],
            Arc::new(Custom(crd)),
        );
        ct.status_subresource = false;
        reg.register(ct);
        reg.register(rt(
            "example.com",
            "v1",
            "Thing",
            false,
            &[],
            Arc::new(Plain),
        ));
        reg
    }

    /// Follows a `#/components/schemas/...` reference inside `doc`.
    fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
        let name = reference.strip_prefix("#/components/schemas/")?;
        doc["components"]["schemas"].get(name)
    }

    /// The `$ref` of a property, whether bare or wrapped in `allOf`.
    fn prop_ref(schema: &Value, prop: &str) -> Option<String> {
        let p = &schema["properties"][prop];
        p.get("$ref")
            .or_else(|| p["allOf"].get(0).and_then(|a| a.get("$ref")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Every `$ref` in `v`.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn index_lists_group_versions_with_hashes() {
        let docs = OpenApiDocs::build(&registry());
        let paths = docs.index()["paths"].as_object().expect("paths");
        let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "api/v1",
                "apis/apps/v1",
                "apis/example.com/v1",
                "apis/stable.example.com/v1"
            ]
        );
        let apps = docs.group_version("apis/apps/v1").expect("apps doc");
        assert_eq!(
            paths["apis/apps/v1"]["serverRelativeURL"],
            format!("/openapi/v3/apis/apps/v1?hash={}", apps.hash)
        );
        assert_eq!(apps.hash.len(), 32);
        let reparsed: Value = serde_json::from_slice(&apps.json).expect("json");
        assert_eq!(reparsed, apps.doc);
        // Same registry, same bytes, same hash.
        let again = OpenApiDocs::build(&registry());
        assert_eq!(
            again.group_version("apis/apps/v1").map(|d| d.hash.clone()),
            Some(apps.hash.clone())
        );
    }

    #[test]
    fn deployment_schema_is_explainable() {
        let docs = OpenApiDocs::build(&registry());
        let doc = &docs.group_version("apis/apps/v1").expect("apps").doc;
        assert_eq!(doc["openapi"], "3.0.0");
        let deploy = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deploy["x-kubernetes-group-version-kind"],
            json!([{ "group": "apps", "kind": "Deployment", "version": "v1" }])
        );
        let spec_ref = prop_ref(deploy, "spec").expect("spec ref");
        let spec = resolve(doc, &spec_ref).expect("spec resolvable");
        let strategy_ref = prop_ref(spec, "strategy").expect("strategy ref");
        let strategy = resolve(doc, &strategy_ref).expect("strategy resolvable");
        assert!(
            strategy["description"]
                .as_str()
                .is_some_and(|d| d.contains("replace existing pods"))
        );
        assert!(
            spec["properties"]["strategy"]["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        assert!(resolve(doc, &prop_ref(deploy, "metadata").expect("metadata")).is_some());

        // Every reference in the document resolves inside it.
        let mut all = Vec::new();
        refs(doc, &mut all);
        assert!(!all.is_empty());
        for r in all {
            assert!(resolve(doc, &r).is_some(), "dangling {r}");
        }
    }

    #[test]
    fn operations_carry_gvk_and_field_validation() {
        let docs = OpenApiDocs::build(&registry());
        let doc = &docs.group_version("apis/apps/v1").expect("apps").doc;
        let paths = &doc["paths"];
        let collection = &paths["/apis/apps/v1/namespaces/{namespace}/deployments"];
        assert_eq!(collection["get"]["x-kubernetes-action"], "list");
        assert_eq!(
            collection["get"]["x-kubernetes-group-version-kind"]["kind"],
            "Deployment"
        );
        assert_eq!(
            collection["get"]["operationId"],
            "listAppsV1NamespacedDeployment"
        );
        let list_ref =
            collection["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .expect("list ref");
        let list = resolve(doc, list_ref).expect("list schema");
        assert_eq!(
            list["x-kubernetes-group-version-kind"][0]["kind"],
            "DeploymentList"
        );

        let item = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
        for method in ["put", "patch"] {
            let names: Vec<&str> = item[method]["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .filter_map(|p| p["name"].as_str())
                .collect();
            assert!(names.contains(&"fieldValidation"), "{method}: {names:?}");
        }
        let post = &collection["post"]["parameters"];
        assert!(
            post.as_array()
                .expect("post")
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let patch_media = item["patch"]["requestBody"]["content"]
            .as_object()
            .expect("patch media");
        assert!(patch_media.contains_key("application/merge-patch+json"));
        assert!(patch_media.contains_key("application/apply-patch+yaml"));
        assert!(!patch_media.contains_key("application/strategic-merge-patch+json"));
        assert_eq!(
            item["patch"]["x-kubernetes-group-version-kind"]["group"],
            "apps"
        );

        let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
        assert_eq!(
            scale["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Scale"
        );
        assert!(resolve(doc, "#/components/schemas/io.k8s.api.autoscaling.v1.Scale").is_some());
        let status = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"];
        assert_eq!(
            status["get"]["operationId"],
            "readAppsV1NamespacedDeploymentStatus"
        );
        assert!(status.get("delete").is_none());
        assert!(paths["/apis/apps/v1/deployments"]["get"].is_object());
    }

    #[test]
    fn custom_resources_get_their_own_document() {
        let docs = OpenApiDocs::build(&registry());
        let doc = &docs
            .group_version("apis/stable.example.com/v1")
            .expect("crd doc")
            .doc;
        let ct = &doc["components"]["schemas"]["com.example.stable.v1.CronTab"];
        assert_eq!(ct["x-kubernetes-group-version-kind"][0]["kind"], "CronTab");
        assert_eq!(
            ct["properties"]["spec"]["properties"]["cronSpec"]["description"],
            "When."
        );
        assert!(resolve(doc, &prop_ref(ct, "metadata").expect("metadata")).is_some());
        assert!(ct["properties"]["apiVersion"]["description"].is_string());
        let item =
            &doc["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"];
        assert!(
            item["patch"]["requestBody"]["content"]["application/merge-patch+json"].is_object()
        );
        assert!(
            item["patch"]["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none()
        );
        assert!(
            doc["paths"]
                .get("/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/status")
                .is_none()
        );

        // A type without a schema is published as an open object.
        let thing_doc = &docs
            .group_version("apis/example.com/v1")
            .expect("thing")
            .doc;
        let thing = &thing_doc["components"]["schemas"]["com.example.v1.Thing"];
        assert_eq!(thing["x-kubernetes-preserve-unknown-fields"], true);
        assert!(thing_doc["paths"]["/apis/example.com/v1/things/{name}"]["get"].is_object());
    }

    #[test]
    fn v2_document_uses_definitions() {
        let docs = OpenApiDocs::build(&registry());
        let v2 = docs.v2();
        assert_eq!(v2["swagger"], "2.0");
        let defs = v2["definitions"].as_object().expect("definitions");
        let deploy = &defs["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deploy["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        let mut all = Vec::new();
        refs(v2, &mut all);
        for r in &all {
            let name = r.strip_prefix("#/definitions/").expect("v2 ref prefix");
            assert!(defs.contains_key(name), "dangling {r}");
        }
        let patch = &v2["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(patch["parameters"][0]["in"], "body");
        assert!(
            patch["consumes"]
                .as_array()
                .expect("consumes")
                .iter()
                .any(|c| c == "application/strategic-merge-patch+json")
        );
        assert!(
            patch["parameters"]
                .as_array()
                .expect("params")
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        let text = String::from_utf8_lossy(docs.v2_json());
        assert!(!text.contains("nullable"));
    }

    #[test]
    fn v2_protobuf_is_a_document_with_version_and_info() {
        let docs = OpenApiDocs::build(&registry());
        let pb = docs.v2_protobuf();
        // Field 1 (swagger) = "2.0", then field 2 (info) holding the title.
        assert_eq!(&pb[..5], &[0x0a, 3, b'2', b'.', b'0']);
        assert_eq!(pb[5], 0x12);
        assert_eq!(usize::from(pb[6]), pb.len() - 7);
        assert_eq!(&pb[7..9], &[0x0a, 10]);
        assert_eq!(&pb[9..19], b"Kubernetes");
    }

    #[test]
    fn cache_rebuilds_only_on_registry_change() {
        let reg = registry();
        let cache = OpenApiCache::new();
        let a = cache.docs(&reg);
        let b = cache.docs(&reg);
        assert!(Arc::ptr_eq(&a, &b));
        reg.register(rt(
            "batch",
            "v1",
            "Job",
            true,
            &[],
            builtin::<k8s_openapi::api::batch::v1::Job>(),
        ));
        let c = cache.docs(&reg);
        assert!(!Arc::ptr_eq(&a, &c));
        assert!(c.group_version("apis/batch/v1").is_some());
        assert!(a.group_version("apis/batch/v1").is_none());
    }

    #[test]
    fn operation_prefixes_follow_kubernetes() {
        assert_eq!(op_prefix("", "v1"), "CoreV1");
        assert_eq!(
            op_prefix("rbac.authorization.k8s.io", "v1"),
            "RbacAuthorizationV1"
        );
        assert_eq!(
            op_prefix("stable.example.com", "v1beta1"),
            "StableExampleComV1beta1"
        );
        assert_eq!(
            custom_definition_name(&rt(
                "stable.example.com",
                "v1",
                "CronTab",
                true,
                &[],
                Arc::new(Plain)
            )),
            "com.example.stable.v1.CronTab"
        );
    }
}
