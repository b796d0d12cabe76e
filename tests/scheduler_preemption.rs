//! Priority and preemption inside a real `bramble controller`: a high-priority pod evicts
//! the lowest-priority pods it needs, is nominated to the node, and binds once they are gone.

mod common;
#[path = "common/scheduler.rs"]
mod sched;

use anyhow::Result;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use serde_json::json;

use common::ok;
use sched::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_priority_pod_preempts_the_lowest_priority_victims() -> Result<()> {
    let c = start_controller()?;
    let client = c.client().await?;
    add_node(&client, "only", "2", "4Gi", json!({}), json!({})).await?;
    let _renew = renew_leases(client.clone(), vec!["only".into()]);
    ok(c.kubectl(&["create", "priorityclass", "low", "--value=10"])?)?;
    ok(c.kubectl(&["create", "priorityclass", "mid", "--value=50"])?)?;
    ok(c.kubectl(&["create", "priorityclass", "high", "--value=1000"])?)?;
    ok(c.kubectl(&[
        "create",
        "priorityclass",
        "polite",
        "--value=2000",
        "--preemption-policy=Never",
    ])?)?;

    create_pod(
        &client,
        pod_manifest("low", "1", json!({"spec": {"priorityClassName": "low"}})),
    )
    .await?;
    create_pod(
        &client,
        pod_manifest("mid", "1", json!({"spec": {"priorityClassName": "mid"}})),
    )
    .await?;
    assert_eq!(wait_bound(&client, "low").await?, "only");
    assert_eq!(wait_bound(&client, "mid").await?, "only");

    // preemptionPolicy Never: waits, evicts nobody.
    create_pod(
        &client,
        pod_manifest(
            "polite",
            "1",
            json!({"spec": {"priorityClassName": "polite"}}),
        ),
    )
    .await?;
    let failed = wait_for(10, "FailedScheduling for polite", || async {
        Ok(events_for(&client, "polite")
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling")))
    })
    .await?;
    assert_eq!(
        failed.message.as_deref(),
        Some("0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.")
    );
    ok(c.kubectl(&["delete", "pod", "polite", "--wait=false"])?)?;

    create_pod(
        &client,
        pod_manifest(
            "urgent",
            "1",
            json!({"spec": {"priorityClassName": "high"}}),
        ),
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let victim = wait_for(10, "low to be terminating", || async {
        let p = pods.get_opt("low").await?;
        Ok(match p {
            None => Some(None),
            Some(p) if p.metadata.deletion_timestamp.is_some() => Some(Some(p)),
            Some(_) => None,
        })
    })
    .await?;
    if let Some(v) = victim {
        let conds = v.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(
            conds.iter().any(|c| c.type_ == "DisruptionTarget"
                && c.reason.as_deref() == Some("PreemptionByScheduler")),
            "{conds:?}"
        );
    }
    let mid = pods.get("mid").await?;
    assert!(
        mid.metadata.deletion_timestamp.is_none(),
        "only the lowest-priority pod is a victim"
    );
    let nominated = wait_for(10, "nominatedNodeName", || async {
        let p = pods.get("urgent").await?;
        Ok(p.status
            .and_then(|s| s.nominated_node_name)
            .filter(|n| !n.is_empty()))
    })
    .await?;
    assert_eq!(nominated, "only");
    let wide = ok(c.kubectl(&["get", "pod", "urgent", "-o", "wide"])?)?;
    assert!(wide.contains("only"), "{wide}");
    let preempted = wait_for(10, "Preempted event", || async {
        Ok(events_for(&client, "low")
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Preempted")))
    })
    .await?;
    let uid = pods.get("urgent").await?.metadata.uid.unwrap();
    assert_eq!(
        preempted.message.unwrap(),
        format!("Preempted by pod {uid} on node only")
    );

    // The kubelet would stop the victim; then the preemptor binds where it was nominated.
    reap_terminating(&client).await?;
    assert_eq!(wait_bound(&client, "urgent").await?, "only");
    assert!(pods.get_opt("low").await?.is_none());
    Ok(())
}
