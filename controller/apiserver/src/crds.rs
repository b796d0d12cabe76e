//! CustomResourceDefinitions: every stored CRD's served versions are registered in the
//! [`Registry`](bramble_api::registry::Registry) (REST, watch, discovery, OpenAPI follow the
//! registry), at start from the store and then from a watch on CRDs; a new or changed CRD
//! gets the `NamesAccepted` and `Established` conditions; a deleted CRD's versions are
//! unregistered and its objects deleted.

use std::sync::Arc;

use futures::StreamExt;
use serde_json::{json, Value};
use tracing::{info, warn};

use bramble_api::registry::VERBS_ALL;
use bramble_api::ResourceInfo;
use bramble_store::{EventType, ListOptions, Op};

use crate::objects::{decode_stored, now_rfc3339};
use crate::state::ApiState;

const CRD_PREFIX: &str = "apiextensions.k8s.io/customresourcedefinitions/";

/// The resources a CRD serves (one per served version).
pub fn resources_of(crd: &Value) -> Vec<ResourceInfo> {
    let s = |p: &str| {
        crd.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let strings = |p: &str| -> Vec<String> {
        crd.pointer(p)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let kind = s("/spec/names/kind");
    let singular = match s("/spec/names/singular") {
        x if x.is_empty() => kind.to_lowercase(),
        x => x,
    };
    let list_kind = match s("/spec/names/listKind") {
        x if x.is_empty() => format!("{kind}List"),
        x => x,
    };
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .map(|v| {
            let mut subresources = Vec::new();
            if v.pointer("/subresources/scale").is_some() {
                subresources.push("scale".to_string());
            }
            if v.pointer("/subresources/status").is_some() {
                subresources.push("status".to_string());
            }
            ResourceInfo {
                group: s("/spec/group"),
                version: v.get("name").and_then(Value::as_str).unwrap_or("").into(),
                resource: s("/spec/names/plural"),
                singular: singular.clone(),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                namespaced: s("/spec/scope") == "Namespaced",
                short_names: strings("/spec/names/shortNames"),
                categories: strings("/spec/names/categories"),
                verbs: VERBS_ALL.iter().map(|v| v.to_string()).collect(),
                subresources,
                decode: None,
            }
        })
        .collect()
}

fn unregister(state: &ApiState, crd: &Value) {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    for r in state.registry.all() {
        if r.group == group && r.resource == plural && r.decode.is_none() {
            state.registry.remove(&r.group, &r.version, &r.resource);
            bramble_api::crd::set_schema(&r.group, &r.version, &r.resource, None);
            bramble_api::crd::set_version_columns(&r.group, &r.version, &r.resource, None);
        }
    }
}

fn register(state: &ApiState, crd: &Value) {
    unregister(state, crd);
    for r in resources_of(crd) {
        let version = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|vs| vs.iter().find(|v| v["name"] == r.version.as_str()));
        let schema = version
            .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
            .cloned();
        bramble_api::crd::set_version_columns(&r.group, &r.version, &r.resource, version);
        bramble_api::crd::set_schema(&r.group, &r.version, &r.resource, schema);
        info!(group = %r.group, version = %r.version, resource = %r.resource, "serving custom resource");
        state.registry.insert(r);
    }
}

/// `NamesAccepted` and `Established` (True) with `acceptedNames`, written once.
async fn establish(state: &ApiState, key: &str, crd: &Value, revision: u64) {
    let has = |t: &str| {
        crd.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| cs.iter().any(|c| c["type"] == t && c["status"] == "True"))
    };
    if has("Established") && has("NamesAccepted") {
        return;
    }
    let now = now_rfc3339();
    let mut next = crd.clone();
    next["status"] = json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": crd.pointer("/spec/versions").and_then(Value::as_array)
            .map(|vs| vs.iter().filter(|v| v["storage"] == true).map(|v| v["name"].clone()).collect::<Vec<_>>())
            .unwrap_or_default(),
    });
    let op = Op::Update {
        key: key.to_string(),
        value: next,
        expected_revision: Some(revision),
    };
    if let Err(e) = state.store.txn(vec![op]).await {
        warn!(error = %e, "establishing CRD (retried on its next event)");
    }
}

/// Deletes every object of a removed CRD.
async fn delete_objects(state: &ApiState, crd: &Value) {
    let Some(r) = resources_of(crd).into_iter().next() else {
        return;
    };
    let Ok(listed) = state.store.list(&r.store_prefix(), ListOptions::default()) else {
        return;
    };
    let ops: Vec<Op> = listed
        .items
        .iter()
        .map(|kv| Op::Delete {
            key: kv.key.clone(),
            expected_revision: None,
        })
        .collect();
    if !ops.is_empty() {
        if let Err(e) = state.store.txn(ops).await {
            warn!(error = %e, "deleting custom objects of a removed CRD");
        }
    }
}

/// Registers the stored CRDs, then follows CRD changes until the store's watch ends.
pub async fn run(state: Arc<ApiState>) {
    let Ok(listed) = state.store.list(CRD_PREFIX, ListOptions::default()) else {
        return;
    };
    for kv in &listed.items {
        if let Ok(crd) = decode_stored(&kv.value) {
            register(&state, &crd);
            establish(&state, &kv.key, &crd, kv.mod_revision).await;
        }
    }
    let Ok(mut events) = state.store.watch(CRD_PREFIX, listed.revision) else {
        return;
    };
    while let Some(Ok(ev)) = events.next().await {
        let Ok(crd) = decode_stored(&ev.value) else {
            continue;
        };
        match ev.kind {
            EventType::Deleted => {
                unregister(&state, &crd);
                delete_objects(&state, &crd).await;
            }
            _ => {
                register(&state, &crd);
                establish(&state, &ev.key, &crd, ev.revision).await;
            }
        }
    }
}
