//! kubectl's typed `create` commands send protobuf bodies
//! (`application/vnd.kubernetes.protobuf`); a real controller decodes them and stores the
//! same object a JSON body would give.

mod common;

use anyhow::{ensure, Result};
use common::{ok, TestController};
use serde_json::{json, Value};

fn get_json(c: &TestController, args: &[&str]) -> Result<Value> {
    let mut all = vec!["get", "-o", "json"];
    all.extend_from_slice(args);
    Ok(serde_json::from_str(&ok(c.kubectl(&all)?)?)?)
}

#[test]
fn kubectl_create_sends_protobuf_and_objects_are_stored_right() -> Result<()> {
    let c = TestController::start()?;

    // The request really is protobuf (kubectl -v=9 logs the header it sent).
    let out = c.kubectl(&["create", "namespace", "x", "-v=9"])?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.success(), "create namespace failed: {stderr}");
    ensure!(
        stderr.contains("Content-Type: application/vnd.kubernetes.protobuf"),
        "kubectl did not send protobuf: {stderr}"
    );
    let ns = get_json(&c, &["namespace", "x"])?;
    ensure!(ns["metadata"]["name"] == "x", "{ns}");
    ensure!(ns["status"]["phase"] == "Active", "{ns}");

    ok(c.kubectl(&[
        "-n",
        "x",
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--port=80",
    ])?)?;
    let d = get_json(&c, &["-n", "x", "deployment", "web"])?;
    ensure!(d["spec"]["replicas"] == 1, "{d}");
    ensure!(
        d["spec"]["selector"] == json!({"matchLabels": {"app": "web"}}),
        "{d}"
    );
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    ensure!(container["name"] == "nginx", "{d}");
    ensure!(container["image"] == "nginx", "{d}");
    ensure!(container["imagePullPolicy"] == "Always", "defaulted: {d}");
    ensure!(
        container["ports"] == json!([{"containerPort": 80, "protocol": "TCP"}]),
        "{d}"
    );
    // A pointer set to zero survives; value fields left zero are not invented.
    ok(c.kubectl(&[
        "-n",
        "x",
        "create",
        "deployment",
        "idle",
        "--image=nginx",
        "--replicas=0",
    ])?)?;
    let idle = get_json(&c, &["-n", "x", "deployment", "idle"])?;
    ensure!(idle["spec"]["replicas"] == 0, "{idle}");
    ensure!(idle["spec"]["minReadySeconds"].is_null(), "{idle}");

    ok(c.kubectl(&[
        "-n",
        "x",
        "create",
        "secret",
        "generic",
        "s",
        "--from-literal=k=v",
    ])?)?;
    let s = get_json(&c, &["-n", "x", "secret", "s"])?;
    ensure!(s["data"] == json!({"k": "dg=="}), "{s}");
    ensure!(s["type"] == "Opaque", "{s}");

    ok(c.kubectl(&["-n", "x", "create", "configmap", "cm", "--from-literal=a=b"])?)?;
    let cm = get_json(&c, &["-n", "x", "configmap", "cm"])?;
    ensure!(cm["data"] == json!({"a": "b"}), "{cm}");

    ok(c.kubectl(&[
        "-n",
        "x",
        "create",
        "service",
        "clusterip",
        "svc",
        "--tcp=80:8080",
    ])?)?;
    let svc = get_json(&c, &["-n", "x", "service", "svc"])?;
    ensure!(svc["spec"]["ports"][0]["port"] == 80, "{svc}");
    ensure!(svc["spec"]["ports"][0]["targetPort"] == 8080, "{svc}");

    ok(c.kubectl(&["-n", "x", "create", "quota", "q", "--hard=cpu=1500m,pods=2"])?)?;
    let q = get_json(&c, &["-n", "x", "resourcequota", "q"])?;
    ensure!(
        q["spec"]["hard"] == json!({"cpu": "1500m", "pods": "2"}),
        "{q}"
    );

    ok(c.kubectl(&[
        "-n",
        "x",
        "create",
        "role",
        "r",
        "--verb=get",
        "--resource=pods",
    ])?)?;
    ok(c.kubectl(&[
        "-n",
        "x",
        "create",
        "rolebinding",
        "rb",
        "--role=r",
        "--user=alice",
    ])?)?;
    let rb = get_json(&c, &["-n", "x", "rolebinding", "rb"])?;
    ensure!(rb["subjects"][0]["name"] == "alice", "{rb}");
    ensure!(rb["roleRef"]["name"] == "r", "{rb}");

    ok(c.kubectl(&[
        "-n",
        "x",
        "create",
        "cronjob",
        "cj",
        "--image=busybox",
        "--schedule=*/5 * * * *",
        "--",
        "date",
    ])?)?;
    let cj = get_json(&c, &["-n", "x", "cronjob", "cj"])?;
    ensure!(cj["spec"]["schedule"] == "*/5 * * * *", "{cj}");
    ensure!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"]
            == json!(["date"]),
        "{cj}"
    );

    ok(c.kubectl(&["create", "priorityclass", "pc", "--value=1000"])?)?;
    let pc = get_json(&c, &["priorityclass", "pc"])?;
    ensure!(pc["value"] == 1000, "{pc}");

    ok(c.kubectl(&[
        "-n",
        "x",
        "create",
        "pdb",
        "p",
        "--selector=app=web",
        "--min-available=50%",
    ])?)?;
    let pdb = get_json(&c, &["-n", "x", "pdb", "p"])?;
    ensure!(pdb["spec"]["minAvailable"] == "50%", "{pdb}");
    Ok(())
}
