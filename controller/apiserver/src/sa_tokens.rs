//! TokenRequest (`POST .../serviceaccounts/<name>/token`, `kubectl create token`): a signed
//! service-account JWT with the requested audiences and lifetime, optionally bound to a pod
//! (then it stops working when the pod is gone).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

use bramble_api::{Reason, Status};
use bramble_auth::jwt::{Claims, ObjectRef};

use crate::auth::Authenticator;
use crate::objects::decode_stored;
use crate::state::ApiState;

/// Upstream's default token lifetime (one hour).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// Upstream's shortest accepted lifetime (ten minutes).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;
/// Longest lifetime handed out (upstream's default `--service-account-max-token-expiration`
/// is unset; a day keeps leaked tokens short-lived on a home LAN).
pub const MAX_EXPIRATION_SECONDS: i64 = 48 * 3600;

fn get(state: &ApiState, key: &str) -> Result<Option<Value>, Status> {
    match state.store.get(key) {
        Ok(Some(kv)) => decode_stored(&kv.value).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(Status::internal(e.to_string())),
    }
}

fn uid(v: &Value) -> String {
    v.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Issues a token for service account `namespace/name` as `body` (a TokenRequest) asks.
pub fn create_token(
    state: &Arc<ApiState>,
    authn: &Authenticator,
    namespace: &str,
    name: &str,
    mut body: Value,
) -> Result<Value, Status> {
    let signer = authn
        .signer()
        .ok_or_else(|| Status::internal("service account token signing is not configured"))?;
    let sa = get(state, &format!("core/serviceaccounts/{namespace}/{name}"))?
        .ok_or_else(|| Status::not_found("serviceaccounts", "", name))?;
    let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
    let expiration = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    if expiration < MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            name,
            "spec.expirationSeconds",
            "may not specify a duration less than 10 minutes",
        ));
    }
    let expiration = expiration.min(MAX_EXPIRATION_SECONDS);
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| authn.audiences().to_vec());
    let now = Utc::now().timestamp();
    let mut claims = Claims::new(
        signer.issuer(),
        audiences.clone(),
        namespace,
        name,
        &uid(&sa),
        now,
        expiration,
    );
    if let Some(bound) = spec.get("boundObjectRef").filter(|b| b.is_object()) {
        let kind = bound.get("kind").and_then(Value::as_str).unwrap_or("");
        let obj_name = bound.get("name").and_then(Value::as_str).unwrap_or("");
        if kind != "Pod" {
            return Err(invalid(
                name,
                "spec.boundObjectRef.kind",
                "supported values: \"Pod\"",
            ));
        }
        let pod = get(state, &format!("core/pods/{namespace}/{obj_name}"))?
            .ok_or_else(|| Status::not_found("pods", "", obj_name))?;
        let pod_uid = uid(&pod);
        if let Some(want) = bound
            .get("uid")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
        {
            if want != pod_uid {
                return Err(Status::new(
                    Reason::Conflict,
                    format!("the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"),
                ));
            }
        }
        let sa_of_pod = pod
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("default");
        if sa_of_pod != name {
            return Err(Status::bad_request(format!(
                "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
            )));
        }
        claims.kubernetes.pod = Some(ObjectRef {
            name: obj_name.to_string(),
            uid: pod_uid,
        });
        if let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str) {
            let node_uid = get(state, &format!("core/nodes/{node}"))?
                .map(|n| uid(&n))
                .unwrap_or_default();
            claims.kubernetes.node = Some(ObjectRef {
                name: node.to_string(),
                uid: node_uid,
            });
        }
    }
    let token = signer
        .sign(&claims)
        .map_err(|e| Status::internal(e.to_string()))?;
    let expires = Utc
        .timestamp_opt(claims.exp, 0)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    body["apiVersion"] = json!("authentication.k8s.io/v1");
    body["kind"] = json!("TokenRequest");
    if !body.get("metadata").is_some_and(Value::is_object) {
        body["metadata"] = json!({});
    }
    body["metadata"]["name"] = json!(name);
    body["metadata"]["namespace"] = json!(namespace);
    body["metadata"]["creationTimestamp"] = json!(crate::objects::now_rfc3339());
    let mut spec = spec;
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(expiration);
    body["spec"] = spec;
    body["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(body)
}

fn invalid(name: &str, field: &str, msg: &str) -> Status {
    Status::invalid(
        "TokenRequest",
        "authentication.k8s.io",
        name,
        vec![bramble_api::status::Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {msg}"),
            field: field.into(),
        }],
    )
}
