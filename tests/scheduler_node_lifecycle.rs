//! The node lifecycle controller inside a real `bramble controller`: a node whose Lease stops
//! being renewed goes Unknown/NotReady with the unreachable taints, its pods are evicted
//! after their tolerationSeconds, and a node that comes back loses the taints.

mod common;
#[path = "common/scheduler.rs"]
mod sched;

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use serde_json::json;

use common::ok;
use sched::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_expiry_makes_the_node_not_ready_and_evicts_its_pods() -> Result<()> {
    let c = start_controller()?;
    let client = c.client().await?;
    add_node(&client, "alive", "4", "8Gi", json!({}), json!({})).await?;
    add_node(&client, "dying", "4", "8Gi", json!({}), json!({})).await?;
    let alive = renew_leases(client.clone(), vec!["alive".into()]);
    let dying = renew_leases(client.clone(), vec!["dying".into()]);
    let on_dying = |name: &str, tolerations: serde_json::Value| {
        pod_manifest(
            name,
            "100m",
            json!({"spec": {"nodeName": "dying", "tolerations": tolerations}}),
        )
    };
    // Pods placed on the node directly (as a DaemonSet or static pod would be).
    create_pod(
        &client,
        on_dying(
            "quick",
            json!([{"key": "node.kubernetes.io/unreachable",
        "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}]),
        ),
    )
    .await?;
    create_pod(&client, on_dying("default-300", json!([]))).await?;
    create_pod(
        &client,
        on_dying("forever", json!([{"operator": "Exists"}])),
    )
    .await?;

    // The "kubelet" reports the pod running and ready.
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let running = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
    pods_api
        .patch_status(
            "forever",
            &Default::default(),
            &kube::api::Patch::Strategic(&running),
        )
        .await?;

    // Stays Ready while the lease is renewed, well past the 2 s grace period.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let nodes: Api<Node> = Api::all(client.clone());
    let ready = |n: &Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| {
                c.iter()
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.status.clone())
            })
    };
    assert_eq!(ready(&nodes.get("dying").await?).as_deref(), Some("True"));

    dying.abort();
    let node = wait_for(15, "dying to go Unknown", || async {
        let n = nodes.get("dying").await?;
        Ok((ready(&n).as_deref() == Some("Unknown")).then_some(n))
    })
    .await?;
    let cond = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(cond.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        cond.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    let taints = wait_for(10, "unreachable taints", || async {
        let t = nodes
            .get("dying")
            .await?
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default();
        Ok((t.len() == 2).then_some(t))
    })
    .await?;
    let mut keys: Vec<(String, String)> = taints
        .iter()
        .map(|t| (t.key.clone(), t.effect.clone()))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            (
                "node.kubernetes.io/unreachable".to_string(),
                "NoExecute".to_string()
            ),
            (
                "node.kubernetes.io/unreachable".to_string(),
                "NoSchedule".to_string()
            ),
        ]
    );
    let table = ok(c.kubectl(&["get", "nodes"])?)?;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("dying") && l.contains("NotReady")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("alive") && l.contains(" Ready")),
        "{table}"
    );
    assert_eq!(ready(&nodes.get("alive").await?).as_deref(), Some("True"));

    // tolerationSeconds 1 goes first; the default (3 s in this test's config, 300 s by
    // default) follows; a pod tolerating everything forever stays.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let gone_or_terminating = |name: &'static str| {
        let pods = pods.clone();
        async move {
            Ok(match pods.get_opt(name).await? {
                None => Some(()),
                Some(p) if p.metadata.deletion_timestamp.is_some() => Some(()),
                Some(_) => None,
            })
        }
    };
    wait_for(10, "quick evicted", || gone_or_terminating("quick")).await?;
    let default_still_there = pods
        .get("default-300")
        .await?
        .metadata
        .deletion_timestamp
        .is_none();
    wait_for(15, "default-300 evicted", || {
        gone_or_terminating("default-300")
    })
    .await?;
    assert!(
        default_still_there,
        "the default toleration delays eviction"
    );
    let ev = wait_for(10, "TaintManagerEviction event", || async {
        Ok(events_for(&client, "quick")
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("TaintManagerEviction")))
    })
    .await?;
    assert_eq!(
        ev.message.as_deref(),
        Some("Marking for deletion Pod default/quick")
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(pods
        .get("forever")
        .await?
        .metadata
        .deletion_timestamp
        .is_none());

    // Pods on the unreachable node are marked not ready.
    wait_for(10, "forever marked not ready", || async {
        let p = pods.get("forever").await?;
        let ready = p
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready");
        Ok(ready.filter(|c| c.status == "False").map(|_| ()))
    })
    .await?;

    // New pods avoid the unreachable node.
    create_pod(&client, pod_manifest("fresh", "100m", json!({}))).await?;
    assert_eq!(wait_bound(&client, "fresh").await?, "alive");

    // The kubelet comes back: lease renewed, Ready posted; the taints go away.
    let _back = renew_leases(client.clone(), vec!["dying".into()]);
    post_ready(&client, "dying").await?;
    wait_for(10, "taints removed", || async {
        let t = nodes
            .get("dying")
            .await?
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default();
        Ok(t.is_empty().then_some(()))
    })
    .await?;
    alive.abort();
    Ok(())
}
