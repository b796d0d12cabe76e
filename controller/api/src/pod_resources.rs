//! A pod's effective resource requests and limits, as upstream's
//! `component-helpers/resource.PodRequests`/`PodLimits` compute them: app containers
//! summed, init containers as a floor (each one running alongside the restartable
//! "sidecar" init containers started before it), sidecars added to the sum, and
//! `spec.overhead` on top. Shared by the scheduler, the kubelet and quota.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::quantity::Quantity;

/// Resource name -> quantity.
pub type ResourceList = BTreeMap<String, Quantity>;

/// Parses a `ResourceList` JSON object; invalid quantities are skipped (validation rejects
/// them before they are stored).
pub fn resource_list(v: Option<&Value>) -> ResourceList {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| Quantity::from_json(q).ok().map(|q| (k.clone(), q)))
                .collect()
        })
        .unwrap_or_default()
}

/// `into += add`, resource by resource.
pub fn add_resource_list(into: &mut ResourceList, add: &ResourceList) {
    for (name, q) in add {
        into.entry(name.clone())
            .and_modify(|cur| *cur = cur.add(q))
            .or_insert(*q);
    }
}

/// `into = max(into, other)`, resource by resource.
pub fn max_resource_list(into: &mut ResourceList, other: &ResourceList) {
    for (name, q) in other {
        match into.get_mut(name) {
            Some(cur) if *cur >= *q => {}
            Some(cur) => *cur = *q,
            None => {
                into.insert(name.clone(), *q);
            }
        }
    }
}

fn aggregate(pod_spec: &Value, field: &str) -> ResourceList {
    let list_of = |c: &Value| resource_list(c.pointer(&format!("/resources/{field}")));
    let mut total = ResourceList::new();
    for c in pod_spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add_resource_list(&mut total, &list_of(c));
    }
    let mut sidecars = ResourceList::new();
    let mut init_floor = ResourceList::new();
    for c in pod_spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let own = list_of(c);
        let restartable = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
        let in_use = if restartable {
            add_resource_list(&mut total, &own);
            add_resource_list(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut tmp = own;
            add_resource_list(&mut tmp, &sidecars);
            tmp
        };
        max_resource_list(&mut init_floor, &in_use);
    }
    max_resource_list(&mut total, &init_floor);
    total
}

/// Upstream `PodRequests` (pod-level resources, alpha in 1.33, are not considered).
pub fn pod_requests(pod_spec: &Value) -> ResourceList {
    let mut reqs = aggregate(pod_spec, "requests");
    add_resource_list(&mut reqs, &resource_list(pod_spec.get("overhead")));
    reqs
}

/// Upstream `PodLimits`: overhead is added only to resources that have a limit.
pub fn pod_limits(pod_spec: &Value) -> ResourceList {
    let mut limits = aggregate(pod_spec, "limits");
    for (name, q) in resource_list(pod_spec.get("overhead")) {
        if let Some(cur) = limits.get_mut(&name) {
            *cur = cur.add(&q);
        }
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn c(requests: Value) -> Value {
        json!({"name": "c", "resources": {"requests": requests, "limits": requests}})
    }

    fn milli(list: &ResourceList, name: &str) -> i64 {
        list.get(name).map(Quantity::milli_value).unwrap_or(0)
    }

    #[test]
    fn sums_containers_and_floors_with_init_containers() {
        let spec = json!({
            "containers": [c(json!({"cpu": "100m", "memory": "64Mi"})), c(json!({"cpu": "200m"}))],
            "initContainers": [c(json!({"cpu": "1", "memory": "32Mi"}))]
        });
        let r = pod_requests(&spec);
        assert_eq!(milli(&r, "cpu"), 1000);
        assert_eq!(r["memory"].value(), 64 << 20);
        assert_eq!(pod_limits(&spec)["cpu"].milli_value(), 1000);
        assert!(pod_requests(&json!({})).is_empty());
    }

    #[test]
    fn sidecars_add_to_the_sum_and_to_later_init_containers() {
        let mut sidecar = c(json!({"cpu": "500m"}));
        sidecar["restartPolicy"] = json!("Always");
        let spec = json!({
            "containers": [c(json!({"cpu": "100m"}))],
            "initContainers": [sidecar, c(json!({"cpu": "700m"}))]
        });
        // Running: 100m + 500m sidecar; while the second init container runs: 500m + 700m.
        assert_eq!(milli(&pod_requests(&spec), "cpu"), 1200);
        let spec = json!({
            "containers": [c(json!({"cpu": "1"}))],
            "initContainers": [{"name": "s", "restartPolicy": "Always",
                "resources": {"requests": {"cpu": "250m"}}}]
        });
        assert_eq!(milli(&pod_requests(&spec), "cpu"), 1250);
    }

    #[test]
    fn overhead_applies_to_requests_and_existing_limits() {
        let spec = json!({
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "1Mi"},
                "limits": {"cpu": "200m"}}}],
            "overhead": {"cpu": "10m", "memory": "1Mi"}
        });
        let r = pod_requests(&spec);
        assert_eq!(milli(&r, "cpu"), 110);
        assert_eq!(r["memory"].value(), 2 << 20);
        let l = pod_limits(&spec);
        assert_eq!(milli(&l, "cpu"), 210);
        assert!(!l.contains_key("memory"));
    }

    #[test]
    fn list_helpers() {
        let mut a = resource_list(Some(&json!({"cpu": "1", "bad": "x"})));
        assert_eq!(a.len(), 1);
        max_resource_list(
            &mut a,
            &resource_list(Some(&json!({"cpu": "500m", "pods": "3"}))),
        );
        assert_eq!(milli(&a, "cpu"), 1000);
        assert_eq!(a["pods"].value(), 3);
    }
}
