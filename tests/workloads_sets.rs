//! DaemonSets and StatefulSets against a real `bramble controller`, with fake Nodes created
//! through the API and a simulated kubelet marking pods Ready.

mod common;
mod workloads_support;

use anyhow::Result;
use common::{ok, TestController, KUBECTL};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};
use workloads_support::*;

fn apply(c: &TestController, yaml: &str) -> Result<String> {
    ok(c.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(yaml))?)
}

fn node_yaml(name: &str, taint: bool) -> String {
    let taints = if taint {
        "\nspec:\n  taints: [{key: dedicated, value: db, effect: NoSchedule}]"
    } else {
        ""
    };
    format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kubernetes.io/hostname: {name}}}{taints}\n")
}

fn pinned_node(p: &Pod) -> String {
    let terms = &p
        .spec
        .as_ref()
        .unwrap()
        .affinity
        .as_ref()
        .unwrap()
        .node_affinity
        .as_ref()
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .unwrap()
        .node_selector_terms;
    let f = &terms[0].match_fields.as_ref().unwrap()[0];
    assert_eq!(
        (f.key.as_str(), f.operator.as_str()),
        ("metadata.name", "In")
    );
    f.values.as_ref().unwrap()[0].clone()
}

async fn pinned_nodes(client: &Client, selector: &str) -> Result<Vec<String>> {
    let mut nodes: Vec<String> = live_pods(client, "default", selector)
        .await?
        .iter()
        .map(pinned_node)
        .collect();
    nodes.sort();
    Ok(nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_runs_on_every_eligible_node_and_rolls_out() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    for (n, taint) in [("n1", false), ("n2", false), ("tainted", true)] {
        apply(&c, &node_yaml(n, taint))?;
    }
    apply(
        &c,
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      containers: [{name: agent, image: busybox}]\n",
    )?;
    let pods = wait_pod_count(&client, "default", "app=agent", 2).await?;
    assert_eq!(
        pinned_nodes(&client, "app=agent").await?,
        ["n1", "n2"],
        "no pod on the tainted node"
    );
    let tols = pods[0].spec.as_ref().unwrap().tolerations.clone().unwrap();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/unschedulable",
    ] {
        assert!(
            tols.iter().any(|t| t.key.as_deref() == Some(key)),
            "missing toleration {key}"
        );
    }
    assert!(pods[0].labels().contains_key("controller-revision-hash"));

    // A new node gets its pod.
    apply(&c, &node_yaml("n3", false))?;
    wait_pod_count(&client, "default", "app=agent", 3).await?;
    let ds_api: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let ds = wait_for("status for three nodes", 30, || async {
        kubelet_pass(&client, "default", "app=agent").await?;
        let ds = ds_api.get("agent").await?;
        let st = ds.status.clone().unwrap_or_default();
        Ok((st.desired_number_scheduled == 3 && st.number_ready == 3).then_some(ds))
    })
    .await?;
    assert_eq!(ds.status.unwrap().number_misscheduled, 0);

    // A new image rolls out node by node (maxUnavailable 1).
    ok(c.kubectl(&["set", "image", "daemonset/agent", "agent=busybox:1.36"])?)?;
    wait_for("the rollout", 60, || async {
        let pods = live_pods(&client, "default", "app=agent").await?;
        let ready = pods.iter().filter(|p| is_ready(p)).count();
        assert!(
            ready >= 2 || pods.len() < 3,
            "more than one node without a ready pod"
        );
        reap_terminating(&client, "default", "app=agent").await?;
        kubelet_pass(&client, "default", "app=agent").await?;
        let st = ds_api.get("agent").await?.status.unwrap_or_default();
        let images_new = pods.len() == 3
            && pods.iter().all(|p| {
                p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("busybox:1.36")
            });
        Ok(
            (images_new
                && st.updated_number_scheduled == Some(3)
                && st.number_available == Some(3))
            .then_some(()),
        )
    })
    .await?;
    assert_eq!(
        pinned_nodes(&client, "app=agent").await?,
        ["n1", "n2", "n3"]
    );
    let revs: Api<ControllerRevision> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        revs.list(&ListParams::default().labels("app=agent"))
            .await?
            .items
            .len(),
        2
    );
    ok(c.kubectl(&["rollout", "status", "daemonset/agent", "--timeout=20s"])?)?;
    Ok(())
}

async fn names(client: &Client) -> Result<Vec<String>> {
    let mut v: Vec<String> = live_pods(client, "default", "app=db")
        .await?
        .iter()
        .map(|p| p.name_any())
        .collect();
    v.sort();
    Ok(v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_orders_pods_keeps_claims_and_updates_by_partition() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    apply(
        &c,
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  replicas: 3\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec:\n      containers: [{name: db, image: busybox}]\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources: {requests: {storage: 1Gi}}\n",
    )?;
    // OrderedReady: db-1 only after db-0 is Running and Ready, and so on.
    for n in 0..3 {
        let want: Vec<String> = (0..=n).map(|i| format!("db-{i}")).collect();
        wait_for(&format!("pods {want:?}"), 30, || async {
            Ok((names(&client).await? == want).then_some(()))
        })
        .await?;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(
            names(&client).await?,
            want,
            "next ordinal created before db-{n} was ready"
        );
        let p: Pod = Api::namespaced(client.clone(), "default")
            .get(&format!("db-{n}"))
            .await?;
        mark_ready(&client, &p).await?;
    }
    let p0: Pod = Api::namespaced(client.clone(), "default")
        .get("db-0")
        .await?;
    let spec = p0.spec.clone().unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("db-0"));
    assert_eq!(spec.subdomain.as_deref(), Some("db"));
    let vol = spec
        .volumes
        .unwrap()
        .into_iter()
        .find(|v| v.name == "data")
        .unwrap();
    assert_eq!(vol.persistent_volume_claim.unwrap().claim_name, "data-db-0");
    assert_eq!(p0.labels()["apps.kubernetes.io/pod-index"], "0");
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claim_names = || async {
        let mut v: Vec<String> = pvcs
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .map(|p| p.name_any())
            .collect();
        v.sort();
        anyhow::Ok(v)
    };
    assert_eq!(
        claim_names().await?,
        ["data-db-0", "data-db-1", "data-db-2"]
    );

    // Scale down: highest ordinal first; the claims stay.
    ok(c.kubectl(&["scale", "statefulset/db", "--replicas=1"])?)?;
    wait_for("scale down to db-0", 30, || async {
        Ok((names(&client).await? == ["db-0"]).then_some(()))
    })
    .await?;
    assert_eq!(
        claim_names().await?,
        ["data-db-0", "data-db-1", "data-db-2"]
    );
    ok(c.kubectl(&["scale", "statefulset/db", "--replicas=3"])?)?;
    for n in 1..3 {
        let name = format!("db-{n}");
        let p = wait_for(&name, 30, || async {
            Ok(Api::<Pod>::namespaced(client.clone(), "default")
                .get_opt(&name)
                .await?)
        })
        .await?;
        mark_ready(&client, &p).await?;
    }

    // Partitioned rolling update: only ordinals >= 2 move to the new revision.
    ok(c.kubectl(&[
        "patch",
        "statefulset",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":2}}}}"#,
    ])?)?;
    ok(c.kubectl(&["set", "image", "statefulset/db", "db=busybox:1.36"])?)?;
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let st = wait_for("db-2 updated", 30, || async {
        kubelet_pass(&client, "default", "app=db").await?;
        let st = sts_api.get("db").await?.status.unwrap_or_default();
        Ok((st.updated_replicas == Some(1) && st.ready_replicas == Some(3)).then_some(st))
    })
    .await?;
    assert_ne!(st.current_revision, st.update_revision);
    let image = |n: &str| {
        let client = client.clone();
        let n = n.to_string();
        async move {
            let p: Pod = Api::namespaced(client, "default").get(&n).await?;
            anyhow::Ok(
                p.spec.unwrap().containers[0]
                    .image
                    .clone()
                    .unwrap_or_default(),
            )
        }
    };
    assert_eq!(image("db-2").await?, "busybox:1.36");
    assert_eq!(image("db-1").await?, "busybox");
    assert_eq!(image("db-0").await?, "busybox");

    ok(c.kubectl(&[
        "patch",
        "statefulset",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ])?)?;
    let st = wait_for("all updated", 60, || async {
        kubelet_pass(&client, "default", "app=db").await?;
        let st = sts_api.get("db").await?.status.unwrap_or_default();
        Ok((st.updated_replicas == Some(3)
            && st.ready_replicas == Some(3)
            && st.current_revision == st.update_revision)
            .then_some(st))
    })
    .await?;
    assert_eq!(st.current_replicas, Some(3));
    assert_eq!(image("db-0").await?, "busybox:1.36");
    ok(c.kubectl(&["rollout", "status", "statefulset/db", "--timeout=20s"])?)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_statefulset_with_claims_deleted_on_scale_down_and_delete() -> Result<()> {
    let c = TestController::start()?;
    let client = c.client().await?;
    apply(
        &c,
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: par}\nspec:\n  replicas: 3\n  podManagementPolicy: Parallel\n  persistentVolumeClaimRetentionPolicy: {whenScaled: Delete, whenDeleted: Delete}\n  selector: {matchLabels: {app: par}}\n  template:\n    metadata: {labels: {app: par}}\n    spec:\n      containers: [{name: c, image: busybox}]\n  volumeClaimTemplates:\n  - metadata: {name: data}\n    spec:\n      accessModes: [ReadWriteOnce]\n      resources: {requests: {storage: 1Gi}}\n",
    )?;
    // Parallel: all three at once, nobody ready.
    wait_pod_count(&client, "default", "app=par", 3).await?;
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claims = || async {
        let mut v: Vec<String> = pvcs
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| p.name_any())
            .collect();
        v.sort();
        anyhow::Ok(v)
    };
    assert_eq!(claims().await?, ["data-par-0", "data-par-1", "data-par-2"]);
    let owners = pvcs.get("data-par-0").await?.owner_references().to_vec();
    assert_eq!(
        owners[0].kind, "StatefulSet",
        "whenDeleted: Delete owns the claim by the set"
    );
    ok(c.kubectl(&["scale", "statefulset/par", "--replicas=1"])?)?;
    wait_pod_count(&client, "default", "app=par", 1).await?;
    wait_for("claims of removed ordinals collected", 30, || async {
        Ok((claims().await? == ["data-par-0"]).then_some(()))
    })
    .await?;
    ok(c.kubectl(&["delete", "statefulset", "par"])?)?;
    wait_for("everything collected", 30, || async {
        let pods = live_pods(&client, "default", "app=par").await?;
        Ok((pods.is_empty() && claims().await?.is_empty()).then_some(()))
    })
    .await?;
    Ok(())
}
