//! CertificateSigningRequests: the requester's identity stamped on create, the `approval`
//! subresource, and the in-process approver and signer (upstream's csrapproving and
//! csrsigning controllers): kubelet client CSRs (`kubernetes.io/kube-apiserver-client-kubelet`
//! for `system:node:<name>` in `system:nodes`) from bootstrap tokens or from the node itself
//! are approved after a SubjectAccessReview-style check, and approved client CSRs are signed
//! with the cluster CA.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::StreamExt;
use http::Request;
use hyper::body::Incoming;
use serde_json::{json, Value};
use tracing::{info, warn};

use bramble_api::Status;
use bramble_auth::Attributes;
use bramble_pki::UserInfo;
use bramble_store::{ListOptions, Op, StoreError};

use crate::auth::Authenticator;
use crate::body::{self, Response};
use crate::body_util::{decode_created, json_request, with_warnings};
use crate::handlers::{create_object, not_found};
use crate::objects::{decode_stored, now_rfc3339};
use crate::query::Query;
use crate::state::ApiState;

/// Signer of kubelet client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// Signer of other client certificates.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// Signer of kubelet serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// Store prefix of CSRs.
const PREFIX: &str = "certificates.k8s.io/certificatesigningrequests/";

/// `POST certificatesigningrequests`: the spec's `username`, `uid` and `groups` are the
/// requester's, whatever the body says.
pub async fn create(state: &Arc<ApiState>, user: &UserInfo, req: Request<Incoming>) -> Response {
    let Some(info) = state
        .registry
        .find("certificates.k8s.io", "v1", "certificatesigningrequests")
    else {
        return body::status(&not_found());
    };
    let dry_run = match Query::parse(req.uri().query()).dry_run() {
        Ok(d) => d,
        Err(s) => return body::status(&s),
    };
    let mut decoded = match decode_created(req, &info).await {
        Ok(d) => d,
        Err(s) => return body::status(&s),
    };
    let obj = &mut decoded.obj;
    if obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"]["username"] = json!(user.name);
        obj["spec"]["groups"] = json!(user.groups);
        if user.uid.is_empty() {
            if let Some(spec) = obj["spec"].as_object_mut() {
                spec.remove("uid");
            }
        } else {
            obj["spec"]["uid"] = json!(user.uid);
        }
    }
    match create_object(state, &info, None, decoded.obj, dry_run).await {
        Ok(stored) => with_warnings(body::raw_json(201, stored), &decoded.warnings),
        Err(s) => body::status(&s),
    }
}

/// `PUT certificatesigningrequests/<name>/approval`: takes the body's `status.conditions`.
pub async fn approval(state: &Arc<ApiState>, name: &str, req: Request<Incoming>) -> Response {
    let key = format!("{PREFIX}{name}");
    let new = match json_request(req).await {
        Ok(v) => v,
        Err(s) => return body::status(&s),
    };
    let current = match state.store.get(&key) {
        Ok(Some(kv)) => kv,
        Ok(None) => {
            return body::status(&Status::not_found(
                "certificatesigningrequests.certificates.k8s.io",
                "certificates.k8s.io",
                name,
            ))
        }
        Err(e) => return body::status(&Status::internal(e.to_string())),
    };
    let Ok(mut obj) = decode_stored(&current.value) else {
        return body::status(&Status::internal("stored CSR does not decode"));
    };
    let mut conditions = new
        .pointer("/status/conditions")
        .cloned()
        .unwrap_or_else(|| json!([]));
    for c in conditions.as_array_mut().into_iter().flatten() {
        let now = now_rfc3339();
        if c.get("lastUpdateTime").is_none_or(Value::is_null) {
            c["lastUpdateTime"] = json!(now);
        }
        if c.get("lastTransitionTime").is_none_or(Value::is_null) {
            c["lastTransitionTime"] = json!(now);
        }
        if c.get("status").is_none_or(Value::is_null) {
            c["status"] = json!("True");
        }
    }
    if !obj.get("status").is_some_and(Value::is_object) {
        obj["status"] = json!({});
    }
    obj["status"]["conditions"] = conditions;
    let op = Op::Update {
        key,
        value: obj,
        expected_revision: Some(current.mod_revision),
    };
    match state.store.txn(vec![op]).await {
        Ok(mut out) => match out.pop() {
            Some(bramble_store::OpOutcome::Written(kv)) => body::raw_json(200, kv.value.to_vec()),
            _ => body::status(&Status::internal("unexpected store outcome")),
        },
        Err(StoreError::Conflict { .. }) => body::status(&Status::conflict(
            "certificatesigningrequests.certificates.k8s.io",
            "certificates.k8s.io",
            name,
        )),
        Err(e) => body::status(&Status::internal(e.to_string())),
    }
}

fn has_condition(csr: &Value, kinds: &[&str]) -> bool {
    csr.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| kinds.contains(&c["type"].as_str().unwrap_or("")))
        })
}

fn requester(csr: &Value) -> UserInfo {
    UserInfo {
        name: csr
            .pointer("/spec/username")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        uid: csr
            .pointer("/spec/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        groups: csr
            .pointer("/spec/groups")
            .and_then(Value::as_array)
            .map(|g| {
                g.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn request_pem(csr: &Value) -> Option<String> {
    let b64 = csr.pointer("/spec/request")?.as_str()?;
    String::from_utf8(STANDARD.decode(b64).ok()?).ok()
}

/// Whether a kubelet client CSR asks for exactly a node client certificate, as upstream's
/// `IsKubeletClientCSR`.
fn is_node_client_request(csr: &Value) -> Option<String> {
    let subject = node_subject(csr)?;
    let usages = usages(csr);
    let allowed = ["digital signature", "key encipherment", "client auth"];
    if !usages.contains(&"client auth") || usages.iter().any(|u| !allowed.contains(u)) {
        return None;
    }
    Some(subject.common_name)
}

/// The CSR's subject when it is exactly a node's: `system:node:<name>` in `system:nodes`.
fn node_subject(csr: &Value) -> Option<bramble_pki::CsrSubject> {
    let subject = bramble_pki::csr_subject(&request_pem(csr)?).ok()?;
    let node = subject
        .common_name
        .strip_prefix(bramble_pki::NODE_USER_PREFIX)?;
    (!node.is_empty() && subject.organizations == [bramble_pki::NODES_GROUP]).then_some(subject)
}

fn usages(csr: &Value) -> Vec<&str> {
    csr.pointer("/spec/usages")
        .and_then(Value::as_array)
        .map(|u| u.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether a kubelet serving CSR asks for exactly a node serving certificate, as
/// upstream's `IsKubeletServingCSR`: `system:node:<name>` in `system:nodes`, usages within
/// digital signature, key encipherment and server auth (with server auth), only DNS and IP
/// SANs and at least one.
fn is_node_serving_request(csr: &Value) -> Option<String> {
    let subject = node_subject(csr)?;
    let usages = usages(csr);
    let allowed = ["digital signature", "key encipherment", "server auth"];
    if !usages.contains(&"server auth") || usages.iter().any(|u| !allowed.contains(u)) {
        return None;
    }
    let sans = bramble_pki::csr_sans(&request_pem(csr)?).ok()?;
    if sans.others > 0 || (sans.dns.is_empty() && sans.ips.is_empty()) {
        return None;
    }
    Some(subject.common_name)
}

/// A serving CSR is approved when the node asks for its own certificate, or when the
/// requester may approve certificates of this signer anyway (upstream's `approve` on
/// `signers`, as cluster admins do with `kubectl certificate approve`).
fn serving_approval(
    state: &Arc<ApiState>,
    authn: &Authenticator,
    csr: &Value,
) -> Option<&'static str> {
    let cn = is_node_serving_request(csr)?;
    let user = requester(csr);
    if user.name == cn && user.groups.iter().any(|g| g == "system:nodes") {
        return Some("Auto approving kubelet serving certificate requested by its node.");
    }
    let attrs = Attributes::resource(
        user,
        "approve",
        "certificates.k8s.io",
        "signers",
        "",
        "",
        KUBELET_SERVING_SIGNER,
    );
    crate::authz::authorize(state.store.as_ref(), authn.rbac_cache(), &attrs)
        .allowed()
        .then_some("Auto approving kubelet serving certificate: its requester may approve it.")
}

/// The approval decision for one pending CSR (None: leave it for a human).
fn auto_approval(
    state: &Arc<ApiState>,
    authn: &Authenticator,
    csr: &Value,
) -> Option<&'static str> {
    match csr.pointer("/spec/signerName").and_then(Value::as_str) {
        Some(KUBELET_CLIENT_SIGNER) => {}
        Some(KUBELET_SERVING_SIGNER) => return serving_approval(state, authn, csr),
        _ => return None,
    }
    let cn = is_node_client_request(csr)?;
    let user = requester(csr);
    let sub = if user.name == cn {
        "selfnodeclient"
    } else {
        "nodeclient"
    };
    let attrs = Attributes::resource(
        user,
        "create",
        "certificates.k8s.io",
        "certificatesigningrequests",
        sub,
        "",
        "",
    );
    crate::authz::authorize(state.store.as_ref(), authn.rbac_cache(), &attrs)
        .allowed()
        .then_some("Auto approving kubelet client certificate after SubjectAccessReview.")
}

/// The signing material of the loop: the CA certificate and key PEM.
pub struct CaFiles {
    pub cert_pem: String,
    pub key_pem: String,
}

/// One pass: approves what qualifies, signs what is approved; returns how many it changed.
pub async fn reconcile(state: &Arc<ApiState>, authn: &Authenticator, ca: &CaFiles) -> usize {
    let Ok(list) = state.store.list(PREFIX, ListOptions::default()) else {
        return 0;
    };
    let mut changed = 0;
    for kv in list.items {
        let Ok(mut csr) = decode_stored(&kv.value) else {
            continue;
        };
        let name = csr
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut dirty = false;
        if !has_condition(&csr, &["Approved", "Denied", "Failed"]) {
            if let Some(message) = auto_approval(state, authn, &csr) {
                let now = now_rfc3339();
                if !csr.get("status").is_some_and(Value::is_object) {
                    csr["status"] = json!({});
                }
                csr["status"]["conditions"] = json!([{"type": "Approved", "status": "True",
                    "reason": "AutoApproved", "message": message,
                    "lastUpdateTime": now, "lastTransitionTime": now}]);
                info!(csr = %name, "auto-approved kubelet certificate request");
                dirty = true;
            }
        }
        let signer = csr
            .pointer("/spec/signerName")
            .and_then(Value::as_str)
            .unwrap_or("");
        let signed = csr
            .pointer("/status/certificate")
            .is_some_and(|c| !c.is_null());
        if has_condition(&csr, &["Approved"])
            && !has_condition(&csr, &["Denied", "Failed"])
            && !signed
            && [KUBELET_CLIENT_SIGNER, CLIENT_SIGNER, KUBELET_SERVING_SIGNER].contains(&signer)
        {
            // Upstream: the shorter of spec.expirationSeconds (at least 10 minutes) and
            // --cluster-signing-duration.
            let longest = state.settings.cluster_signing_duration;
            let validity = csr
                .pointer("/spec/expirationSeconds")
                .and_then(Value::as_u64)
                .map(|s| Duration::from_secs(s.max(600)).min(longest))
                .unwrap_or(longest);
            let serving = signer == KUBELET_SERVING_SIGNER;
            let signed = request_pem(&csr)
                .ok_or_else(|| "request does not decode".to_string())
                .and_then(|pem| {
                    let (cert, key) = (&ca.cert_pem, &ca.key_pem);
                    if serving {
                        if is_node_serving_request(&csr).is_none() {
                            return Err("not a kubelet serving certificate request".into());
                        }
                        bramble_pki::sign_serving_csr_with_ca(cert, key, &pem, validity)
                    } else {
                        bramble_pki::sign_client_csr_with_ca(cert, key, &pem, validity)
                    }
                    .map_err(|e| e.to_string())
                });
            match signed {
                Ok(cert) => {
                    csr["status"]["certificate"] = json!(STANDARD.encode(cert));
                    info!(csr = %name, "signed certificate");
                }
                Err(message) => {
                    let now = now_rfc3339();
                    if let Some(conds) = csr["status"]["conditions"].as_array_mut() {
                        conds.push(json!({"type": "Failed", "status": "True",
                            "reason": "SignerValidationFailure", "message": message,
                            "lastUpdateTime": now, "lastTransitionTime": now}));
                    }
                }
            }
            dirty = true;
        }
        if dirty {
            let op = Op::Update {
                key: kv.key.clone(),
                value: csr,
                expected_revision: Some(kv.mod_revision),
            };
            match state.store.txn(vec![op]).await {
                Ok(_) => changed += 1,
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => warn!(error = %e, "writing CSR failed"),
            }
        }
    }
    changed
}

/// Runs until the process ends: a pass at start and after every CSR change.
pub async fn run(state: Arc<ApiState>, authn: Arc<Authenticator>, ca: CaFiles) {
    loop {
        let from = state.store.current_revision();
        if reconcile(&state, &authn, &ca).await > 0 {
            continue;
        }
        match state.store.watch(PREFIX, from) {
            Ok(mut events) => {
                let _ = tokio::time::timeout(Duration::from_secs(60), events.next()).await;
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(5)).await,
        }
    }
}
