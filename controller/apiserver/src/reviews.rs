//! The review APIs: SelfSubjectAccessReview and SubjectAccessReview (`kubectl auth can-i`),
//! SelfSubjectRulesReview (`kubectl auth can-i --list`), SelfSubjectReview (`kubectl auth
//! whoami`) and TokenReview. Nothing is stored: the answer is the request with a status.

use std::sync::Arc;

use serde_json::{json, Value};

use bramble_api::Status;
use bramble_auth::{rbac, Attributes};
use bramble_pki::UserInfo;

use crate::auth::Authenticator;
use crate::authz;
use crate::state::ApiState;

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn attributes_from_spec(user: UserInfo, spec: &Value) -> Result<Attributes, Status> {
    if let Some(r) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let mut a = Attributes::resource(
            user,
            s(r, "/verb"),
            s(r, "/group"),
            s(r, "/resource"),
            s(r, "/subresource"),
            s(r, "/namespace"),
            s(r, "/name"),
        );
        a.api_version = s(r, "/version").to_string();
        Ok(a)
    } else if let Some(n) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
        Ok(Attributes::non_resource(user, s(n, "/verb"), s(n, "/path")))
    } else {
        Err(Status::bad_request(
            "spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ))
    }
}

fn echo(mut body: Value, kind: &str, group_version: &str, status: Value) -> Value {
    body["apiVersion"] = json!(group_version);
    body["kind"] = json!(kind);
    if !body.get("metadata").is_some_and(Value::is_object) {
        body["metadata"] = json!({});
    }
    body["metadata"]["creationTimestamp"] = Value::Null;
    body["status"] = status;
    body
}

fn access_status(state: &Arc<ApiState>, authn: &Authenticator, attrs: &Attributes) -> Value {
    let d = authz::authorize(state.store.as_ref(), authn.rbac_cache(), attrs);
    let mut st = json!({"allowed": d.allowed()});
    if !d.reason().is_empty() {
        st["reason"] = json!(d.reason());
    }
    st
}

/// `authorization.k8s.io/v1` SelfSubjectAccessReview: may the caller do this?
pub fn self_subject_access_review(
    state: &Arc<ApiState>,
    authn: &Authenticator,
    caller: &UserInfo,
    body: Value,
) -> Result<Value, Status> {
    let attrs = attributes_from_spec(caller.clone(), &body["spec"])?;
    let st = access_status(state, authn, &attrs);
    Ok(echo(
        body,
        "SelfSubjectAccessReview",
        "authorization.k8s.io/v1",
        st,
    ))
}

/// `authorization.k8s.io/v1` SubjectAccessReview: may `spec.user`/`spec.groups` do this?
pub fn subject_access_review(
    state: &Arc<ApiState>,
    authn: &Authenticator,
    body: Value,
) -> Result<Value, Status> {
    let spec = &body["spec"];
    let user = UserInfo {
        name: s(spec, "/user").to_string(),
        uid: s(spec, "/uid").to_string(),
        groups: spec["groups"]
            .as_array()
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    };
    if user.name.is_empty() && user.groups.is_empty() {
        return Err(Status::bad_request(
            "spec.user: Invalid value: \"\": at least one of user or group must be specified",
        ));
    }
    let attrs = attributes_from_spec(user, spec)?;
    let st = access_status(state, authn, &attrs);
    Ok(echo(
        body,
        "SubjectAccessReview",
        "authorization.k8s.io/v1",
        st,
    ))
}

/// `authorization.k8s.io/v1` SelfSubjectRulesReview: what may the caller do in a namespace?
pub fn self_subject_rules_review(
    state: &Arc<ApiState>,
    authn: &Authenticator,
    caller: &UserInfo,
    body: Value,
) -> Result<Value, Status> {
    let ns = s(&body, "/spec/namespace").to_string();
    let snapshot = authn.rbac_cache().get(state.store.as_ref());
    let rules = rbac::rules_for(snapshot.as_ref(), caller, &ns);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in rules {
        if let Some(urls) = r.non_resource_urls.filter(|u| !u.is_empty()) {
            non_resource_rules.push(json!({"verbs": r.verbs, "nonResourceURLs": urls}));
        } else {
            let mut rr = json!({"verbs": r.verbs, "apiGroups": r.api_groups.unwrap_or_default(),
                                "resources": r.resources.unwrap_or_default()});
            if let Some(n) = r.resource_names.filter(|n| !n.is_empty()) {
                rr["resourceNames"] = json!(n);
            }
            resource_rules.push(rr);
        }
    }
    let st = json!({"resourceRules": resource_rules, "nonResourceRules": non_resource_rules, "incomplete": false});
    Ok(echo(
        body,
        "SelfSubjectRulesReview",
        "authorization.k8s.io/v1",
        st,
    ))
}

fn user_info_json(u: &UserInfo) -> Value {
    let mut v = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        v["uid"] = json!(u.uid);
    }
    v
}

/// `authentication.k8s.io/v1` SelfSubjectReview: who is the caller?
pub fn self_subject_review(caller: &UserInfo, body: Value) -> Value {
    let st = json!({"userInfo": user_info_json(caller)});
    echo(body, "SelfSubjectReview", "authentication.k8s.io/v1", st)
}

/// `authentication.k8s.io/v1` TokenReview: whom does `spec.token` stand for?
pub fn token_review(authn: &Authenticator, body: Value) -> Value {
    let token = s(&body, "/spec/token").to_string();
    let st = match authn.authenticate_token(&token) {
        Some(u) => json!({"authenticated": true, "user": user_info_json(&u),
                          "audiences": [bramble_auth::jwt::DEFAULT_ISSUER]}),
        None => json!({"authenticated": false, "error": "invalid bearer token"}),
    };
    echo(body, "TokenReview", "authentication.k8s.io/v1", st)
}
