//! Controller state comes from the API: a restarted controller neither double-creates nor
//! forgets; ReplicaSets adopt and release pods by selector; a stuck rollout reports
//! ProgressDeadlineExceeded to `kubectl rollout status`.

mod common;
mod workloads_support;

use anyhow::Result;
use common::{fails, ok, TestController, KUBECTL};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt};
use workloads_support::*;

fn apply(c: &TestController, yaml: &str) -> Result<String> {
    ok(c.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(yaml))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_rebuilds_state_without_double_creates() -> Result<()> {
    let mut c = TestController::start()?;
    let client = c.client().await?;
    ok(c.kubectl(&[
        "create",
        "deployment",
        "web",
        "--image=busybox",
        "--replicas=3",
    ])?)?;
    let before = wait_pod_count(&client, "default", "app=web", 3).await?;
    c.restart()?;
    let client = c.client().await?;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let after = live_pods(&client, "default", "app=web").await?;
    let mut a: Vec<_> = before.iter().map(|p| p.name_any()).collect();
    let mut b: Vec<_> = after.iter().map(|p| p.name_any()).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same three pods after a restart");
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    assert_eq!(sets.list(&Default::default()).await?.items.len(), 1);
    ok(c.kubectl(&["scale", "deployment/web", "--replicas=4"])?)?;
    wait_pod_count(&client, "default", "app=web", 4).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_adopts_and_releases_pods_by_selector() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    // serviceAccountName is spelled out: with the account left to admission, any later
    // metadata patch of the pod fails validation (spec.serviceAccount appears on update),
    // an API server bug outside this crate.
    apply(
        &c,
        "apiVersion: v1\nkind: Pod\nmetadata: {name: stray, labels: {app: cache}}\nspec:\n  serviceAccountName: default\n  containers: [{name: c, image: busybox}]\n",
    )?;
    apply(
        &c,
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: cache}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: cache}}\n  template:\n    metadata: {labels: {app: cache}}\n    spec:\n      containers: [{name: c, image: busybox}]\n",
    )?;
    let pods = wait_pod_count(&client, "default", "app=cache", 2).await?;
    assert!(
        pods.iter().any(|p| p.name_any() == "stray"),
        "the orphan is kept, one pod added"
    );
    let owner = wait_for("adoption", 30, || async {
        let p: Pod = Api::namespaced(client.clone(), "default")
            .get("stray")
            .await?;
        Ok(p.owner_references().first().cloned())
    })
    .await?;
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("ReplicaSet", "cache")
    );
    assert_eq!(owner.controller, Some(true));
    // Relabelled: released, and replaced to keep two matching pods.
    ok(c.kubectl(&["label", "pod", "stray", "app=other", "--overwrite"])?)?;
    wait_for("release", 30, || async {
        let p: Pod = Api::namespaced(client.clone(), "default")
            .get("stray")
            .await?;
        Ok(p.owner_references().is_empty().then_some(()))
    })
    .await?;
    wait_pod_count(&client, "default", "app=cache", 2).await?;
    let rs = wait_for("status", 30, || async {
        kubelet_pass(&client, "default", "app=cache").await?;
        let rs: ReplicaSet = Api::namespaced(client.clone(), "default")
            .get("cache")
            .await?;
        let st = rs.status.clone().unwrap_or_default();
        Ok((st.available_replicas == Some(2)).then_some(rs))
    })
    .await?;
    let st = rs.status.unwrap();
    assert_eq!(st.replicas, 2);
    assert_eq!(st.ready_replicas, Some(2));
    assert_eq!(st.fully_labeled_replicas, Some(2));
    assert_eq!(st.observed_generation, rs.metadata.generation);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_rollout_exceeds_its_progress_deadline() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    apply(
        &c,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: stuck}\nspec:\n  replicas: 1\n  progressDeadlineSeconds: 2\n  selector: {matchLabels: {app: stuck}}\n  template:\n    metadata: {labels: {app: stuck}}\n    spec:\n      containers: [{name: c, image: busybox}]\n",
    )?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = wait_for("ProgressDeadlineExceeded", 30, || async {
        let d = api.get("stuck").await?;
        let c = d
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| {
                c.iter()
                    .find(|c| {
                        c.type_ == "Progressing"
                            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
                    })
                    .cloned()
            });
        Ok(c.map(|c| (d, c)))
    })
    .await?;
    assert_eq!(d.1.status, "False");
    assert!(d
        .1
        .message
        .as_deref()
        .unwrap()
        .ends_with("has timed out progressing."));
    let err = fails(c.kubectl(&["rollout", "status", "deployment/stuck", "--timeout=10s"])?)?;
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    Ok(())
}
