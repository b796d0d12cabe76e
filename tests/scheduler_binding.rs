//! The scheduler inside a real `bramble controller`, against simulated nodes: binding,
//! FailedScheduling as kubectl shows it, retry on cluster change, taints, affinity, spread
//! and cordon.

mod common;
#[path = "common/scheduler.rs"]
mod sched;

use std::collections::HashMap;

use anyhow::Result;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use serde_json::json;

use common::ok;
use sched::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_to_matching_nodes_and_reports_unschedulable_pods() -> Result<()> {
    let c = start_controller()?;
    let client = c.client().await?;
    add_node(
        &client,
        "small",
        "1",
        "2Gi",
        json!({"disk": "hdd"}),
        json!({}),
    )
    .await?;
    add_node(
        &client,
        "big",
        "4",
        "8Gi",
        json!({"disk": "ssd"}),
        json!({}),
    )
    .await?;
    let _renew = renew_leases(client.clone(), vec!["small".into(), "big".into()]);

    create_pod(
        &client,
        pod_manifest(
            "ssd",
            "100m",
            json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
        ),
    )
    .await?;
    assert_eq!(wait_bound(&client, "ssd").await?, "big");
    let scheduled = wait_for(10, "Scheduled event", || async {
        Ok(events_for(&client, "ssd")
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Scheduled")))
    })
    .await?;
    assert_eq!(
        scheduled.message.as_deref(),
        Some("Successfully assigned default/ssd to big")
    );
    assert_eq!(
        scheduled.source.and_then(|s| s.component).as_deref(),
        Some("default-scheduler")
    );
    let pod = Api::<Pod>::namespaced(client.clone(), "default")
        .get("ssd")
        .await?;
    let cond = pod.status.unwrap().conditions.unwrap();
    assert!(cond
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.status == "True"));

    // 3.5 cpu: fits only on big, which already gave 100m to "ssd"; 1 cpu fits small only after.
    create_pod(&client, pod_manifest("huge", "3500m", json!({}))).await?;
    assert_eq!(wait_bound(&client, "huge").await?, "big");
    create_pod(&client, pod_manifest("toobig", "2", json!({}))).await?;
    let expected = "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.";
    let failed = wait_for(10, "FailedScheduling event", || async {
        Ok(events_for(&client, "toobig")
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling")))
    })
    .await?;
    assert_eq!(failed.message.as_deref(), Some(expected));
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    let status = wait_for(10, "PodScheduled=False", || async {
        let pod = Api::<Pod>::namespaced(client.clone(), "default")
            .get("toobig")
            .await?;
        Ok(pod.status.and_then(|s| s.conditions).and_then(|c| {
            c.into_iter()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        }))
    })
    .await?;
    assert_eq!(status.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(status.message.as_deref(), Some(expected));

    // What a user sees.
    let describe = ok(c.kubectl(&["describe", "pod", "toobig"])?)?;
    assert!(describe.contains("Warning  FailedScheduling"), "{describe}");
    assert!(
        describe.contains("default-scheduler  0/2 nodes are available: 2 Insufficient cpu."),
        "{describe}"
    );
    let events = ok(c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=toobig",
    ])?)?;
    assert!(
        events.contains("FailedScheduling") && events.contains("pod/toobig"),
        "{events}"
    );
    assert!(events.contains(expected), "{events}");
    let wide = ok(c.kubectl(&["get", "pod", "toobig", "-o", "wide"])?)?;
    assert!(
        wide.contains("Pending") && wide.contains("<none>"),
        "{wide}"
    );

    // A new node that fits: the pending pod is retried and bound without being touched.
    add_node(&client, "extra", "2", "4Gi", json!({}), json!({})).await?;
    let _renew2 = renew_leases(client.clone(), vec!["extra".into()]);
    assert_eq!(wait_bound(&client, "toobig").await?, "extra");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taints_affinity_and_spread_through_the_api() -> Result<()> {
    let c = start_controller()?;
    let client = c.client().await?;
    let mut names = Vec::new();
    for (n, zone) in [("z1-a", "z1"), ("z1-b", "z1"), ("z2-a", "z2")] {
        add_node(
            &client,
            n,
            "8",
            "16Gi",
            json!({"topology.kubernetes.io/zone": zone}),
            json!({}),
        )
        .await?;
        names.push(n.to_string());
    }
    add_node(
        &client,
        "gpu",
        "8",
        "16Gi",
        json!({"topology.kubernetes.io/zone": "z3"}),
        json!({"taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]}),
    )
    .await?;
    names.push("gpu".into());
    let _renew = renew_leases(client.clone(), names);

    // Only a tolerating pod lands on the tainted node.
    create_pod(
        &client,
        pod_manifest(
            "trainer",
            "1",
            json!({"spec": {
                "tolerations": [{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["z3"]}]}]}}}}}),
        ),
    )
    .await?;
    assert_eq!(wait_bound(&client, "trainer").await?, "gpu");
    create_pod(
        &client,
        pod_manifest(
            "no-toleration",
            "1",
            json!({"spec": {"nodeSelector": {"topology.kubernetes.io/zone": "z3"}}}),
        ),
    )
    .await?;
    let failed = wait_for(10, "FailedScheduling", || async {
        Ok(events_for(&client, "no-toleration")
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling")))
    })
    .await?;
    assert_eq!(
        failed.message.as_deref(),
        Some("0/4 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/4 nodes are available: 4 Preemption is not helpful for scheduling.")
    );

    // Six replicas spread over zones z1/z2 with maxSkew 1 (the tainted z3 node is excluded by
    // the selector), then anti-affinity keeps a cache pod away from them per node.
    let spread = |i: usize| {
        pod_manifest(
            &format!("web-{i}"),
            "100m",
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {
                "nodeSelector": {"pool": "general"},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]}}),
        )
    };
    for n in ["z1-a", "z1-b", "z2-a"] {
        let patch = json!({"metadata": {"labels": {"pool": "general"}}});
        Api::<Node>::all(client.clone())
            .patch(n, &Default::default(), &kube::api::Patch::Merge(&patch))
            .await?;
    }
    let mut per_zone: HashMap<String, usize> = HashMap::new();
    for i in 0..6 {
        create_pod(&client, spread(i)).await?;
        let node = wait_bound(&client, &format!("web-{i}")).await?;
        let zone = if node.starts_with("z1") { "z1" } else { "z2" };
        *per_zone.entry(zone.into()).or_default() += 1;
    }
    assert_eq!(per_zone["z1"], 3, "{per_zone:?}");
    assert_eq!(per_zone["z2"], 3, "{per_zone:?}");

    create_pod(
        &client,
        pod_manifest(
            "near-trainer",
            "100m",
            json!({"spec": {
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
                "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                    {"labelSelector": {"matchExpressions": [{"key": "run", "operator": "DoesNotExist"}],
                        "matchLabels": {}}, "topologyKey": "kubernetes.io/hostname",
                     "namespaces": ["default"]}]}}}}),
        ),
    )
    .await?;
    // Every bound pod matches that selector, so any node with pods qualifies; the pod lands.
    wait_bound(&client, "near-trainer").await?;
    create_pod(
        &client,
        pod_manifest(
            "away-from-web",
            "100m",
            json!({"spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "topology.kubernetes.io/zone"}]}}}}),
        ),
    )
    .await?;
    let failed = wait_for(10, "FailedScheduling", || async {
        Ok(events_for(&client, "away-from-web")
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling")))
    })
    .await?;
    assert_eq!(
        failed.message.as_deref(),
        Some("0/4 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 3 node(s) didn't match pod anti-affinity rules. preemption: 0/4 nodes are available: 1 Preemption is not helpful for scheduling, 3 No preemption victims found for incoming pod.")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_cordon_is_respected_and_mirrored_as_a_taint() -> Result<()> {
    let c = start_controller()?;
    let client = c.client().await?;
    add_node(&client, "n1", "4", "8Gi", json!({}), json!({})).await?;
    add_node(&client, "n2", "4", "8Gi", json!({}), json!({})).await?;
    let _renew = renew_leases(client.clone(), vec!["n1".into(), "n2".into()]);
    ok(c.kubectl(&["cordon", "n1"])?)?;
    let taint = wait_for(10, "unschedulable taint on n1", || async {
        let node = Api::<Node>::all(client.clone()).get("n1").await?;
        Ok(node.spec.and_then(|s| s.taints).and_then(|t| {
            t.into_iter()
                .find(|t| t.key == "node.kubernetes.io/unschedulable")
        }))
    })
    .await?;
    assert_eq!(taint.effect, "NoSchedule");
    let nodes = ok(c.kubectl(&["get", "nodes"])?)?;
    assert!(nodes.contains("Ready,SchedulingDisabled"), "{nodes}");
    for i in 0..4 {
        create_pod(&client, pod_manifest(&format!("p{i}"), "100m", json!({}))).await?;
        assert_eq!(wait_bound(&client, &format!("p{i}")).await?, "n2");
    }
    ok(c.kubectl(&["cordon", "n2"])?)?;
    create_pod(&client, pod_manifest("stuck", "100m", json!({}))).await?;
    let failed = wait_for(10, "FailedScheduling", || async {
        Ok(events_for(&client, "stuck")
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling")))
    })
    .await?;
    assert_eq!(
        failed.message.as_deref(),
        Some("0/2 nodes are available: 2 node(s) were unschedulable. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
    );
    ok(c.kubectl(&["uncordon", "n1"])?)?;
    assert_eq!(wait_bound(&client, "stuck").await?, "n1");
    wait_for(10, "taint removed from n1", || async {
        let node = Api::<Node>::all(client.clone()).get("n1").await?;
        let has = node
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unschedulable");
        Ok((!has).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_is_rebuilt_from_the_api_after_a_restart() -> Result<()> {
    let mut c = start_controller()?;
    let client = c.client().await?;
    add_node(&client, "n1", "2", "4Gi", json!({}), json!({})).await?;
    create_pod(&client, pod_manifest("first", "1500m", json!({}))).await?;
    assert_eq!(wait_bound(&client, "first").await?, "n1");

    c.restart()?;
    let client = c.client().await?;
    let _renew = renew_leases(client.clone(), vec!["n1".into()]);
    // The restarted scheduler counts the pod bound before the restart: 1 cpu does not fit.
    create_pod(&client, pod_manifest("second", "1", json!({}))).await?;
    let failed = wait_for(10, "FailedScheduling after restart", || async {
        Ok(events_for(&client, "second")
            .await?
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedScheduling")))
    })
    .await?;
    assert!(
        failed
            .message
            .as_deref()
            .unwrap()
            .starts_with("0/1 nodes are available: 1 Insufficient cpu."),
        "{failed:?}"
    );
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete("first", &kube::api::DeleteParams::default().grace_period(0))
        .await?;
    assert_eq!(wait_bound(&client, "second").await?, "n1");
    Ok(())
}
