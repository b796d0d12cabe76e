//! Deployments, ReplicaSets and the garbage collector against a real `bramble controller`,
//! driven with the real kubectl; a simulated kubelet marks pods Ready through the API.

mod common;
mod workloads_support;

use std::collections::BTreeSet;

use anyhow::Result;
use common::{ok, TestController};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use workloads_support::*;

async fn replica_sets(client: &Client, selector: &str) -> Result<Vec<ReplicaSet>> {
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    Ok(api
        .list(&ListParams::default().labels(selector))
        .await?
        .items)
}

/// Plays kubelet until the Deployment reports a finished rollout, checking on every round
/// that the ready pods never drop below `min_ready`.
async fn drive_rollout(client: &Client, name: &str, min_ready: usize) -> Result<Deployment> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let selector = format!("app={name}");
    wait_for("rollout to finish", 60, || async {
        let ready = live_pods(client, "default", &selector)
            .await?
            .iter()
            .filter(|p| is_ready(p))
            .count();
        assert!(
            ready >= min_ready,
            "availability dropped to {ready} ready pods during the rollout"
        );
        kubelet_pass(client, "default", &selector).await?;
        let d = api.get(name).await?;
        let st = d.status.clone().unwrap_or_default();
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let done = st.observed_generation >= d.metadata.generation
            && st.updated_replicas == Some(want)
            && st.replicas == Some(want)
            && st.available_replicas == Some(want);
        Ok(done.then_some(d))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_scale_rollout_history_undo_and_delete() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    kc(
        &c,
        &[
            "create",
            "deployment",
            "web",
            "--image=busybox",
            "--replicas=3",
        ],
    )?;
    let pods = wait_pod_count(&client, "default", "app=web", 3).await?;
    let rs_name = pods[0].owner_references()[0].name.clone();
    assert!(rs_name.starts_with("web-"), "{rs_name}");
    assert!(pods[0].labels().contains_key("pod-template-hash"));
    assert_eq!(pods[0].owner_references()[0].kind, "ReplicaSet");

    kc(&c, &["scale", "deployment/web", "--replicas=5"])?;
    wait_pod_count(&client, "default", "app=web", 5).await?;
    kc(&c, &["scale", "deployment/web", "--replicas=2"])?;
    wait_pod_count(&client, "default", "app=web", 2).await?;

    let d = drive_rollout(&client, "web", 0).await?;
    assert_eq!(
        d.annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("1")
    );
    let conds = d.status.unwrap().conditions.unwrap();
    let available = conds.iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(
        available.reason.as_deref(),
        Some("MinimumReplicasAvailable")
    );
    kc(
        &c,
        &["rollout", "status", "deployment/web", "--timeout=30s"],
    )?;

    // A new image: a second ReplicaSet; with 2 replicas maxUnavailable 25% rounds down to
    // 0, so two pods stay ready throughout.
    kc(
        &c,
        &["set", "image", "deployment/web", "busybox=busybox:1.36"],
    )?;
    let d = drive_rollout(&client, "web", 2).await?;
    let progressing = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        progressing.reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );
    let sets = replica_sets(&client, "app=web").await?;
    assert_eq!(sets.len(), 2);
    let old = sets.iter().find(|r| r.name_any() == rs_name).unwrap();
    assert_eq!(old.spec.as_ref().unwrap().replicas, Some(0));
    let history = kc(&c, &["rollout", "history", "deployment/web"])?;
    assert!(
        history.contains("1 ") && history.contains("2 "),
        "{history}"
    );

    // Undo goes back to busybox as revision 3, reusing the first ReplicaSet.
    kc(&c, &["rollout", "undo", "deployment/web"])?;
    let d = drive_rollout(&client, "web", 2).await?;
    let image = d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("busybox"));
    assert_eq!(
        d.metadata
            .annotations
            .unwrap()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("3")
    );
    let rsapi: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let first = rsapi.get(&rs_name).await?;
    assert_eq!(
        first
            .annotations()
            .get("deployment.kubernetes.io/revision")
            .map(String::as_str),
        Some("3")
    );
    assert_eq!(first.spec.unwrap().replicas, Some(2));

    // Paused: template changes do not roll out until resumed.
    kc(&c, &["rollout", "pause", "deployment/web"])?;
    kc(
        &c,
        &["set", "image", "deployment/web", "busybox=busybox:1.35"],
    )?;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        replica_sets(&client, "app=web").await?.len(),
        2,
        "no new ReplicaSet while paused"
    );
    kc(&c, &["rollout", "resume", "deployment/web"])?;
    drive_rollout(&client, "web", 2).await?;
    assert_eq!(replica_sets(&client, "app=web").await?.len(), 3);
    kc(&c, &["rollout", "restart", "deployment/web"])?;
    drive_rollout(&client, "web", 2).await?;
    assert_eq!(replica_sets(&client, "app=web").await?.len(), 4);

    // Background deletion: the collector removes the ReplicaSets, then their pods.
    kc(&c, &["delete", "deployment", "web"])?;
    wait_for("ReplicaSets and pods to be collected", 30, || async {
        let sets = replica_sets(&client, "app=web").await?;
        let pods = live_pods(&client, "default", "app=web").await?;
        Ok((sets.is_empty() && pods.is_empty()).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascade_orphan_keeps_dependents_and_foreground_removes_them_first() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    kc(
        &c,
        &[
            "create",
            "deployment",
            "keep",
            "--image=busybox",
            "--replicas=2",
        ],
    )?;
    wait_pod_count(&client, "default", "app=keep", 2).await?;
    kc(
        &c,
        &[
            "delete",
            "deployment",
            "keep",
            "--cascade=orphan",
            "--timeout=30s",
        ],
    )?;
    let dapi: Api<Deployment> = Api::namespaced(client.clone(), "default");
    assert!(dapi.get_opt("keep").await?.is_none());
    let sets = replica_sets(&client, "app=keep").await?;
    assert_eq!(sets.len(), 1, "the ReplicaSet is orphaned, not deleted");
    assert!(
        sets[0].owner_references().is_empty(),
        "{:?}",
        sets[0].owner_references()
    );
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(live_pods(&client, "default", "app=keep").await?.len(), 2);

    // Adoption: a new Deployment with the same selector and template adopts the orphan.
    kc(
        &c,
        &[
            "create",
            "deployment",
            "keep",
            "--image=busybox",
            "--replicas=2",
        ],
    )?;
    let adopted = wait_for("the orphan to be adopted", 30, || async {
        let sets = replica_sets(&client, "app=keep").await?;
        Ok((sets.len() == 1 && !sets[0].owner_references().is_empty()).then(|| sets[0].clone()))
    })
    .await?;
    assert_eq!(adopted.owner_references()[0].kind, "Deployment");

    // Foreground: kubectl waits until the dependents are gone, then the owner.
    kc(
        &c,
        &[
            "delete",
            "deployment",
            "keep",
            "--cascade=foreground",
            "--timeout=60s",
        ],
    )?;
    assert!(dapi.get_opt("keep").await?.is_none());
    wait_for("dependents gone", 10, || async {
        let sets = replica_sets(&client, "app=keep").await?;
        let pods = live_pods(&client, "default", "app=keep").await?;
        Ok((sets.is_empty() && pods.is_empty()).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_stops_old_pods_first_and_history_is_trimmed() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    ok(c.kubectl_with(
        common::KUBECTL,
        &["apply", "-f", "-"],
        Some("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: rec}\nspec:\n  replicas: 2\n  revisionHistoryLimit: 1\n  strategy: {type: Recreate}\n  selector: {matchLabels: {app: rec}}\n  template:\n    metadata: {labels: {app: rec}}\n    spec:\n      containers: [{name: c, image: busybox}]\n"),
    )?)?;
    drive_rollout(&client, "rec", 0).await?;
    for (i, tag) in ["1.35", "1.36", "1.37"].iter().enumerate() {
        kc(
            &c,
            &[
                "set",
                "image",
                "deployment/rec",
                &format!("c=busybox:{tag}"),
            ],
        )?;
        // Recreate: no pod of the new template while an old one is alive.
        wait_for("recreate rollout", 60, || async {
            let pods = live_pods(&client, "default", "app=rec").await?;
            let images: BTreeSet<String> = pods
                .iter()
                .map(|p| {
                    p.spec.as_ref().unwrap().containers[0]
                        .image
                        .clone()
                        .unwrap_or_default()
                })
                .collect();
            assert!(images.len() <= 1, "old and new pods together: {images:?}");
            kubelet_pass(&client, "default", "app=rec").await?;
            let d: Deployment = Api::namespaced(client.clone(), "default")
                .get("rec")
                .await?;
            let st = d.status.clone().unwrap_or_default();
            let done = st.observed_generation >= d.metadata.generation
                && st.updated_replicas == Some(2)
                && st.available_replicas == Some(2)
                && st.replicas == Some(2);
            Ok(done.then_some(()))
        })
        .await?;
        let rev = (i + 2).to_string();
        let d: Deployment = Api::namespaced(client.clone(), "default")
            .get("rec")
            .await?;
        assert_eq!(
            d.annotations().get("deployment.kubernetes.io/revision"),
            Some(&rev)
        );
    }
    // revisionHistoryLimit 1: the current ReplicaSet plus one old one.
    wait_for("history trimmed", 20, || async {
        Ok((replica_sets(&client, "app=rec").await?.len() == 2).then_some(()))
    })
    .await?;
    Ok(())
}
