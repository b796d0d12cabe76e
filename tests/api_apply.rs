//! Server-side apply against a real controller with the real kubectl: `apply --server-side`
//! creates and updates with managedFields, another manager's different value is a 409
//! listing the field, `--force-conflicts` takes it over, dropped fields are removed, and
//! `kubectl diff --server-side` shows the change without writing it.

mod common;

use anyhow::{ensure, Result};
use common::{fails, ok, TestController, KUBECTL};
use serde_json::Value;

fn deployment(replicas: u32, extra_label: bool) -> String {
    let label = if extra_label { "\n    tier: fe" } else { "" };
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web{label}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec: {{containers: [{{name: c, image: nginx}}]}}
"#
    )
}

#[test]
fn kubectl_server_side_apply_conflicts_force_and_diff() -> Result<()> {
    let c = TestController::start()?;
    let apply = |yaml: &str, extra: &[&str]| {
        let mut args = vec!["apply", "--server-side", "-f", "-"];
        args.extend_from_slice(extra);
        c.kubectl_with(KUBECTL, &args, Some(yaml))
    };
    let out = ok(apply(&deployment(2, true), &["--field-manager=alice"])?)?;
    ensure!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let y = ok(c.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ])?)?;
    let v: Value = serde_json::from_str(&y)?;
    let mf = &v["metadata"]["managedFields"][0];
    ensure!(
        mf["manager"] == "alice" && mf["operation"] == "Apply",
        "{mf}"
    );
    ensure!(
        mf["fieldsType"] == "FieldsV1" && mf["fieldsV1"]["f:spec"]["f:replicas"].is_object(),
        "{mf}"
    );
    ensure!(
        mf["time"].is_string() && mf["apiVersion"] == "apps/v1",
        "{mf}"
    );

    // another manager setting replicas differently conflicts
    let err = fails(apply(&deployment(5, true), &["--field-manager=bob"])?)?;
    ensure!(
        err.contains(
            "Apply failed with 1 conflict: conflict with \"alice\" using apps/v1: .spec.replicas"
        ),
        "{err}"
    );
    // diff (server-side dry run) shows the change and writes nothing
    let diff = c.kubectl_with(
        KUBECTL,
        &[
            "diff",
            "--server-side",
            "--force-conflicts",
            "--field-manager=bob",
            "-f",
            "-",
        ],
        Some(&deployment(5, true)),
    )?;
    let diff_out = String::from_utf8_lossy(&diff.stdout).to_string();
    ensure!(
        diff.status.code() == Some(1),
        "diff exit {:?}: {diff_out} {}",
        diff.status,
        String::from_utf8_lossy(&diff.stderr)
    );
    ensure!(
        diff_out.contains("+  replicas: 5") && diff_out.contains("-  replicas: 2"),
        "{diff_out}"
    );
    let r = ok(c.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])?)?;
    ensure!(r == "2", "dry run wrote: {r}");

    ok(apply(
        &deployment(5, true),
        &["--field-manager=bob", "--force-conflicts"],
    )?)?;
    let r = ok(c.kubectl(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"])?)?;
    ensure!(r == "5", "{r}");

    // alice stops applying the tier label: bob applies it too, so it stays; once bob drops
    // it as well it is removed
    ok(apply(
        &deployment(5, false),
        &["--field-manager=alice", "--force-conflicts"],
    )?)?;
    let l = ok(c.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.labels.tier}",
    ])?)?;
    ensure!(l == "fe", "{l}");
    ok(apply(&deployment(5, false), &["--field-manager=bob"])?)?;
    let l = ok(c.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.metadata.labels.tier}",
    ])?)?;
    ensure!(l.is_empty(), "tier still there: {l}");

    // a patch takes the field it changes (an Update entry), so re-applying conflicts
    ok(c.kubectl(&[
        "patch",
        "deploy",
        "web",
        "-p",
        "{\"spec\":{\"replicas\":4}}",
    ])?)?;
    let y = ok(c.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "json",
        "--show-managed-fields",
    ])?)?;
    let v: Value = serde_json::from_str(&y)?;
    let patcher = v["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == "kubectl-patch"))
        .cloned()
        .unwrap_or_default();
    ensure!(
        patcher["operation"] == "Update" && patcher["fieldsV1"]["f:spec"]["f:replicas"].is_object(),
        "{v}"
    );
    let err = fails(apply(&deployment(5, false), &["--field-manager=bob"])?)?;
    ensure!(
        err.contains("conflict with \"kubectl-patch\" using apps/v1: .spec.replicas"),
        "{err}"
    );
    Ok(())
}
