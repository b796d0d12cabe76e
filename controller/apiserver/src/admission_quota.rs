//! ResourceQuota admission (upstream's `ResourceQuota` plugin): a create in a namespace with
//! quotas is checked against each quota's `spec.hard` and `status.used`, refused with 403
//! Forbidden and upstream's message when it would exceed one, and otherwise charged to the
//! quotas' `status.used` (an optimistic-concurrency write, the serialisation point between
//! concurrent creates) before the object is stored. [`usage`] is the arithmetic the quota
//! controller ([`crate::quota_controller`]) recomputes `status.used` with.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tracing::debug;

use bramble_api::quantity::Quantity;
use bramble_api::{Reason, ResourceInfo, Status};
use bramble_store::{KeyValue, ListOptions, Op, StoreError};

use crate::objects::meta_str;
use crate::state::ApiState;

/// Store prefix of the ResourceQuotas of namespace `ns`.
pub fn quotas_prefix(ns: &str) -> String {
    format!("core/resourcequotas/{ns}/")
}

/// Resource names and amounts, as `spec.hard`/`status.used`.
pub type ResourceList = BTreeMap<String, Quantity>;

/// The object-count name of a resource: `count/pods`, `count/deployments.apps`.
pub fn count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

fn one() -> Quantity {
    Quantity::from_int(1, bramble_api::quantity::Format::DecimalSI)
}

/// Legacy names counted for core resources besides `count/<resource>`.
const LEGACY_COUNTS: &[&str] = &[
    "pods",
    "services",
    "configmaps",
    "secrets",
    "replicationcontrollers",
    "resourcequotas",
    "persistentvolumeclaims",
];

/// Whether a pod no longer uses resources (upstream's `QuotaV1Pod`: terminal pods do not count).
pub fn pod_is_terminal(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

fn quantities(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Quantity::from_json(v).ok()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn add_into(total: &mut ResourceList, more: &ResourceList) {
    for (k, v) in more {
        let sum = total.get(k).map(|t| t.add(v)).unwrap_or_else(|| *v);
        total.insert(k.clone(), sum);
    }
}

fn max_into(total: &mut ResourceList, other: &ResourceList) {
    for (k, v) in other {
        if total.get(k).is_none_or(|t| t < v) {
            total.insert(k.clone(), *v);
        }
    }
}

/// A pod's effective requests or limits (`field` = "requests"/"limits"): the larger of the
/// sum over containers and the largest init container, plus the pod overhead.
pub fn pod_resources(pod: &Value, field: &str) -> ResourceList {
    let list = |name: &str| -> Vec<ResourceList> {
        pod.pointer(&format!("/spec/{name}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| quantities(c.pointer(&format!("/resources/{field}"))))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut sum = ResourceList::new();
    for c in list("containers") {
        add_into(&mut sum, &c);
    }
    for c in list("initContainers") {
        max_into(&mut sum, &c);
    }
    add_into(&mut sum, &quantities(pod.pointer("/spec/overhead")));
    sum
}

/// What one object of resource `info` uses, by quota resource name.
pub fn usage(group: &str, resource: &str, obj: &Value) -> ResourceList {
    let mut u = ResourceList::new();
    if group.is_empty() && resource == "pods" && pod_is_terminal(obj) {
        return u;
    }
    u.insert(count_name(group, resource), one());
    if group.is_empty() && LEGACY_COUNTS.contains(&resource) {
        u.insert(resource.to_string(), one());
    }
    match (group, resource) {
        ("", "pods") => {
            for (field, prefix) in [("requests", "requests."), ("limits", "limits.")] {
                for (name, q) in pod_resources(obj, field) {
                    if field == "requests" && (name == "cpu" || name == "memory") {
                        u.insert(name.clone(), q);
                    }
                    u.insert(format!("{prefix}{name}"), q);
                }
            }
        }
        ("", "services") => {
            let ty = obj
                .pointer("/spec/type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            if ty == "LoadBalancer" {
                u.insert("services.loadbalancers".into(), one());
            }
            if ty == "NodePort" || ty == "LoadBalancer" {
                let ports = obj
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                u.insert(
                    "services.nodeports".into(),
                    Quantity::from_int(ports as i64, bramble_api::quantity::Format::DecimalSI),
                );
            }
        }
        ("", "persistentvolumeclaims") => {
            if let Some(q) = quantities(obj.pointer("/spec/resources/requests")).remove("storage") {
                u.insert("requests.storage".into(), q);
            }
        }
        _ => {}
    }
    u
}

/// Compute resources a pod must state when a quota constrains them (upstream's
/// `PodEvaluator.Constraints`).
fn missing_constraints(hard: &ResourceList, pod: &Value) -> Vec<String> {
    let containers = |name: &str| -> Vec<Value> {
        pod.pointer(&format!("/spec/{name}"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let all: Vec<Value> = containers("containers")
        .into_iter()
        .chain(containers("initContainers"))
        .collect();
    let mut missing = Vec::new();
    for (quota_name, field, res) in [
        ("requests.cpu", "requests", "cpu"),
        ("cpu", "requests", "cpu"),
        ("requests.memory", "requests", "memory"),
        ("memory", "requests", "memory"),
        ("limits.cpu", "limits", "cpu"),
        ("limits.memory", "limits", "memory"),
    ] {
        if !hard.contains_key(quota_name) {
            continue;
        }
        let lacking = all
            .iter()
            .any(|c| c.pointer(&format!("/resources/{field}/{res}")).is_none());
        let name = format!("{field}.{res}");
        if lacking && !missing.contains(&name) {
            missing.push(name);
        }
    }
    missing.sort();
    missing
}

fn render(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={}", v.canonical()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The Forbidden status admission plugins answer with: `pods "x" is forbidden: <why>`.
pub fn forbidden(info: &ResourceInfo, name: &str, why: &str) -> Status {
    let qualified = if info.group.is_empty() {
        info.resource.clone()
    } else {
        format!("{}.{}", info.resource, info.group)
    };
    let mut s = Status::new(
        Reason::Forbidden,
        format!("{qualified} \"{name}\" is forbidden: {why}"),
    );
    s.name = Some(name.to_string());
    s.group = Some(info.group.clone());
    s.kind = Some(info.resource.clone());
    s
}

struct Charge {
    kv: KeyValue,
    quota: Value,
}

/// Checks a create of `obj` (resource `info`) in `namespace` against its quotas and, unless
/// `dry_run`, charges it to them. Errors are 403 Forbidden as upstream words them.
pub async fn admit_create(
    state: &Arc<ApiState>,
    info: &ResourceInfo,
    namespace: &str,
    obj: &Value,
    dry_run: bool,
) -> Result<(), Status> {
    if !info.namespaced {
        return Ok(());
    }
    let delta = usage(&info.group, &info.resource, obj);
    let name = meta_str(obj, "name").unwrap_or("").to_string();
    // Conflicts mean another create charged a quota meanwhile: re-read and re-check.
    for _ in 0..16 {
        let quotas = state
            .store
            .list(&quotas_prefix(namespace), ListOptions::default())
            .map_err(|e| Status::internal(e.to_string()))?;
        let mut charges = Vec::new();
        for kv in quotas.items {
            let quota: Value =
                serde_json::from_slice(&kv.value).map_err(|e| Status::internal(e.to_string()))?;
            let qname = meta_str(&quota, "name").unwrap_or("").to_string();
            let hard = quantities(quota.pointer("/spec/hard"));
            let used = quantities(quota.pointer("/status/used"));
            if info.group.is_empty() && info.resource == "pods" && !delta.is_empty() {
                let missing = missing_constraints(&hard, obj);
                if !missing.is_empty() {
                    return Err(forbidden(
                        info,
                        &name,
                        &format!("failed quota: {qname}: must specify {}", missing.join(",")),
                    ));
                }
            }
            let matched: Vec<&String> = delta.keys().filter(|r| hard.contains_key(*r)).collect();
            if matched.is_empty() {
                continue;
            }
            let unknown: Vec<&str> = matched
                .iter()
                .filter(|r| !used.contains_key(**r))
                .map(|r| r.as_str())
                .collect();
            if !unknown.is_empty() {
                return Err(forbidden(
                    info,
                    &name,
                    &format!(
                        "status unknown for quota: {qname}, resources: {}",
                        unknown.join(",")
                    ),
                ));
            }
            let mut requested = ResourceList::new();
            let mut was = ResourceList::new();
            let mut limited = ResourceList::new();
            let mut new_used = used.clone();
            for r in matched {
                let now = used[r].add(&delta[r]);
                if now > hard[r] {
                    requested.insert(r.clone(), delta[r]);
                    was.insert(r.clone(), used[r]);
                    limited.insert(r.clone(), hard[r]);
                }
                new_used.insert(r.clone(), now);
            }
            if !requested.is_empty() {
                return Err(forbidden(
                    info,
                    &name,
                    &format!(
                        "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                        render(&requested),
                        render(&was),
                        render(&limited)
                    ),
                ));
            }
            let mut quota = quota;
            quota["status"]["used"] = json!(new_used
                .iter()
                .map(|(k, v)| (k.clone(), json!(v.canonical())))
                .collect::<serde_json::Map<_, _>>());
            charges.push(Charge { kv, quota });
        }
        if dry_run || charges.is_empty() {
            return Ok(());
        }
        let ops = charges
            .into_iter()
            .map(|c| Op::Update {
                key: c.kv.key.clone(),
                value: c.quota,
                expected_revision: Some(c.kv.mod_revision),
            })
            .collect();
        match state.store.txn(ops).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound { .. }) => {
                debug!(namespace, "quota changed while charging; retrying");
            }
            Err(e) => return Err(Status::internal(e.to_string())),
        }
    }
    Err(Status::new(
        Reason::Conflict,
        "Operation cannot be fulfilled on resourcequotas: too many concurrent updates",
    ))
}

#[cfg(test)]
#[path = "admission_quota_tests.rs"]
mod store_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn pod_usage_takes_max_of_init_and_sum_of_containers() {
        let pod = json!({"spec": {
            "containers": [
                {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}},
                {"resources": {"requests": {"cpu": "150m"}}}],
            "initContainers": [{"resources": {"requests": {"cpu": "1", "memory": "32Mi"}}}]}});
        let u = usage("", "pods", &pod);
        assert_eq!(u["pods"], q("1"));
        assert_eq!(u["count/pods"], q("1"));
        assert_eq!(u["requests.cpu"], q("1"));
        assert_eq!(u["cpu"], q("1"));
        assert_eq!(u["requests.memory"], q("64Mi"));
        assert_eq!(u["limits.cpu"], q("200m"));
        let done = json!({"spec": {"containers": []}, "status": {"phase": "Succeeded"}});
        assert!(usage("", "pods", &done).is_empty());
    }

    #[test]
    fn counts_and_service_usage() {
        let svc = json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}});
        let u = usage("", "services", &svc);
        assert_eq!(u["services"], q("1"));
        assert_eq!(u["services.loadbalancers"], q("1"));
        assert_eq!(u["services.nodeports"], q("2"));
        let d = usage("apps", "deployments", &json!({}));
        assert_eq!(d.keys().collect::<Vec<_>>(), vec!["count/deployments.apps"]);
    }

    #[test]
    fn constraints_name_what_is_missing() {
        let hard: ResourceList = [("limits.memory".to_string(), q("1Gi"))].into();
        let pod = json!({"spec": {"containers": [{"resources": {}}]}});
        assert_eq!(missing_constraints(&hard, &pod), vec!["limits.memory"]);
    }
}
