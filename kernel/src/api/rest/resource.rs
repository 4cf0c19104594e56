//! The handler of every resource path: maps method, path and query to a
//! service call, and the result to Kubernetes' wire format.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::format::{self, IncludeObject, Representation};
use super::path::ResourcePath;
use super::{MAX_BODY_BYTES, RestState, error_response, json_response};
use crate::error::{ApiError, Result};
use crate::service::write::Part;
use crate::service::{
    DeleteOptions, FieldValidation, ListOptions, PatchType, Target, WatchOptions, WriteOptions,
    WriteResult,
};

/// Query parameters, first value wins.
pub(super) struct Query(HashMap<String, String>);

impl Query {
    fn parse(query: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Self(map)
    }

    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "True"))
    }
}

/// Handles one request to a resource path.
pub async fn handle(state: Arc<RestState>, path: ResourcePath, request: Request) -> Response {
    match dispatch(&state, path, request).await {
        Ok(response) => response,
        Err(err) => error_response(err),
    }
}

async fn dispatch(
    state: &Arc<RestState>,
    path: ResourcePath,
    request: Request,
) -> Result<Response> {
    let service = &state.service;
    let rt = service
        .registry()
        .get(&path.group, &path.version, &path.resource)
        .ok_or_else(|| {
            ApiError::NotFoundMessage(format!(
                "the server could not find the requested resource ({} {}/{})",
                path.resource,
                if path.group.is_empty() {
                    "core"
                } else {
                    &path.group
                },
                path.version
            ))
        })?;
    if path.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::NotFoundMessage(format!(
            "the server could not find the requested resource: {} is not namespaced",
            rt.plural
        )));
    }
    let target = Target {
        rt: rt.clone(),
        namespace: path.namespace.clone(),
        name: path.name.clone(),
    };
    let (parts, body) = request.into_parts();
    let query = Query::parse(parts.uri.query());
    let headers = parts.headers;
    let representation = format::negotiate(accept(&headers)).ok_or_else(|| {
        ApiError::NotAcceptable(
            "only the following media types are accepted: application/json, application/yaml"
                .into(),
        )
    })?;
    let body = match parts.method {
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE => read_body(body).await?,
        _ => bytes::Bytes::new(),
    };
    let write_opts = write_options(&query, &headers)?;
    let sub = path.subresource.as_deref();
    match (parts.method, path.name.is_some(), sub) {
        (Method::GET, false, None) => {
            if query.flag("watch") {
                let opts = watch_options(&query);
                let watcher = service.watch(&target, &opts).await?;
                let timeout = query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse::<u64>().ok());
                return Ok(super::watch::response(
                    rt,
                    watcher,
                    representation,
                    IncludeObject::parse(query.get("includeObject")),
                    timeout,
                ));
            }
            list(state, &target, &query, representation).await
        }
        (Method::GET, true, None | Some("status")) => {
            let obj = service.get(&target).await?;
            Ok(single(&target, &obj, representation, &query))
        }
        (Method::GET, true, Some("scale")) if rt.scale.is_some() => Ok(json_response(
            StatusCode::OK,
            &service.get_scale(&target).await?,
        )),
        (Method::POST, false, None) => {
            let obj = parse_object(&headers, &body)?;
            let result = service.create(&target, obj, &write_opts).await?;
            Ok(written(StatusCode::CREATED, result))
        }
        (Method::POST, true, Some("binding")) if rt.kind == "Pod" && rt.group.is_empty() => {
            let binding = parse_object(&headers, &body)?;
            let result = service.bind_pod(&target, &binding, &write_opts).await?;
            Ok(written(StatusCode::CREATED, result))
        }
        (Method::POST, true, Some("token"))
            if rt.kind == "ServiceAccount" && rt.group.is_empty() =>
        {
            let request = parse_object(&headers, &body)?;
            let answer = service.create_token(&target, request).await?;
            Ok(json_response(StatusCode::CREATED, &answer))
        }
        (Method::PUT, true, None | Some("status")) => {
            let part = if sub == Some("status") {
                status_part(&rt)?
            } else {
                Part::Main
            };
            let obj = parse_object(&headers, &body)?;
            let result = service.update(&target, obj, part, &write_opts).await?;
            Ok(written(StatusCode::OK, result))
        }
        (Method::PUT, true, Some("scale")) if rt.scale.is_some() => {
            let scale = parse_object(&headers, &body)?;
            let result = service
                .update_scale(&target, &write_opts, |_| Ok(scale.clone()))
                .await?;
            Ok(json_response(StatusCode::OK, &result))
        }
        (Method::PATCH, true, None | Some("status") | Some("scale")) => {
            let patch_type = patch_type(&headers)?;
            if sub == Some("scale") {
                if rt.scale.is_none() {
                    return Err(not_found_sub(&rt.plural, "scale"));
                }
                let result = service
                    .patch_scale(&target, patch_type, &body, &write_opts)
                    .await?;
                return Ok(json_response(StatusCode::OK, &result));
            }
            let part = if sub == Some("status") {
                status_part(&rt)?
            } else {
                Part::Main
            };
            let result = service
                .patch(&target, patch_type, &body, part, &write_opts)
                .await?;
            let code = if result.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(written(code, result))
        }
        (Method::DELETE, true, None) => {
            let opts = delete_options(&query, &headers, &body)?;
            let obj = service.delete(&target, &opts).await?;
            let pending = obj.pointer("/metadata/deletionTimestamp").is_some();
            let code = if pending {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok(json_response(code, &obj))
        }
        (Method::DELETE, false, None) => {
            let opts = delete_options(&query, &headers, &body)?;
            let list_opts = list_options(&query);
            let deleted = service
                .delete_collection(&target, &list_opts, &opts)
                .await?;
            let list = json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": {},
                "items": deleted,
            });
            Ok(json_response(StatusCode::OK, &list))
        }
        (method, _, Some(other)) => {
            if method == Method::GET || method == Method::POST {
                Err(not_found_sub(&rt.plural, other))
            } else {
                Err(ApiError::MethodNotAllowed(format!(
                    "the server does not allow this method on the requested resource ({method} {}/{other})",
                    rt.plural
                )))
            }
        }
        (method, _, None) => Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({method} {})",
            rt.plural
        ))),
    }
}

fn not_found_sub(plural: &str, sub: &str) -> ApiError {
    ApiError::NotFoundMessage(format!(
        "the server could not find the requested resource ({plural}/{sub})"
    ))
}

fn status_part(rt: &crate::registry::ResourceType) -> Result<Part> {
    if rt.status_subresource {
        Ok(Part::Status)
    } else {
        Err(not_found_sub(&rt.plural, "status"))
    }
}

fn accept(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

pub(super) async fn read_body(body: axum::body::Body) -> Result<bytes::Bytes> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::RequestEntityTooLarge(format!(
                "the request body is too large: the limit is {MAX_BODY_BYTES} bytes"
            ))
        })
}

/// Decodes a JSON, YAML or Kubernetes protobuf body into an object.
pub(super) fn parse_object(headers: &HeaderMap, body: &[u8]) -> Result<Value> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let value: Value = if super::protobuf::is_protobuf(content_type) {
        super::protobuf::decode(body)?
    } else if content_type.starts_with("application/yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML body: {e}")))?
    } else if content_type.starts_with("application/json") || content_type.is_empty() {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    } else {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type})"
        )));
    };
    if !value.is_object() {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    }
    Ok(value)
}

fn patch_type(headers: &HeaderMap) -> Result<PatchType> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type.split(';').next().unwrap_or_default().trim();
    match media {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
        ))),
    }
}

fn write_options(query: &Query, headers: &HeaderMap) -> Result<WriteOptions> {
    let dry_run = match query.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "dryRun must be \"All\" when set, got {other:?}"
            )));
        }
    };
    let field_manager = match query.get("fieldManager") {
        Some(m) if m.len() > 128 => {
            return Err(ApiError::BadRequest(
                "fieldManager must be at most 128 characters".into(),
            ));
        }
        Some(m) => m.to_owned(),
        // Kubernetes names an unnamed writer after its user agent.
        None => headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .unwrap_or_default()
            .to_owned(),
    };
    let force = match query.get("force") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "invalid force value {other:?}"
            )));
        }
    };
    Ok(WriteOptions {
        dry_run,
        field_manager,
        field_validation: FieldValidation::parse(query.get("fieldValidation").unwrap_or_default())?,
        force,
    })
}

fn list_options(query: &Query) -> ListOptions {
    ListOptions {
        label_selector: query.get("labelSelector").unwrap_or_default().to_owned(),
        field_selector: query.get("fieldSelector").unwrap_or_default().to_owned(),
        limit: query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0),
        continue_token: query
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        resource_version: query.get("resourceVersion").map(str::to_owned),
    }
}

fn watch_options(query: &Query) -> WatchOptions {
    WatchOptions {
        label_selector: query.get("labelSelector").unwrap_or_default().to_owned(),
        field_selector: query.get("fieldSelector").unwrap_or_default().to_owned(),
        resource_version: query.get("resourceVersion").map(str::to_owned),
        bookmarks: query.flag("allowWatchBookmarks"),
    }
}

fn delete_options(query: &Query, headers: &HeaderMap, body: &[u8]) -> Result<DeleteOptions> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let from_body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else if super::protobuf::is_protobuf(content_type) {
        super::protobuf::decode(body)?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("error decoding DeleteOptions: {e}")))?
    };
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let propagation = query
        .get("propagationPolicy")
        .map(str::to_owned)
        .or_else(|| from_body.get("propagationPolicy").and_then(text))
        .or_else(|| {
            // The deprecated orphanDependents flag.
            match query
                .get("orphanDependents")
                .map(str::to_owned)
                .or_else(|| {
                    from_body
                        .get("orphanDependents")
                        .and_then(Value::as_bool)
                        .map(|b| b.to_string())
                }) {
                Some(v) if v == "true" => Some("Orphan".to_owned()),
                Some(v) if v == "false" => Some("Background".to_owned()),
                _ => None,
            }
        });
    let grace = match query.get("gracePeriodSeconds") {
        Some(g) => Some(
            g.parse::<i64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid gracePeriodSeconds {g:?}")))?,
        ),
        None => from_body.get("gracePeriodSeconds").and_then(Value::as_i64),
    };
    let dry_run = query.get("dryRun") == Some("All")
        || from_body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        propagation_policy: propagation,
        precondition_resource_version: from_body
            .pointer("/preconditions/resourceVersion")
            .and_then(text),
        precondition_uid: from_body.pointer("/preconditions/uid").and_then(text),
        grace_period_seconds: grace,
        dry_run,
    })
}

async fn list(
    state: &Arc<RestState>,
    target: &Target,
    query: &Query,
    representation: Representation,
) -> Result<Response> {
    let rt = &target.rt;
    let result = state.service.list(target, &list_options(query)).await?;
    let mut list_meta = json!({ "resourceVersion": result.resource_version });
    if let Some(token) = &result.continue_token {
        list_meta["continue"] = json!(token);
    }
    if let Some(remaining) = result.remaining {
        list_meta["remainingItemCount"] = json!(remaining);
    }
    match representation {
        Representation::Object => {
            // Items are spliced in as the watch cache encoded them: no
            // per-request re-serialization of every object.
            let head = json!({
                "kind": format!("{}List", rt.kind),
                "apiVersion": rt.api_version(),
                "metadata": list_meta,
            });
            let mut out = serde_json::to_vec(&head).unwrap_or_default();
            out.pop(); // the closing brace
            out.extend_from_slice(b",\"items\":[");
            for (i, item) in result.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&item.raw);
            }
            out.extend_from_slice(b"]}");
            let mut response = Response::new(axum::body::Body::from(out));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(response)
        }
        Representation::Table => {
            let include = IncludeObject::parse(query.get("includeObject"));
            let values: Vec<Value> = result.items.iter().map(|i| i.value()).collect();
            let table = format::table(rt, values.iter(), include, true, list_meta);
            Ok(json_response(StatusCode::OK, &table))
        }
        Representation::Metadata => {
            let items: Vec<Value> = result
                .items
                .iter()
                .map(|i| format::partial_metadata(&i.value()))
                .collect();
            Ok(json_response(
                StatusCode::OK,
                &json!({
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": list_meta,
                    "items": items,
                }),
            ))
        }
    }
}

fn single(target: &Target, obj: &Value, representation: Representation, query: &Query) -> Response {
    match representation {
        Representation::Object => json_response(StatusCode::OK, obj),
        Representation::Table => {
            let include = IncludeObject::parse(query.get("includeObject"));
            let rv = obj
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(json!(""));
            json_response(
                StatusCode::OK,
                &format::table(
                    &target.rt,
                    [obj],
                    include,
                    true,
                    json!({ "resourceVersion": rv }),
                ),
            )
        }
        Representation::Metadata => json_response(StatusCode::OK, &format::partial_metadata(obj)),
    }
}

fn written(code: StatusCode, result: WriteResult) -> Response {
    let mut response = json_response(code, &result.object);
    for warning in result.warnings {
        let text = format!("299 - {:?}", warning);
        if let Ok(value) = HeaderValue::from_str(&text) {
            response.headers_mut().append("Warning", value);
        }
    }
    response
}
