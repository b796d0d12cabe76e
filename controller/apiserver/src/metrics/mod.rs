//! `metrics.k8s.io/v1beta1` served by the controller itself (what metrics-server adds
//! upstream), so `kubectl top nodes` and `kubectl top pods` work without add-ons:
//! `nodes` (NodeMetrics, cluster-scoped) and `pods` (PodMetrics, namespaced), `get` and
//! `list` (with `labelSelector`), built from each kubelet's Summary API scraped over the
//! authenticated hop of the streaming proxy ([`scrape`]). Like metrics-server, objects
//! without a cpu rate yet (a kubelet's first sample) are left out.

mod scrape;

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;
use http::{Method, Request};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tracing::debug;

use bramble_api::registry::Registry;
use bramble_api::selectors::LabelSelector;
use bramble_api::{Reason, ResourceInfo, Status};
use bramble_store::ListOptions;

use crate::body::{self, Response};
use crate::objects::decode_stored;
use crate::path::ResourceRoute;
use crate::query::Query;
use crate::state::ApiState;

/// The API group.
pub const GROUP: &str = "metrics.k8s.io";
/// The served version.
pub const VERSION: &str = "v1beta1";
/// `window` of every sample (the kubelet's sampling interval).
const WINDOW: &str = "10s";

fn info(resource: &str, kind: &str, namespaced: bool) -> ResourceInfo {
    ResourceInfo {
        group: GROUP.into(),
        version: VERSION.into(),
        resource: resource.into(),
        singular: String::new(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: Vec::new(),
        categories: Vec::new(),
        verbs: vec!["get".into(), "list".into()],
        subresources: Vec::new(),
        decode: None,
    }
}

/// Adds `nodes` and `pods` of `metrics.k8s.io/v1beta1` to discovery.
pub fn register(registry: &Registry) {
    registry.insert(info("nodes", "NodeMetrics", false));
    registry.insert(info("pods", "PodMetrics", true));
}

/// Whether the route is served here.
pub fn is_metrics(rr: &ResourceRoute) -> bool {
    rr.group == GROUP && rr.version == VERSION && rr.subresource.is_none()
}

/// `123456n`: cpu in nanocores, as metrics-server writes it.
pub fn cpu_quantity(nanocores: u64) -> String {
    format!("{nanocores}n")
}

/// `1234Ki`: memory as metrics-server writes it.
pub fn memory_quantity(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

/// Cpu and memory usage of a Summary entry (`None` until it has a cpu rate).
fn usage(entry: &Value) -> Option<(Value, String)> {
    let cpu = entry["cpu"]["usageNanoCores"].as_u64()?;
    let mem = entry["memory"]["workingSetBytes"].as_u64()?;
    let at = entry["cpu"]["time"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    Some((
        json!({"cpu": cpu_quantity(cpu), "memory": memory_quantity(mem)}),
        at,
    ))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The NodeMetrics of a kubelet's Summary.
pub fn node_metrics(name: &str, labels: &Value, summary: &Value) -> Option<Value> {
    let (usage, at) = usage(&summary["node"])?;
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {"name": name, "creationTimestamp": now(), "labels": labels},
        "timestamp": at,
        "window": WINDOW,
        "usage": usage,
    }))
}

/// The PodMetrics of one pod entry of a Summary.
pub fn pod_metrics(entry: &Value, labels: &Value) -> Option<Value> {
    let mut containers = Vec::new();
    let mut at = None;
    for c in entry["containers"].as_array().into_iter().flatten() {
        let (u, t) = usage(c)?;
        at.get_or_insert(t);
        containers.push(json!({"name": c["name"], "usage": u}));
    }
    if containers.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {
            "name": entry["podRef"]["name"], "namespace": entry["podRef"]["namespace"],
            "creationTimestamp": now(), "labels": labels,
        },
        "timestamp": at,
        "window": WINDOW,
        "containers": containers,
    }))
}

fn list_objects(state: &ApiState, resource: &str) -> Vec<Value> {
    let Some(info) = state.registry.find("", "v1", resource) else {
        return Vec::new();
    };
    state
        .store
        .list(&info.store_prefix(), ListOptions::default())
        .map(|l| {
            l.items
                .iter()
                .filter_map(|kv| decode_stored(&kv.value).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn list_of(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": format!("{kind}List"),
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {},
        "items": items,
    })
}

fn labels_of(obj: &Value) -> Value {
    obj["metadata"]["labels"].clone()
}

fn selected(selector: &Option<LabelSelector>, obj: &Value) -> bool {
    selector
        .as_ref()
        .is_none_or(|s| s.matches_labels_json(obj["metadata"].get("labels")))
}

/// Summaries of `nodes`' kubelets, scraped in parallel (failures are logged and skipped).
async fn summaries(state: &ApiState, nodes: &[Value]) -> Vec<(Value, Value)> {
    let scrapes = nodes.iter().map(|n| async move {
        let name = n["metadata"]["name"].as_str().unwrap_or_default();
        match scrape::summary(state, name).await {
            Ok(s) => Some((n.clone(), s)),
            Err(e) => {
                debug!(node = name, error = %e, "metrics scrape failed");
                None
            }
        }
    });
    join_all(scrapes).await.into_iter().flatten().collect()
}

/// Serves `GET` (one object) and `LIST` of NodeMetrics and PodMetrics.
pub async fn serve(state: &Arc<ApiState>, rr: ResourceRoute, req: Request<Incoming>) -> Response {
    if req.method() != Method::GET {
        return body::status(&Status::new(
            Reason::MethodNotAllowed,
            "the server does not allow this method on the requested resource",
        ));
    }
    let query = Query::parse(req.uri().query());
    let selector = match query.get("labelSelector").filter(|s| !s.is_empty()) {
        Some(s) => match LabelSelector::parse(s) {
            Ok(sel) => Some(sel),
            Err(e) => return body::status(&Status::bad_request(e.to_string())),
        },
        None => None,
    };
    let mut nodes = list_objects(state, "nodes");
    if rr.resource == "nodes" {
        if let Some(name) = &rr.name {
            nodes.retain(|n| n["metadata"]["name"] == name.as_str());
        }
        nodes.retain(|n| selected(&selector, n));
        let items: Vec<Value> = summaries(state, &nodes)
            .await
            .into_iter()
            .filter_map(|(n, s)| {
                node_metrics(
                    n["metadata"]["name"].as_str().unwrap_or_default(),
                    &labels_of(&n),
                    &s,
                )
            })
            .collect();
        return answer(&rr, "NodeMetrics", items);
    }
    // Pods: the API's pods give labels and say which nodes to ask.
    let pods: HashMap<(String, String), Value> = list_objects(state, "pods")
        .into_iter()
        .filter(|p| {
            rr.namespace
                .as_deref()
                .is_none_or(|ns| p["metadata"]["namespace"] == ns)
                && rr
                    .name
                    .as_deref()
                    .is_none_or(|n| p["metadata"]["name"] == n)
                && selected(&selector, p)
        })
        .map(|p| {
            let key = (
                p["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            (key, p)
        })
        .collect();
    let wanted: Vec<&str> = pods
        .values()
        .filter_map(|p| p["spec"]["nodeName"].as_str())
        .collect();
    nodes.retain(|n| {
        n["metadata"]["name"]
            .as_str()
            .is_some_and(|name| wanted.contains(&name))
    });
    let mut items = Vec::new();
    for (_, s) in summaries(state, &nodes).await {
        for entry in s["pods"].as_array().into_iter().flatten() {
            let key = (
                entry["podRef"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                entry["podRef"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            if let Some(pod) = pods.get(&key) {
                if let Some(m) = pod_metrics(entry, &labels_of(pod)) {
                    items.push(m);
                }
            }
        }
    }
    items.sort_by(|a, b| {
        let k = |v: &Value| {
            (
                v["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                v["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        };
        k(a).cmp(&k(b))
    });
    answer(&rr, "PodMetrics", items)
}

/// One object (404 as metrics-server words it: `podmetrics.metrics.k8s.io "ns/name" not
/// found`) or the list.
fn answer(rr: &ResourceRoute, kind: &str, mut items: Vec<Value>) -> Response {
    match &rr.name {
        Some(name) => match items.pop() {
            Some(one) => body::json(200, &one),
            None => {
                let shown = match &rr.namespace {
                    Some(ns) => format!("{ns}/{name}"),
                    None => name.clone(),
                };
                body::status(&Status::not_found(
                    &format!("{}.{GROUP}", kind.to_lowercase()),
                    GROUP,
                    &shown,
                ))
            }
        },
        None => body::json(200, &list_of(kind, items)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_pod_metrics_from_a_summary() {
        let s = json!({
            "node": {"nodeName": "n1", "cpu": {"time": "2026-01-01T00:00:00Z", "usageNanoCores": 250_000_000u64},
                     "memory": {"workingSetBytes": 2u64 << 30}},
            "pods": [
                {"podRef": {"name": "busy", "namespace": "default"},
                 "containers": [{"name": "main", "cpu": {"time": "2026-01-01T00:00:00Z", "usageNanoCores": 1_000_000u64},
                                 "memory": {"workingSetBytes": 1u64 << 20}}]},
                {"podRef": {"name": "new", "namespace": "default"},
                 "containers": [{"name": "main", "cpu": {"usageCoreNanoSeconds": 5}, "memory": {"workingSetBytes": 1}}]}
            ]
        });
        let n = node_metrics("n1", &json!({"a": "b"}), &s).unwrap();
        assert_eq!(n["usage"]["cpu"], "250000000n");
        assert_eq!(n["usage"]["memory"], "2097152Ki");
        assert_eq!(n["timestamp"], "2026-01-01T00:00:00Z");
        assert_eq!(n["kind"], "NodeMetrics");
        let p = pod_metrics(&s["pods"][0], &json!({})).unwrap();
        assert_eq!(p["containers"][0]["usage"]["cpu"], "1000000n");
        assert_eq!(p["metadata"]["namespace"], "default");
        assert!(pod_metrics(&s["pods"][1], &json!({})).is_none());
    }

    #[test]
    fn registered_for_discovery() {
        let r = Registry::builtin();
        register(&r);
        let pods = r.find(GROUP, VERSION, "pods").unwrap();
        assert!(pods.namespaced);
        assert_eq!(pods.verbs, ["get", "list"]);
        assert!(!r.find(GROUP, VERSION, "nodes").unwrap().namespaced);
    }
}
