//! Simulated nodes for scheduler tests: Node objects with a Ready status and capacity, and
//! Leases in kube-node-lease renewed by a test task (no kubelet, no containers).
#![allow(dead_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::common::TestController;

/// Starts a controller with short scheduler back-offs and a 2 s node grace period.
pub fn start_controller() -> Result<TestController> {
    for (k, v) in [
        ("BRAMBLE_NODE_MONITOR_PERIOD_MS", "200"),
        ("BRAMBLE_NODE_MONITOR_GRACE_PERIOD_MS", "2000"),
        ("BRAMBLE_SCHEDULER_INITIAL_BACKOFF_MS", "100"),
        ("BRAMBLE_SCHEDULER_MAX_BACKOFF_MS", "500"),
        ("BRAMBLE_SCHEDULER_UNSCHEDULABLE_RETRY_MS", "10000"),
        ("BRAMBLE_DEFAULT_TOLERATION_SECONDS", "3"),
    ] {
        std::env::set_var(k, v);
    }
    TestController::start()
}

/// Creates a Ready node with this capacity, labels (`kubernetes.io/hostname` added) and
/// spec (taints, unschedulable), plus its Lease.
pub async fn add_node(
    client: &Client,
    name: &str,
    cpu: &str,
    memory: &str,
    labels: Value,
    spec: Value,
) -> Result<()> {
    let mut all_labels = json!({"kubernetes.io/hostname": name});
    for (k, v) in labels.as_object().into_iter().flatten() {
        all_labels[k] = v.clone();
    }
    let now = chrono_now();
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": all_labels},
        "spec": spec,
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}],
        },
    }))?;
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await?;
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": micro_now()},
    }))?;
    Api::<Lease>::namespaced(client.clone(), "kube-node-lease")
        .create(&PostParams::default(), &lease)
        .await?;
    Ok(())
}

fn chrono_now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn micro_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Renews the leases of `nodes` every 300 ms until the task is aborted, as kubelets do.
pub fn renew_leases(client: Client, nodes: Vec<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, "kube-node-lease");
        loop {
            for n in &nodes {
                let patch = json!({"spec": {"renewTime": micro_now()}});
                let _ = api
                    .patch(n, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// Posts Ready=True as a kubelet would after coming back.
pub async fn post_ready(client: &Client, name: &str) -> Result<()> {
    let now = chrono_now();
    let patch = json!({"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": now, "lastTransitionTime": now},
        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "lastHeartbeatTime": now, "lastTransitionTime": now},
        {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
        {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "lastHeartbeatTime": now, "lastTransitionTime": now},
    ]}});
    Api::<Node>::all(client.clone())
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    Ok(())
}

/// Creates a pod in `default` from a JSON manifest (kind/apiVersion added).
pub async fn create_pod(client: &Client, mut manifest: Value) -> Result<Pod> {
    manifest["apiVersion"] = json!("v1");
    manifest["kind"] = json!("Pod");
    let pod: Pod = serde_json::from_value(manifest)?;
    Ok(Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await?)
}

/// A pod with one container requesting `cpu` and merged `extra` fields.
pub fn pod_manifest(name: &str, cpu: &str, extra: Value) -> Value {
    let mut v = json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": cpu}}}]},
    });
    merge(&mut v, extra);
    v
}

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

/// The node a pod is bound to.
pub async fn node_of(client: &Client, name: &str) -> Result<Option<String>> {
    let pod = Api::<Pod>::namespaced(client.clone(), "default")
        .get(name)
        .await?;
    Ok(pod.spec.and_then(|s| s.node_name))
}

/// Polls `check` every 100 ms until it returns `Some`, failing after `secs` seconds.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {secs} s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the pod is bound and returns its node.
pub async fn wait_bound(client: &Client, name: &str) -> Result<String> {
    wait_for(20, &format!("pod {name} to be bound"), || async {
        node_of(client, name).await
    })
    .await
}

/// Events in `default` about the pod `name`, oldest first.
pub async fn events_for(client: &Client, name: &str) -> Result<Vec<Event>> {
    let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let mut evs = Api::<Event>::namespaced(client.clone(), "default")
        .list(&lp)
        .await?
        .items;
    evs.retain(|e| e.involved_object.name.as_deref() == Some(name));
    Ok(evs)
}

/// Force-deletes terminating pods (grace period 0), standing in for the kubelet that would
/// stop their containers.
pub async fn reap_terminating(client: &Client) -> Result<usize> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut n = 0;
    for p in api.list(&ListParams::default()).await?.items {
        if p.metadata.deletion_timestamp.is_some() {
            let name = p.metadata.name.unwrap_or_default();
            let _ = api
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await;
            n += 1;
        }
    }
    Ok(n)
}
