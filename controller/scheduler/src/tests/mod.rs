//! Unit tests over plain k8s-openapi objects, no I/O.

mod filters;
mod lifecycle;
mod preemption;
mod scores;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;

use bramble_informer::pod::Pod;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::algorithm::{schedule_one, FitError, Placement};
use crate::node_info::PodInfo;
use crate::snapshot::Snapshot;

/// Merges `patch` into `base` (objects recursively, everything else replaced).
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// A Ready node with `cpu` and `memory` allocatable, hostname label, plus `extra` merged in.
fn node(name: &str, cpu: &str, memory: &str, extra: Value) -> Arc<Node> {
    let mut v = json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    });
    merge(&mut v, extra);
    Arc::new(serde_json::from_value(v).expect("node"))
}

/// A pod in `default` with one container requesting `cpu`/`memory` (empty = none), plus
/// `extra` merged in.
fn pod(name: &str, cpu: &str, memory: &str, extra: Value) -> Pod {
    let mut requests = serde_json::Map::new();
    if !cpu.is_empty() {
        requests.insert("cpu".into(), json!(cpu));
    }
    if !memory.is_empty() {
        requests.insert("memory".into(), json!(memory));
    }
    let mut v = json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": requests}}]},
    });
    merge(&mut v, extra);
    serde_json::from_value(v).expect("pod")
}

fn info(p: Pod) -> PodInfo {
    let prio = p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    PodInfo::new(Arc::new(p), prio)
}

/// A snapshot of `nodes` with `bound` pods (node name, pod).
fn snapshot(nodes: Vec<Arc<Node>>, bound: Vec<(&str, Pod)>) -> Snapshot {
    let mut s = Snapshot::new(nodes);
    for (n, p) in bound {
        s.add_pod(n, info(p));
    }
    s
}

fn schedule(p: Pod, snap: &Snapshot) -> Result<Placement, FitError> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    schedule_one(&info(p), snap, 0, &mut rng)
}
