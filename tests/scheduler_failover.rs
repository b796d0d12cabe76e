//! A node that stops renewing its Lease: its Deployment pods are evicted after the default
//! toleration and their replacements are scheduled on the node that is still alive (scheduler,
//! node lifecycle and workload controllers together in one `bramble controller`).

mod common;
#[path = "common/scheduler.rs"]
mod sched;

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::Api;
use serde_json::json;

use common::ok;
use sched::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_pods_move_off_a_node_whose_lease_expired() -> Result<()> {
    let c = start_controller()?;
    let client = c.client().await?;
    add_node(&client, "alive", "4", "8Gi", json!({}), json!({})).await?;
    add_node(&client, "dying", "4", "8Gi", json!({}), json!({})).await?;
    let _alive = renew_leases(client.clone(), vec!["alive".into()]);
    let dying = renew_leases(client.clone(), vec!["dying".into()]);
    ok(c.kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=registry.k8s.io/pause:3.10",
        "--replicas=4",
    ])?)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let placement = |want_all_on: Option<&'static str>| {
        let pods = pods.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels("app=web"))
                .await?
                .items;
            let live: Vec<String> = list
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
                .collect();
            Ok((live.len() == 4
                && match want_all_on {
                    Some(n) => live.iter().all(|x| x == n),
                    None => true,
                })
            .then_some(live))
        }
    };
    let first = wait_for(30, "4 web pods bound", || placement(None)).await?;
    // Default spreading puts replicas on both nodes.
    assert!(first.iter().any(|n| n == "dying"), "{first:?}");
    assert!(first.iter().any(|n| n == "alive"), "{first:?}");

    dying.abort();
    let moved = wait_for(40, "all 4 live web pods on alive", || {
        placement(Some("alive"))
    })
    .await?;
    assert_eq!(moved.len(), 4);
    let table = ok(c.kubectl(&["get", "nodes"])?)?;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("dying") && l.contains("NotReady")),
        "{table}"
    );
    Ok(())
}
