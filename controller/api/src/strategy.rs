//! Upstream's REST strategies, generically on object JSON: what create, update and the
//! `status` (and `approval`, `finalize`) subresources may change, status resets, and
//! `metadata.generation` tracking.
//!
//! Call order as upstream: defaulting, then (with the system fields `uid` and
//! `creationTimestamp` already set, as upstream's create handler does before
//! `BeforeCreate`) `prepare_for_create`, then validation.

use serde_json::{json, Map, Value};

use crate::meta;
use crate::quantity::Quantity;
use crate::resources::ResourceInfo;

/// Groups whose kinds are built in (everything else is a custom resource).
fn is_builtin(info: &ResourceInfo) -> bool {
    info.decode.is_some()
}

fn is(info: &ResourceInfo, group: &str, resource: &str) -> bool {
    info.group == group && info.resource == resource
}

/// Whether upstream sets `metadata.generation = 1` on create and bumps it on spec changes.
pub fn tracks_generation(info: &ResourceInfo) -> bool {
    if !is_builtin(info) {
        return true;
    }
    matches!(
        (info.group.as_str(), info.resource.as_str()),
        ("", "pods")
            | (
                "apps",
                "deployments" | "replicasets" | "daemonsets" | "statefulsets"
            )
            | ("batch", "jobs" | "cronjobs")
            | ("policy", "poddisruptionbudgets")
            | ("networking.k8s.io", "ingresses" | "ingressclasses")
            | ("apiextensions.k8s.io", "customresourcedefinitions")
            | ("discovery.k8s.io", "endpointslices")
    )
}

/// The status a new object starts with (upstream's cleared Go status struct, with the
/// fields it always serializes).
fn initial_status(info: &ResourceInfo) -> Value {
    match (info.group.as_str(), info.resource.as_str()) {
        ("", "services") => json!({"loadBalancer": {}}),
        ("", "namespaces") => json!({"phase": "Active"}),
        ("", "persistentvolumeclaims") => json!({"phase": "Pending"}),
        ("", "persistentvolumes") => {
            json!({"phase": "Pending", "lastPhaseTransitionTime": now()})
        }
        ("networking.k8s.io", "ingresses") => json!({"loadBalancer": {}}),
        ("apps", "replicasets") => json!({"replicas": 0}),
        ("apps", "statefulsets") => json!({"replicas": 0, "availableReplicas": 0}),
        ("apps", "daemonsets") => json!({
            "currentNumberScheduled": 0, "numberMisscheduled": 0,
            "desiredNumberScheduled": 0, "numberReady": 0
        }),
        ("autoscaling", "horizontalpodautoscalers") => {
            json!({"currentReplicas": 0, "desiredReplicas": 0})
        }
        ("policy", "poddisruptionbudgets") => json!({
            "disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0
        }),
        _ => json!({}),
    }
}

/// Upstream `PrepareForCreate` (plus `BeforeCreate`'s clearing of deletion fields).
/// A served version without rules of its own ([`crate::conversion`]) gets its storage
/// version's, on the converted object (as upstream's run on the internal type).
pub fn prepare_for_create(info: &ResourceInfo, obj: &mut Value) {
    crate::conversion::in_rules_form(info, obj, |obj| create_form(info, obj));
}

fn create_form(info: &ResourceInfo, obj: &mut Value) {
    let m = meta::metadata_mut(obj);
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    if tracks_generation(info) {
        meta::set_generation(obj, Some(1));
    }
    if is(info, "", "pods") {
        prepare_pod_create(obj);
        return;
    }
    if is(info, "", "nodes") {
        // The kubelet registers its Node with a status: kept.
        return;
    }
    if info.has_subresource("status") {
        if is_builtin(info) {
            set(obj, "status", initial_status(info));
        } else if let Some(map) = obj.as_object_mut() {
            map.remove("status");
        }
    }
    match (info.group.as_str(), info.resource.as_str()) {
        ("", "namespaces") => add_kubernetes_finalizer(obj),
        ("batch", "jobs") => generate_job_selector(obj),
        ("apiextensions.k8s.io", "customresourcedefinitions") => record_stored_version(obj),
        _ => {}
    }
}

fn prepare_pod_create(obj: &mut Value) {
    let qos = obj.get("spec").map(qos_class).unwrap_or("BestEffort");
    let mut status = json!({"phase": "Pending", "qosClass": qos});
    let gated = obj
        .pointer("/spec/schedulingGates")
        .and_then(Value::as_array)
        .is_some_and(|g| !g.is_empty());
    if gated {
        status["conditions"] = json!([{
            "type": "PodScheduled",
            "status": "False",
            "reason": "SchedulingGated",
            "message": "Scheduling is blocked due to non-empty scheduling gates",
            "lastProbeTime": null,
            "lastTransitionTime": null
        }]);
    }
    set(obj, "status", status);
}

fn add_kubernetes_finalizer(obj: &mut Value) {
    let spec = child_object(obj, "spec");
    let finalizers = spec
        .entry("finalizers")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !finalizers.is_array() {
        *finalizers = Value::Array(Vec::new());
    }
    let list = finalizers.as_array_mut().expect("array ensured above");
    if !list.iter().any(|f| f == "kubernetes") {
        list.push(json!("kubernetes"));
    }
}

/// Upstream's Job selector generation (`spec.manualSelector` not true): template labels
/// `batch.kubernetes.io/controller-uid`, `batch.kubernetes.io/job-name`, `controller-uid`,
/// `job-name` (user-set ones kept), and `spec.selector.matchLabels` with
/// `batch.kubernetes.io/controller-uid`. Needs `metadata.uid`; without it nothing changes.
pub fn generate_job_selector(obj: &mut Value) {
    let manual = obj.pointer("/spec/manualSelector").and_then(Value::as_bool) == Some(true);
    let (Some(uid), Some(name)) = (meta::uid(obj), meta::name(obj)) else {
        return;
    };
    if manual || uid.is_empty() {
        return;
    }
    let (uid, name) = (uid.to_string(), name.to_string());
    let spec = child_object(obj, "spec");
    let template = child_object_in(spec, "template");
    let tmeta = child_object_in(template, "metadata");
    let labels = child_object_in(tmeta, "labels");
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels
            .entry(k.to_string())
            .or_insert_with(|| Value::String(v.clone()));
    }
    let selector = child_object_in(spec, "selector");
    let match_labels = child_object_in(selector, "matchLabels");
    match_labels
        .entry("batch.kubernetes.io/controller-uid".to_string())
        .or_insert_with(|| Value::String(uid));
}

/// CRDs record the storage version in `status.storedVersions`.
fn record_stored_version(obj: &mut Value) {
    let storage = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| {
            vs.iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(storage) = storage else { return };
    let status = child_object(obj, "status");
    let stored = status
        .entry("storedVersions")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !stored.is_array() {
        *stored = Value::Array(Vec::new());
    }
    let list = stored.as_array_mut().expect("array ensured above");
    if !list.iter().any(|v| v == storage.as_str()) {
        list.push(Value::String(storage));
    }
}

/// Upstream `BeforeUpdate` + `PrepareForUpdate` for the main resource: generation and
/// system metadata come from `old`; with a status subresource the status does too;
/// generation is bumped when the desired state changed.
pub fn prepare_for_update(info: &ResourceInfo, new: &mut Value, old: &Value) {
    let old = crate::conversion::rules_form(info, old);
    crate::conversion::in_rules_form(info, new, |new| update_form(info, new, &old));
}

fn update_form(info: &ResourceInfo, new: &mut Value, old: &Value) {
    carry_update_metadata(new, old);
    if info.has_subresource("status") {
        copy_field(new, old, "status");
    }
    match (info.group.as_str(), info.resource.as_str()) {
        ("", "namespaces") => copy_pointer(new, old, "spec", "finalizers"),
        ("certificates.k8s.io", "certificatesigningrequests") => copy_field(new, old, "spec"),
        ("apiextensions.k8s.io", "customresourcedefinitions") => record_stored_version(new),
        _ => {}
    }
    if tracks_generation(info) && desired_state_changed(info, new, old) {
        meta::set_generation(new, Some(meta::generation(old).unwrap_or(0) + 1));
    }
}

/// Whether an update changes what the generation tracks: every top-level field but
/// `metadata` (and `status` when it is a subresource); Deployments also annotations.
fn desired_state_changed(info: &ResourceInfo, new: &Value, old: &Value) -> bool {
    let skip_status = info.has_subresource("status");
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut all = keys(new);
    all.extend(keys(old));
    let changed = all.iter().any(|k| {
        !matches!(k.as_str(), "metadata" | "apiVersion" | "kind")
            && (!skip_status || k != "status")
            && new.get(k) != old.get(k)
    });
    let annotations_changed = is(info, "apps", "deployments")
        && new.pointer("/metadata/annotations") != old.pointer("/metadata/annotations");
    changed || annotations_changed
}

/// Upstream's status-subresource `PrepareForUpdate`: everything but `status` comes from
/// `old`, with `ResetObjectMetaForStatus` (labels, annotations, finalizers,
/// ownerReferences, deletionTimestamp, generation from `old`). Pods follow the pod status
/// strategy instead: spec and ownerReferences from `old`, metadata otherwise from `new`,
/// `qosClass` and `observedGeneration` kept when the update drops them.
pub fn prepare_for_status_update(info: &ResourceInfo, new: &mut Value, old: &Value) {
    let old = crate::conversion::rules_form(info, old);
    crate::conversion::in_rules_form(info, new, |new| status_update_form(info, new, &old));
}

fn status_update_form(info: &ResourceInfo, new: &mut Value, old: &Value) {
    carry_update_metadata(new, old);
    if is(info, "", "pods") {
        copy_field(new, old, "spec");
        copy_pointer(new, old, "metadata", "ownerReferences");
        for field in ["qosClass", "observedGeneration"] {
            let missing = new
                .pointer(&format!("/status/{field}"))
                .is_none_or(|v| v.is_null() || v == "" || v == 0);
            if missing {
                if let Some(v) = old.pointer(&format!("/status/{field}")) {
                    child_object(new, "status").insert(field.to_string(), v.clone());
                }
            }
        }
        return;
    }
    let keys: Vec<String> = new
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for k in keys {
        if !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind") {
            copy_field(new, old, &k);
        }
    }
    if let Some(old_map) = old.as_object() {
        for k in old_map.keys() {
            if !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind") {
                copy_field(new, old, k);
            }
        }
    }
    for field in [
        "labels",
        "annotations",
        "finalizers",
        "ownerReferences",
        "deletionTimestamp",
        "generation",
    ] {
        copy_pointer(new, old, "metadata", field);
    }
    if is(info, "certificates.k8s.io", "certificatesigningrequests") {
        keep_csr_approval_conditions(new, old);
    }
}

/// `PUT namespaces/<name>/finalize`: only `spec.finalizers` changes.
pub fn prepare_for_namespace_finalize(new: &mut Value, old: &Value) {
    let finalizers = new.pointer("/spec/finalizers").cloned();
    let rv = meta::resource_version(new).map(str::to_string);
    *new = old.clone();
    match finalizers {
        Some(f) => {
            child_object(new, "spec").insert("finalizers".into(), f);
        }
        None => {
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
            }
        }
    }
    if let Some(rv) = rv {
        meta::set_resource_version(new, &rv);
    }
}

/// `PUT certificatesigningrequests/<name>/approval`: only `status.conditions` changes
/// (with upstream's condition timestamps filled in).
pub fn prepare_for_csr_approval(new: &mut Value, old: &Value) {
    let conditions = new.pointer("/status/conditions").cloned();
    let rv = meta::resource_version(new).map(str::to_string);
    *new = old.clone();
    let status = child_object(new, "status");
    match conditions {
        Some(c) => {
            status.insert("conditions".into(), c);
        }
        None => {
            status.remove("conditions");
        }
    }
    fill_condition_times(new, old);
    if let Some(rv) = rv {
        meta::set_resource_version(new, &rv);
    }
}

/// Dispatches an update of a subresource (`status`, `approval`, `finalize`) to its
/// strategy; any other name is handled like the main resource.
pub fn prepare_for_subresource_update(
    info: &ResourceInfo,
    subresource: &str,
    new: &mut Value,
    old: &Value,
) {
    let old = crate::conversion::rules_form(info, old);
    let old = old.as_ref();
    crate::conversion::in_rules_form(info, new, |new| match subresource {
        "status" => status_update_form(info, new, old),
        "approval" if is(info, "certificates.k8s.io", "certificatesigningrequests") => {
            prepare_for_csr_approval(new, old)
        }
        "finalize" if is(info, "", "namespaces") => prepare_for_namespace_finalize(new, old),
        "ephemeralcontainers" | "resize" if is(info, "", "pods") => {
            prepare_for_pod_spec_subresource(subresource, new, old)
        }
        _ => update_form(info, new, old),
    })
}

/// `pods/<name>/ephemeralcontainers` changes only `spec.ephemeralContainers`;
/// `pods/<name>/resize` only the containers' `resources` and `resizePolicy`. Both bump the
/// generation when they change the spec.
fn prepare_for_pod_spec_subresource(subresource: &str, new: &mut Value, old: &Value) {
    let rv = meta::resource_version(new).map(str::to_string);
    let incoming = new.clone();
    *new = old.clone();
    if subresource == "ephemeralcontainers" {
        match incoming.pointer("/spec/ephemeralContainers") {
            Some(ec) => {
                child_object(new, "spec").insert("ephemeralContainers".into(), ec.clone());
            }
            None => {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("ephemeralContainers");
                }
            }
        }
    } else {
        for list in ["containers", "initContainers"] {
            let Some(targets) = new
                .pointer_mut(&format!("/spec/{list}"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for target in targets.iter_mut() {
                let name = target.get("name").cloned();
                let source = incoming
                    .pointer(&format!("/spec/{list}"))
                    .and_then(Value::as_array)
                    .and_then(|cs| cs.iter().find(|c| c.get("name") == name.as_ref()));
                let (Some(source), Some(t)) = (source, target.as_object_mut()) else {
                    continue;
                };
                for field in ["resources", "resizePolicy"] {
                    match source.get(field) {
                        Some(v) => t.insert(field.to_string(), v.clone()),
                        None => t.remove(field),
                    };
                }
            }
        }
    }
    if new.get("spec") != old.get("spec") {
        meta::set_generation(new, Some(meta::generation(old).unwrap_or(0) + 1));
    }
    if let Some(rv) = rv {
        meta::set_resource_version(new, &rv);
    }
}

/// Approved/Denied conditions cannot change through `status`: the old ones are kept.
fn keep_csr_approval_conditions(new: &mut Value, old: &Value) {
    let is_approval = |c: &Value| {
        matches!(
            c.get("type").and_then(Value::as_str),
            Some("Approved" | "Denied")
        )
    };
    let mut conditions: Vec<Value> = new
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter(|c| !is_approval(c)).cloned().collect())
        .unwrap_or_default();
    if let Some(old_cs) = old.pointer("/status/conditions").and_then(Value::as_array) {
        conditions.extend(old_cs.iter().filter(|c| is_approval(c)).cloned());
    }
    if !conditions.is_empty() {
        child_object(new, "status").insert("conditions".into(), Value::Array(conditions));
    }
    fill_condition_times(new, old);
}

/// CSR conditions: `lastUpdateTime` defaults to now; `lastTransitionTime` is kept from an
/// old condition of the same type and status, else now.
fn fill_condition_times(new: &mut Value, old: &Value) {
    let old_cs = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(cs) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let now = now();
    for c in cs.iter_mut() {
        let Some(map) = c.as_object_mut() else {
            continue;
        };
        let blank = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v == "");
        if blank(map.get("lastUpdateTime")) {
            map.insert("lastUpdateTime".into(), json!(now));
        }
        if blank(map.get("lastTransitionTime")) {
            let same = old_cs
                .iter()
                .find(|o| o.get("type") == map.get("type") && o.get("status") == map.get("status"))
                .and_then(|o| o.get("lastTransitionTime"))
                .filter(|t| !t.is_null())
                .cloned();
            map.insert(
                "lastTransitionTime".into(),
                same.unwrap_or_else(|| json!(now)),
            );
        }
    }
}

/// `BeforeUpdate`: clients cannot change generation, uid (when omitted),
/// creationTimestamp, or remove/change a deletion timestamp or grace period.
fn carry_update_metadata(new: &mut Value, old: &Value) {
    copy_pointer(new, old, "metadata", "generation");
    copy_pointer(new, old, "metadata", "creationTimestamp");
    for field in ["uid", "deletionTimestamp", "deletionGracePeriodSeconds"] {
        let new_has = new
            .pointer(&format!("/metadata/{field}"))
            .is_some_and(|v| !v.is_null() && v != "");
        let old_v = old.pointer(&format!("/metadata/{field}")).cloned();
        match (field, old_v) {
            ("uid", Some(v)) if !new_has => meta::set_meta_field(new, field, Some(v)),
            ("uid", _) => {}
            (_, Some(v)) if !v.is_null() => meta::set_meta_field(new, field, Some(v)),
            // An update cannot set a deletion timestamp either (only DELETE does).
            (_, _) => meta::set_meta_field(new, field, None),
        }
    }
}

/// Upstream's pod QoS class (`GetPodQOS`): containers and init containers, cpu and memory
/// only, zero quantities ignored. `Guaranteed` needs every container to set cpu and memory
/// limits and the summed requests to equal the summed limits; no requests or limits at all
/// is `BestEffort`; anything else `Burstable`.
pub fn qos_class(pod_spec: &Value) -> &'static str {
    let mut req_sum: Vec<(String, Quantity)> = Vec::new();
    let mut lim_sum: Vec<(String, Quantity)> = Vec::new();
    let mut guaranteed = true;
    let containers = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| pod_spec.get(*k).and_then(Value::as_array))
        .flatten();
    for c in containers {
        let mut found = (false, false);
        for (kind, sums) in [("requests", &mut req_sum), ("limits", &mut lim_sum)] {
            let Some(list) = c
                .pointer(&format!("/resources/{kind}"))
                .and_then(Value::as_object)
            else {
                continue;
            };
            for (name, q) in list {
                if name != "cpu" && name != "memory" {
                    continue;
                }
                let Ok(q) = Quantity::from_json(q) else {
                    continue;
                };
                if q.sign() <= 0 {
                    continue;
                }
                if kind == "limits" {
                    if name == "cpu" {
                        found.0 = true;
                    } else {
                        found.1 = true;
                    }
                }
                match sums.iter_mut().find(|(n, _)| n == name) {
                    Some((_, total)) => *total = total.add(&q),
                    None => sums.push((name.clone(), q)),
                }
            }
        }
        if !(found.0 && found.1) {
            guaranteed = false;
        }
    }
    if req_sum.is_empty() && lim_sum.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        guaranteed = req_sum
            .iter()
            .all(|(n, r)| lim_sum.iter().any(|(ln, l)| ln == n && l == r));
    }
    if guaranteed && req_sum.len() == lim_sum.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn set(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.insert(key.to_string(), v);
    }
}

/// `new[key] = old[key]`, removing it from `new` when `old` lacks it.
fn copy_field(new: &mut Value, old: &Value, key: &str) {
    let Some(map) = new.as_object_mut() else {
        return;
    };
    match old.get(key) {
        Some(v) => {
            map.insert(key.to_string(), v.clone());
        }
        None => {
            map.remove(key);
        }
    }
}

/// `new[parent][key] = old[parent][key]`, removing it when `old` lacks it.
fn copy_pointer(new: &mut Value, old: &Value, parent: &str, key: &str) {
    let old_v = old.get(parent).and_then(|p| p.get(key)).cloned();
    match old_v {
        Some(v) => {
            child_object(new, parent).insert(key.to_string(), v);
        }
        None => {
            if let Some(p) = new.get_mut(parent).and_then(Value::as_object_mut) {
                p.remove(key);
            }
        }
    }
}

fn child_object<'a>(obj: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    child_object_in(obj.as_object_mut().expect("object ensured above"), key)
}

fn child_object_in<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("object ensured above")
}

#[cfg(test)]
#[path = "strategy_tests.rs"]
mod tests;
