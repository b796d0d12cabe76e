//! `metadata.managedFields` on every write, as upstream's field manager records them, seen
//! with the real kubectl: `kubectl create` is an `Update` of `kubectl-create`, `kubectl scale`
//! an `Update` through the `scale` subresource owning `spec.replicas`, a status patch an
//! `Update` through `status`; the in-process controllers write as `kube-controller-manager`
//! (deployment status, the ReplicaSet's pods). A server-side apply of `spec.replicas` after
//! another manager scaled gets upstream's 409 naming it, and `--force-conflicts` takes it.

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use common::{fails, ok, TestController, KUBECTL};
use serde_json::Value;

fn get_json(c: &TestController, args: &[&str]) -> Result<Value> {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    Ok(serde_json::from_str(&ok(c.kubectl(&a)?)?)?)
}

fn entries(obj: &Value) -> Vec<Value> {
    obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn find<'a>(list: &'a [Value], manager: &str, sub: Option<&str>) -> Option<&'a Value> {
    list.iter()
        .find(|e| e["manager"] == manager && e["subresource"].as_str() == sub)
}

/// Polls `check` on `kubectl get <args>` until it holds (a loaded machine is slow).
fn wait_for(
    c: &TestController,
    args: &[&str],
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = get_json(c, args)?;
        if check(&v) {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}: {v}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn kubectl_writes_and_controllers_record_upstream_managers() -> Result<()> {
    let c = TestController::start()?;
    ok(c.kubectl(&["create", "deployment", "web", "--image=nginx"])?)?;
    let d = get_json(&c, &["deploy", "web"])?;
    let list = entries(&d);
    let create = find(&list, "kubectl-create", None).ok_or_else(|| anyhow::anyhow!("{d}"))?;
    ensure!(
        create["operation"] == "Update" && create["apiVersion"] == "apps/v1",
        "{create}"
    );
    let f = &create["fieldsV1"];
    ensure!(f["f:spec"]["f:replicas"].is_object(), "{create}");
    ensure!(
        f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"]["f:image"]
            .is_object(),
        "{create}"
    );
    // defaulted fields are the creator's too; status is not
    ensure!(f["f:spec"]["f:strategy"]["f:type"].is_object(), "{create}");
    ensure!(f.get("f:status").is_none(), "{create}");
    ensure!(f["f:metadata"].get("f:name").is_none(), "{create}");

    // kubectl scale: the scale subresource, owning the parent's spec.replicas
    ok(c.kubectl(&["scale", "deployment", "web", "--replicas=2"])?)?;
    let d = get_json(&c, &["deploy", "web"])?;
    let list = entries(&d);
    let scale = list
        .iter()
        .find(|e| e["subresource"] == "scale")
        .ok_or_else(|| anyhow::anyhow!("no scale entry: {d}"))?;
    ensure!(
        scale["manager"]
            .as_str()
            .is_some_and(|m| m.starts_with("kubectl"))
            && scale["operation"] == "Update",
        "{scale}"
    );
    ensure!(
        scale["fieldsV1"] == serde_json::json!({"f:spec": {"f:replicas": {}}}),
        "{scale}"
    );
    let create = find(&list, "kubectl-create", None).ok_or_else(|| anyhow::anyhow!("{d}"))?;
    ensure!(
        create["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "replicas left kubectl-create: {create}"
    );

    // the deployment controller writes status through the status subresource
    wait_for(
        &c,
        &["deploy", "web"],
        "the controller's status entry",
        |d| {
            find(&entries(d), "kube-controller-manager", Some("status")).is_some_and(|e| {
                e["operation"] == "Update" && e["fieldsV1"]["f:status"].is_object()
            })
        },
    )?;
    // the ReplicaSet controller creates the pods
    let pods = wait_for(&c, &["pods", "-l", "app=web"], "pods of web", |l| {
        l["items"].as_array().is_some_and(|i| !i.is_empty())
    })?;
    for pod in pods["items"].as_array().into_iter().flatten() {
        let list = entries(pod);
        let kcm = find(&list, "kube-controller-manager", None)
            .ok_or_else(|| anyhow::anyhow!("pod without the controller's entry: {pod}"))?;
        ensure!(
            kcm["operation"] == "Update"
                && kcm["fieldsV1"]["f:metadata"]["f:ownerReferences"].is_object()
                && kcm["fieldsV1"].get("f:status").is_none(),
            "{kcm}"
        );
    }

    // a status patch by a named manager
    let out = ok(c.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--subresource=status",
        "--type=merge",
        "--field-manager=status-writer",
        "-p",
        r#"{"status":{"collisionCount":7}}"#,
        "-o",
        "json",
        "--show-managed-fields",
    ])?)?;
    let patched: Value = serde_json::from_str(&out)?;
    let list = entries(&patched);
    let st = find(&list, "status-writer", Some("status"))
        .ok_or_else(|| anyhow::anyhow!("no status-writer entry: {patched}"))?;
    ensure!(
        st["operation"] == "Update"
            && st["fieldsV1"] == serde_json::json!({"f:status": {"f:collisionCount": {}}}),
        "{st}"
    );
    // a merge patch of the main resource records too
    let out = ok(c.kubectl(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"tier":"fe"}}}"#,
        "-o",
        "json",
        "--show-managed-fields",
    ])?)?;
    let patched: Value = serde_json::from_str(&out)?;
    let list = entries(&patched);
    let p = find(&list, "kubectl-patch", None)
        .ok_or_else(|| anyhow::anyhow!("no kubectl-patch entry: {patched}"))?;
    ensure!(
        p["fieldsV1"] == serde_json::json!({"f:metadata": {"f:labels": {"f:tier": {}}}}),
        "{p}"
    );
    Ok(())
}

const APPLIED: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
spec:
  replicas: REPLICAS
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: c, image: nginx}]}
"#;

#[test]
fn apply_after_another_manager_scaled_conflicts_until_forced() -> Result<()> {
    let c = TestController::start()?;
    let apply = |replicas: &str, extra: &[&str]| {
        let mut args = vec!["apply", "--server-side", "-f", "-"];
        args.extend_from_slice(extra);
        c.kubectl_with(KUBECTL, &args, Some(&APPLIED.replace("REPLICAS", replicas)))
    };
    ok(apply("1", &[])?)?;
    // an autoscaler-style write through the scale subresource
    ok(c.kubectl(&[
        "patch",
        "deployment",
        "api",
        "--subresource=scale",
        "--type=merge",
        "--field-manager=hpa-autoscaler",
        "-p",
        r#"{"spec":{"replicas":4}}"#,
    ])?)?;
    let err = fails(apply("3", &[])?)?;
    ensure!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"hpa-autoscaler\" with subresource \"scale\" using apps/v1: .spec.replicas"
        ),
        "{err}"
    );
    let d = get_json(&c, &["deploy", "api"])?;
    ensure!(
        d["spec"]["replicas"] == 4,
        "the failed apply changed it: {d}"
    );

    ok(apply("3", &["--force-conflicts"])?)?;
    let d = get_json(&c, &["deploy", "api"])?;
    ensure!(d["spec"]["replicas"] == 3, "{d}");
    let list = entries(&d);
    ensure!(
        find(&list, "hpa-autoscaler", Some("scale")).is_none(),
        "the scaler still owns replicas: {d}"
    );
    let applier = find(&list, "kubectl", None).ok_or_else(|| anyhow::anyhow!("{d}"))?;
    ensure!(
        applier["operation"] == "Apply" && applier["fieldsV1"]["f:spec"]["f:replicas"].is_object(),
        "{applier}"
    );
    Ok(())
}
