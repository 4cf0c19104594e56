//! `kerno.kernel.v1.Kernel`: the object API over gRPC, on the same service
//! layer (and so with the same semantics and errors) as the REST API.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kerno_proto::kernel::v1 as pb;
use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::auth::rbac::RbacAuthorizer;
use crate::auth::rbac::review;
use crate::auth::rbac::rules::Attributes;
use crate::auth::user::UserInfo;
use crate::service::write::Part;
use crate::service::{
    DeleteOptions, FieldValidation, ListOptions, PatchType, Service, Target, WatchOptions,
    WriteOptions,
};

/// The gRPC front-end.
pub struct KernelApi {
    service: Arc<Service>,
    authorizer: Option<Arc<RbacAuthorizer>>,
}

impl KernelApi {
    /// A front-end over `service` that authorizes nothing (for tests of
    /// the API alone).
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            service,
            authorizer: None,
        }
    }

    /// A front-end that checks every call with RBAC against the request's
    /// [`UserInfo`] (put there by authentication).
    pub fn with_authorizer(service: Arc<Service>, authorizer: Arc<RbacAuthorizer>) -> Self {
        Self {
            service,
            authorizer: Some(authorizer),
        }
    }

    /// Checks that the caller may `verb` the target (or its `subresource`):
    /// `PERMISSION_DENIED` with Kubernetes' message when not.
    fn authorize(
        &self,
        extensions: &http::Extensions,
        t: &Target,
        verb: &str,
        subresource: &str,
    ) -> Result<(), Status> {
        let Some(authorizer) = &self.authorizer else {
            return Ok(());
        };
        let user = extensions
            .get::<UserInfo>()
            .ok_or_else(|| Status::unauthenticated("no credentials"))?;
        let mut attrs = Attributes::resource(
            verb,
            &t.rt.group,
            &t.rt.plural,
            t.namespace.as_deref().unwrap_or_default(),
            t.name.as_deref().unwrap_or_default(),
        );
        attrs.subresource = subresource.to_owned();
        if authorizer.authorize(user, &attrs).allowed() {
            Ok(())
        } else {
            Err(Status::permission_denied(
                review::forbidden(user, &attrs).to_string(),
            ))
        }
    }

    /// The tonic service to mount.
    pub fn into_server(self) -> pb::kernel_server::KernelServer<Self> {
        pb::kernel_server::KernelServer::new(self)
            .max_decoding_message_size(super::rest::MAX_BODY_BYTES + 4096)
    }

    fn target(&self, r: Option<&pb::ResourceRef>) -> Result<Target, Status> {
        let r = r.ok_or_else(|| Status::invalid_argument("resource is required"))?;
        let rt = self
            .service
            .registry()
            .get(&r.group, &r.version, &r.resource)
            .ok_or_else(|| {
                Status::not_found(format!(
                    "the server could not find the requested resource ({} {}/{})",
                    r.resource,
                    if r.group.is_empty() { "core" } else { &r.group },
                    r.version
                ))
            })?;
        let namespace = if rt.namespaced && !r.namespace.is_empty() {
            Some(r.namespace.clone())
        } else {
            None
        };
        if !rt.namespaced && !r.namespace.is_empty() {
            return Err(Status::invalid_argument(format!(
                "{} is not namespaced",
                rt.plural
            )));
        }
        let name = if r.name.is_empty() {
            None
        } else {
            Some(r.name.clone())
        };
        Ok(Target {
            rt,
            namespace,
            name,
        })
    }
}

fn parse_json(bytes: &[u8]) -> Result<Value, Status> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| Status::invalid_argument(format!("the object is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Status::invalid_argument("the object must be a JSON object"));
    }
    Ok(value)
}

fn object(value: &Value) -> Response<pb::Object> {
    Response::new(pb::Object {
        json: serde_json::to_vec(value).unwrap_or_default(),
    })
}

fn write_options(dry_run: bool, field_manager: &str, force: bool) -> WriteOptions {
    WriteOptions {
        dry_run,
        field_manager: if field_manager.is_empty() {
            "grpc".into()
        } else {
            field_manager.into()
        },
        field_validation: FieldValidation::Strict,
        force,
    }
}

impl KernelApi {
    /// `CreateRequest.subresource`: only `pods/binding`, as on the REST side.
    async fn create_subresource(
        &self,
        t: &Target,
        req: &pb::CreateRequest,
        binding: &Value,
    ) -> Result<Response<pb::Object>, Status> {
        let is_pods = t.rt.group.is_empty() && t.rt.plural == "pods";
        if req.subresource != "binding" || !is_pods {
            return Err(Status::invalid_argument(format!(
                "subresource {:?} of {} cannot be created (only pods/binding)",
                req.subresource, t.rt.plural
            )));
        }
        if t.name.is_none() || t.namespace.is_none() {
            return Err(Status::invalid_argument(
                "a binding needs the pod's namespace and name",
            ));
        }
        let result = self
            .service
            .bind_pod(
                t,
                binding,
                &write_options(req.dry_run, &req.field_manager, false),
            )
            .await?;
        Ok(object(&result.object))
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::kernel_server::Kernel for KernelApi {
    async fn get(&self, request: Request<pb::GetRequest>) -> Result<Response<pb::Object>, Status> {
        let t = self.target(request.get_ref().resource.as_ref())?;
        self.authorize(request.extensions(), &t, "get", "")?;
        Ok(object(&self.service.get(&t).await?))
    }

    async fn list(
        &self,
        request: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let (_, extensions, req) = request.into_parts();
        let t = self.target(req.resource.as_ref())?;
        self.authorize(&extensions, &t, "list", "")?;
        let limit = usize::try_from(req.limit)
            .map_err(|_| Status::invalid_argument("limit must not be negative"))?;
        let result = self
            .service
            .list(
                &t,
                &ListOptions {
                    label_selector: req.label_selector,
                    field_selector: req.field_selector,
                    limit,
                    continue_token: Some(req.continue_token).filter(|c| !c.is_empty()),
                    resource_version: None,
                },
            )
            .await?;
        Ok(Response::new(pb::ListResponse {
            items: result.items.iter().map(|i| i.raw.to_vec()).collect(),
            resource_version: result.resource_version,
            continue_token: result.continue_token.unwrap_or_default(),
        }))
    }

    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::Object>, Status> {
        let (_, extensions, req) = request.into_parts();
        let t = self.target(req.resource.as_ref())?;
        self.authorize(&extensions, &t, "create", &req.subresource)?;
        let obj = parse_json(&req.json)?;
        if !req.subresource.is_empty() {
            return self.create_subresource(&t, &req, &obj).await;
        }
        let t = Target { name: None, ..t };
        let result = self
            .service
            .create(
                &t,
                obj,
                &write_options(req.dry_run, &req.field_manager, false),
            )
            .await?;
        Ok(object(&result.object))
    }

    async fn update(
        &self,
        request: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::Object>, Status> {
        let (_, extensions, req) = request.into_parts();
        self.update_part(&extensions, req, Part::Main).await
    }

    async fn update_status(
        &self,
        request: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::Object>, Status> {
        let (_, extensions, req) = request.into_parts();
        self.update_part(&extensions, req, Part::Status).await
    }

    async fn patch(
        &self,
        request: Request<pb::PatchRequest>,
    ) -> Result<Response<pb::Object>, Status> {
        let (_, extensions, req) = request.into_parts();
        let t = self.target(req.resource.as_ref())?;
        self.authorize(&extensions, &t, "patch", &req.subresource)?;
        let patch_type = match pb::PatchType::try_from(req.patch_type) {
            Ok(pb::PatchType::Merge) => PatchType::Merge,
            Ok(pb::PatchType::Json) => PatchType::Json,
            Ok(pb::PatchType::Strategic) => PatchType::Strategic,
            Ok(pb::PatchType::Apply) => PatchType::Apply,
            _ => {
                return Err(Status::invalid_argument(
                    "patch_type must be MERGE, JSON, STRATEGIC or APPLY",
                ));
            }
        };
        let part = match req.subresource.as_str() {
            "" => Part::Main,
            "status" if t.rt.status_subresource => Part::Status,
            other => {
                return Err(Status::not_found(format!(
                    "{} has no subresource {other:?}",
                    t.rt.plural
                )));
            }
        };
        let opts = write_options(req.dry_run, &req.field_manager, req.force);
        let result = self
            .service
            .patch(&t, patch_type, &req.patch, part, &opts)
            .await?;
        Ok(object(&result.object))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::Object>, Status> {
        let (_, extensions, req) = request.into_parts();
        let t = self.target(req.resource.as_ref())?;
        let verb = if t.name.is_some() {
            "delete"
        } else {
            "deletecollection"
        };
        self.authorize(&extensions, &t, verb, "")?;
        let opts = DeleteOptions {
            propagation_policy: Some(req.propagation_policy).filter(|p| !p.is_empty()),
            precondition_resource_version: Some(req.resource_version).filter(|r| !r.is_empty()),
            precondition_uid: None,
            grace_period_seconds: (req.grace_period_seconds >= 0)
                .then_some(req.grace_period_seconds),
            dry_run: req.dry_run,
        };
        Ok(object(&self.service.delete(&t, &opts).await?))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let (_, extensions, req) = request.into_parts();
        let t = self.target(req.resource.as_ref())?;
        self.authorize(&extensions, &t, "watch", "")?;
        let watcher = self
            .service
            .watch(
                &t,
                &WatchOptions {
                    label_selector: req.label_selector,
                    field_selector: req.field_selector,
                    resource_version: Some(req.resource_version).filter(|r| !r.is_empty()),
                    bookmarks: req.allow_bookmarks,
                },
            )
            .await?;
        let stream = watcher.into_stream().map(|event| match event {
            Ok(event) => Ok(pb::WatchEvent {
                r#type: event.kind.as_str().to_owned(),
                object: event.object_bytes().to_vec(),
            }),
            Err(e) => Err(Status::from(crate::error::ApiError::from(e))),
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

impl KernelApi {
    async fn update_part(
        &self,
        extensions: &http::Extensions,
        req: pb::UpdateRequest,
        part: Part,
    ) -> Result<Response<pb::Object>, Status> {
        let t = self.target(req.resource.as_ref())?;
        let subresource = match part {
            Part::Status => "status",
            Part::Main => "",
        };
        self.authorize(extensions, &t, "update", subresource)?;
        let obj = parse_json(&req.json)?;
        let result = self
            .service
            .update(
                &t,
                obj,
                part,
                &write_options(req.dry_run, &req.field_manager, false),
            )
            .await?;
        Ok(object(&result.object))
    }
}
