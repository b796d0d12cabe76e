//! The `scale` and `eviction` subresources against a real controller: `kubectl scale` on
//! Deployments, ReplicaSets and StatefulSets, Scale GET/PUT/PATCH, evictions refused by a
//! PodDisruptionBudget with upstream's 429, and `kubectl drain` of a node.

mod common;

use anyhow::{ensure, Result};
use common::api::Http;
use common::{fails, ok, TestController};
use http::Method;
use serde_json::json;

const WORKLOADS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: rs}}
  template:
    metadata: {labels: {app: rs}}
    spec: {containers: [{name: c, image: nginx}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: default}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: nginx}]}
"#;

#[tokio::test]
async fn kubectl_scale_and_scale_subresource() -> Result<()> {
    let c = TestController::start()?;
    ok(c.kubectl_with(common::KUBECTL, &["apply", "-f", "-"], Some(WORKLOADS))?)?;
    for (kind, name) in [
        ("deployment", "web"),
        ("replicaset", "rs"),
        ("statefulset", "db"),
    ] {
        let out = ok(c.kubectl(&["scale", kind, name, "--replicas=4"])?)?;
        ensure!(out.contains("scaled"), "{out}");
        let r = ok(c.kubectl(&["get", kind, name, "-o", "jsonpath={.spec.replicas}"])?)?;
        ensure!(r == "4", "{kind}: {r}");
    }
    // precondition: --current-replicas that does not match fails
    let err = fails(c.kubectl(&[
        "scale",
        "deployment",
        "web",
        "--current-replicas=2",
        "--replicas=1",
    ])?)?;
    ensure!(err.contains("Expected replicas to be 2, was 4"), "{err}");
    // older kubectl
    ok(c.kubectl_with(
        "/usr/lib/google-cloud-sdk/bin/kubectl.1.27",
        &["scale", "deployment/web", "--replicas=2"],
        None,
    )?)?;

    let h = Http::for_controller(&c).await?;
    let path = "/apis/apps/v1/namespaces/default/deployments/web/scale";
    let (code, scale) = h.get(path).await?;
    ensure!(code == 200, "{scale}");
    ensure!(
        scale["kind"] == "Scale" && scale["apiVersion"] == "autoscaling/v1",
        "{scale}"
    );
    ensure!(
        scale["spec"]["replicas"] == 2 && scale["status"]["selector"] == "app=web",
        "{scale}"
    );
    let gen_before = get_generation(&h, "/apis/apps/v1/namespaces/default/deployments/web").await?;

    // an unconditional PUT (no resourceVersion: in-process controllers may write the
    // Deployment meanwhile) sets replicas and bumps the generation
    let mut body = scale.clone();
    body["spec"]["replicas"] = json!(7);
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let (code, v) = h.json(Method::PUT, path, "application/json", &body).await?;
    ensure!(code == 200 && v["spec"]["replicas"] == 7, "{v}");
    let gen_after = get_generation(&h, "/apis/apps/v1/namespaces/default/deployments/web").await?;
    ensure!(
        gen_after > gen_before,
        "generation {gen_before} -> {gen_after}"
    );
    // a stale resourceVersion: 409
    body["metadata"]["resourceVersion"] = json!("1");
    let (code, v) = h.json(Method::PUT, path, "application/json", &body).await?;
    ensure!(code == 409 && v["reason"] == "Conflict", "{v}");

    let (code, v) = h
        .json(
            Method::PATCH,
            path,
            "application/json-patch+json",
            &json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
        )
        .await?;
    ensure!(code == 200 && v["spec"]["replicas"] == 3, "{v}");
    let (code, v) = h
        .json(
            Method::PATCH,
            path,
            "application/merge-patch+json",
            &json!({"spec": {"replicas": -1}}),
        )
        .await?;
    ensure!(code == 422 && v["reason"] == "Invalid", "{v}");
    ensure!(
        v["message"] == "Scale \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        "{v}"
    );
    // no scale on a kind without it, 404 for a missing object
    let (code, _) = h
        .get("/apis/apps/v1/namespaces/default/daemonsets/x/scale")
        .await?;
    ensure!(code == 404);
    let (code, v) = h
        .get("/apis/apps/v1/namespaces/default/deployments/nope/scale")
        .await?;
    ensure!(code == 404 && v["reason"] == "NotFound", "{v}");
    Ok(())
}

async fn get_generation(h: &Http, path: &str) -> Result<i64> {
    let (_, v) = h.get(path).await?;
    Ok(v["metadata"]["generation"].as_i64().unwrap_or(0))
}

/// A Running, Ready pod bound to `node` with an emptyDir volume. It has no owner (a made-up
/// owner would be garbage collected), so drain needs `--force`.
async fn running_pod(h: &Http, name: &str, node: &str, app: &str) -> Result<()> {
    let pods = "/api/v1/namespaces/default/pods";
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}],
            "volumes": [{"name": "scratch", "emptyDir": {}}]}});
    let (code, v) = h.post(pods, &pod).await?;
    ensure!(code == 201, "{v}");
    let status = json!({"status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}]}});
    let (code, v) = h
        .json(
            Method::PATCH,
            &format!("{pods}/{name}/status"),
            "application/merge-patch+json",
            &status,
        )
        .await?;
    ensure!(code == 200, "{v}");
    Ok(())
}

#[tokio::test]
async fn eviction_honours_disruption_budgets_and_drain_works() -> Result<()> {
    let c = TestController::start()?;
    let h = Http::for_controller(&c).await?;
    for node in ["n1", "n2"] {
        let (code, v) = h
            .post(
                "/api/v1/nodes",
                &json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}),
            )
            .await?;
        ensure!(code == 201, "{v}");
    }
    running_pod(&h, "a", "n1", "web").await?;
    running_pod(&h, "b", "n1", "web").await?;
    running_pod(&h, "free", "n2", "other").await?;
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web-pdb"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}});
    let (code, v) = h
        .post(
            "/apis/policy/v1/namespaces/default/poddisruptionbudgets",
            &pdb,
        )
        .await?;
    ensure!(code == 201, "{v}");

    let evict = |name: &str, grace: Option<i64>| {
        let mut e = json!({"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": "default"}});
        if let Some(g) = grace {
            e["deleteOptions"] = json!({"gracePeriodSeconds": g});
        }
        e
    };
    let path = |name: &str| format!("/api/v1/namespaces/default/pods/{name}/eviction");
    let (code, v) = h.post(&path("a"), &evict("a", None)).await?;
    ensure!(code == 429 && v["reason"] == "TooManyRequests", "{v}");
    ensure!(
        v["message"] == "Cannot evict pod as it would violate the pod's disruption budget.",
        "{v}"
    );
    ensure!(
        v["details"]["causes"][0]["reason"] == "DisruptionBudget",
        "{v}"
    );
    ensure!(
        v["details"]["causes"][0]["message"]
            == "The disruption budget web-pdb needs 2 healthy pods and has 2 currently",
        "{v}"
    );
    let (code, _) = h.get("/api/v1/namespaces/default/pods/a").await?;
    ensure!(code == 200, "a refused eviction deletes nothing");

    // a mismatched name and a missing pod
    let (code, v) = h.post(&path("a"), &evict("b", None)).await?;
    ensure!(code == 400, "{v}");
    let (code, v) = h.post(&path("zz"), &evict("zz", None)).await?;
    ensure!(code == 404 && v["reason"] == "NotFound", "{v}");

    // a pod no budget covers is deleted gracefully: default grace leaves it terminating
    let (code, v) = h.post(&path("free"), &evict("free", None)).await?;
    ensure!(code == 201 && v["status"] == "Success", "{v}");
    let (code, v) = h.get("/api/v1/namespaces/default/pods/free").await?;
    ensure!(
        code == 200 && v["metadata"]["deletionGracePeriodSeconds"] == 30,
        "{v}"
    );
    // grace 0 in deleteOptions deletes at once
    let (code, _) = h.post(&path("free"), &evict("free", Some(0))).await?;
    ensure!(code == 201);
    let (code, _) = h.get("/api/v1/namespaces/default/pods/free").await?;
    ensure!(code == 404);

    // a controller-written status is decremented by an allowed eviction
    let pdb_path = "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web-pdb";
    let status = json!({"status": {"observedGeneration": 1, "disruptionsAllowed": 1,
        "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2}});
    let (code, v) = h
        .json(
            Method::PATCH,
            &format!("{pdb_path}/status"),
            "application/merge-patch+json",
            &status,
        )
        .await?;
    ensure!(code == 200, "{v}");
    let (code, v) = h.post(&path("a"), &evict("a", Some(0))).await?;
    ensure!(code == 201, "{v}");
    let (_, v) = h.get(pdb_path).await?;
    ensure!(v["status"]["disruptionsAllowed"] == 0, "{v}");
    ensure!(v["status"]["disruptedPods"]["a"].is_string(), "{v}");

    // drain: the budget now blocks pod b, so drain times out with upstream's message
    let err = fails(c.kubectl(&[
        "drain",
        "n1",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--force",
        "--grace-period=0",
        "--timeout=4s",
    ])?)?;
    ensure!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{err}"
    );
    let unsched = ok(c.kubectl(&["get", "node", "n1", "-o", "jsonpath={.spec.unschedulable}"])?)?;
    ensure!(unsched == "true", "drain cordons: {unsched}");
    ok(c.kubectl(&["delete", "pdb", "web-pdb"])?)?;
    let out = ok(c.kubectl(&[
        "drain",
        "n1",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--force",
        "--grace-period=0",
        "--timeout=30s",
    ])?)?;
    ensure!(
        out.contains("evicting pod default/b") || out.contains("pod/b evicted"),
        "{out}"
    );
    ensure!(out.contains("node/n1 drained"), "{out}");
    let (code, _) = h.get("/api/v1/namespaces/default/pods/b").await?;
    ensure!(code == 404);
    Ok(())
}
