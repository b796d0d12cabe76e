//! Pod Security Admission on the requests other than a pod's plain create (which the
//! ServiceAccount admission path evaluates): pod updates that can change what the policy
//! sees, server-side-apply creates of pods, workload pod templates (warn only, as upstream:
//! enforcement happens when the controller creates the pods), and namespace label changes
//! that tighten the enforce level (warnings naming the existing pods that violate it).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use bramble_api::{ResourceInfo, Status};
use bramble_auth::pod_security::lifecycle::{
    enforce_tightened, existing_pod_warnings, is_significant_pod_update, template_pod,
};
use bramble_auth::pod_security::{admit, NamespacePolicy};
use bramble_store::ListOptions;

use crate::objects::{decode_stored, meta_str};
use crate::state::ApiState;

/// The labels of `value` (a namespace).
fn labels_of(value: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(value["metadata"]["labels"].clone()).unwrap_or_default()
}

/// The policy of `namespace` from its stored labels (privileged when it has none).
pub fn namespace_policy(state: &ApiState, namespace: &str) -> NamespacePolicy {
    let labels = state
        .store
        .get(&format!("core/namespaces/{namespace}"))
        .ok()
        .flatten()
        .and_then(|kv| decode_stored(&kv.value).ok())
        .map(|ns| labels_of(&ns))
        .unwrap_or_default();
    NamespacePolicy::from_labels(&labels)
}

fn is_pods(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.resource == "pods"
}

/// A create other than the pod create path: a pod (server-side apply) is enforced; a
/// workload's template only warns.
pub fn on_create(
    state: &ApiState,
    info: &ResourceInfo,
    namespace: Option<&str>,
    obj: &Value,
) -> Result<Vec<String>, Status> {
    let Some(ns) = namespace.filter(|_| info.namespaced) else {
        return Ok(Vec::new());
    };
    if is_pods(info) {
        return crate::admission::pod_security(state, ns, obj);
    }
    Ok(template_warnings(state, info, ns, obj))
}

/// An update (PUT, PATCH or apply) of `old` into `new`, on the main resource or `sub`.
pub fn on_update(
    state: &ApiState,
    info: &ResourceInfo,
    namespace: Option<&str>,
    sub: Option<&str>,
    new: &Value,
    old: &Value,
) -> Result<Vec<String>, Status> {
    match (info.group.as_str(), info.resource.as_str(), sub) {
        ("", "pods", None | Some("ephemeralcontainers")) => {
            let (Some(ns), Ok(pod), Ok(old_pod)) = (
                namespace,
                serde_json::from_value::<Pod>(new.clone()),
                serde_json::from_value::<Pod>(old.clone()),
            ) else {
                return Ok(Vec::new());
            };
            if !is_significant_pod_update(&pod, &old_pod) {
                return Ok(Vec::new());
            }
            crate::admission::pod_security(state, ns, new)
        }
        ("", "namespaces", None) => Ok(namespace_warnings(state, new, old)),
        (_, _, None) => Ok(namespace
            .map(|ns| template_warnings(state, info, ns, new))
            .unwrap_or_default()),
        _ => Ok(Vec::new()),
    }
}

/// Warn-level violations of a workload's pod template.
fn template_warnings(state: &ApiState, info: &ResourceInfo, ns: &str, obj: &Value) -> Vec<String> {
    let Some(pod) = template_pod(&info.group, &info.resource, obj) else {
        return Vec::new();
    };
    let policy = namespace_policy(state, ns);
    let name = meta_str(obj, "name").unwrap_or_default();
    admit(&pod, name, &policy).warnings
}

/// When a namespace's new labels tighten its enforce level: its pods that would now be
/// refused, as upstream lists them.
fn namespace_warnings(state: &ApiState, new: &Value, old: &Value) -> Vec<String> {
    let new_policy = NamespacePolicy::from_labels(&labels_of(new));
    let old_policy = NamespacePolicy::from_labels(&labels_of(old));
    if !enforce_tightened(&old_policy, &new_policy) {
        return Vec::new();
    }
    let Some(name) = meta_str(new, "name") else {
        return Vec::new();
    };
    let pods: Vec<Pod> = match state
        .store
        .list(&format!("core/pods/{name}/"), ListOptions::default())
    {
        Ok(list) => list
            .items
            .iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect(),
        Err(_) => {
            return vec!["failed to list pods while checking new PodSecurity enforce level".into()]
        }
    };
    existing_pod_warnings(name, &new_policy.enforce, &pods)
}
