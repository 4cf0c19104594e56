//! The TokenRequest API (`serviceaccounts/token`): a ServiceAccount token
//! signed by the kernel, optionally bound to a Pod or Secret, for
//! `kubectl create token`.

use serde_json::{Value, json};

use super::{Service, Target, meta};
use crate::auth::serviceaccount::{
    self, Claims, ISSUER, KubernetesClaims, ObjectRef, service_account_user,
};
use crate::error::{ApiError, ErrorTarget, FieldError, Result};

/// Lifetime of a token whose request names none (Kubernetes' default).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Shortest lifetime a request may ask for (Kubernetes': ten minutes).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// Longest lifetime a request may ask for (2^32 seconds, as Kubernetes).
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

impl Service {
    /// Installs the signer of ServiceAccount tokens (once, at start).
    pub fn set_token_signer(&self, signer: std::sync::Arc<serviceaccount::TokenSigner>) {
        let _ = self.token_signer.set(signer);
    }

    /// Answers a TokenRequest for the ServiceAccount `t` names: the request
    /// with `status.token` and `status.expirationTimestamp` filled in.
    pub async fn create_token(&self, t: &Target, mut request: Value) -> Result<Value> {
        let signer = self.token_signer.get().ok_or_else(|| {
            ApiError::ServiceUnavailable("service account tokens are not enabled".into())
        })?;
        let ns = t.namespace.clone().unwrap_or_default();
        let sa = self.get(t).await?;
        let sa_ref = ObjectRef {
            name: meta::name(&sa).to_owned(),
            uid: meta::meta_str(&sa, "uid").unwrap_or_default().to_owned(),
        };
        let invalid = |causes: Vec<FieldError>| ApiError::Invalid {
            target: ErrorTarget {
                group: "authentication.k8s.io".into(),
                resource: "tokenrequests".into(),
                kind: "TokenRequest".into(),
                name: sa_ref.name.clone(),
            },
            causes,
        };
        let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
        let expiration = match spec.get("expirationSeconds") {
            None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
            Some(v) => v.as_i64().ok_or_else(|| {
                invalid(vec![FieldError::invalid(
                    "spec.expirationSeconds",
                    v,
                    "must be an integer",
                )])
            })?,
        };
        if expiration < MIN_EXPIRATION_SECONDS {
            return Err(invalid(vec![FieldError::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration less than 10 minutes",
            )]));
        }
        if expiration > MAX_EXPIRATION_SECONDS {
            return Err(invalid(vec![FieldError::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration larger than 2^32 seconds",
            )]));
        }
        let audiences: Vec<String> = spec
            .get("audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .filter(|a: &Vec<String>| !a.is_empty())
            .unwrap_or_else(|| vec![ISSUER.to_owned()]);
        let (mut pod, mut secret) = (None, None);
        if let Some(bound) = spec.get("boundObjectRef").filter(|b| !b.is_null()) {
            let kind = bound["kind"].as_str().unwrap_or_default();
            let name = bound["name"].as_str().unwrap_or_default();
            let resource = match kind {
                "Pod" => "pods",
                "Secret" => "secrets",
                other => {
                    return Err(invalid(vec![FieldError::not_supported(
                        "spec.boundObjectRef.kind",
                        &json!(other),
                        &["Pod", "Secret"],
                    )]));
                }
            };
            let api_version = bound["apiVersion"].as_str().unwrap_or("v1");
            if api_version != "v1" {
                return Err(invalid(vec![FieldError::not_supported(
                    "spec.boundObjectRef.apiVersion",
                    &json!(api_version),
                    &["v1"],
                )]));
            }
            if name.is_empty() {
                return Err(invalid(vec![FieldError::required(
                    "spec.boundObjectRef.name",
                )]));
            }
            let uid = serviceaccount::object_uid(self, resource, &ns, name)
                .await
                .map_err(ApiError::ServiceUnavailable)?
                .ok_or_else(|| {
                    ApiError::NotFound(ErrorTarget {
                        group: String::new(),
                        resource: resource.into(),
                        kind: kind.into(),
                        name: name.into(),
                    })
                })?;
            if let Some(wanted) = bound["uid"].as_str().filter(|u| !u.is_empty())
                && wanted != uid
            {
                return Err(ApiError::Conflict {
                    target: ErrorTarget {
                        group: String::new(),
                        resource: resource.into(),
                        kind: kind.into(),
                        name: name.into(),
                    },
                    message: format!(
                        "the UID in the bound object reference ({wanted}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                });
            }
            let object = Some(ObjectRef {
                name: name.to_owned(),
                uid,
            });
            if kind == "Pod" {
                pod = object;
            } else {
                secret = object;
            }
        }
        let now = chrono::Utc::now();
        let exp = now.timestamp() + expiration;
        let claims = Claims {
            aud: audiences.clone(),
            exp,
            iat: now.timestamp(),
            iss: ISSUER.to_owned(),
            jti: uuid::Uuid::new_v4().to_string(),
            nbf: now.timestamp(),
            sub: service_account_user(&ns, &sa_ref.name),
            kubernetes: KubernetesClaims {
                namespace: ns.clone(),
                serviceaccount: sa_ref.clone(),
                pod,
                secret,
            },
        };
        let token = signer.sign(&claims).map_err(|e| {
            tracing::warn!(error = %e, "signing a service account token");
            ApiError::Internal("signing the token failed".into())
        })?;
        let expires_at = chrono::DateTime::from_timestamp(exp, 0)
            .unwrap_or(now)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        request["apiVersion"] = json!("authentication.k8s.io/v1");
        request["kind"] = json!("TokenRequest");
        request["metadata"] = json!({
            "name": sa_ref.name,
            "namespace": ns,
            "creationTimestamp": meta::now_rfc3339(),
        });
        request["spec"]["audiences"] = json!(audiences);
        request["spec"]["expirationSeconds"] = json!(expiration);
        request["status"] = json!({ "token": token, "expirationTimestamp": expires_at });
        Ok(request)
    }
}
