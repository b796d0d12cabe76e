//! `bramble controller --write-node-kubeconfig PATH --node-name NAME` (what init passes on a
//! board with role `both`): the kubelet beside the controller gets its own node identity,
//! `system:node:NAME` in `system:nodes`, never the admin's, so the Node authorizer and
//! NodeRestriction fence it as they fence a joined kubelet.

mod common;

use std::time::Duration;

use anyhow::{ensure, Result};
use common::auth::kubectl_as;
use common::kubelet::{create_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{fails, ok, TestController, KUBECTL};

fn whoami(kubeconfig: &std::path::PathBuf) -> Result<(String, Vec<String>)> {
    let who = ok(kubectl_as(kubeconfig, &["auth", "whoami", "-o", "json"])?)?;
    let who: serde_json::Value = serde_json::from_str(&who)?;
    let info = &who["status"]["userInfo"];
    let groups = info["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok((info["username"].as_str().unwrap_or_default().into(), groups))
}

#[test]
fn node_kubeconfig_is_the_node_not_the_admin() -> Result<()> {
    let files = tempfile::tempdir()?;
    let node_kc = files.path().join("kubelet.kubeconfig");
    let mut tc = TestController::start_with(&[
        "--write-node-kubeconfig",
        node_kc.to_str().unwrap(),
        "--node-name",
        "board-1",
    ])?;

    // the identity kubectl sees, as the API server authenticates it
    let (user, groups) = whoami(&node_kc)?;
    ensure!(user == "system:node:board-1", "{user}");
    ensure!(
        groups == ["system:nodes", "system:authenticated"],
        "{groups:?}"
    );

    // the Node authorizer: only what the node's pods use
    ok(tc.kubectl(&[
        "create",
        "secret",
        "generic",
        "mounted",
        "--from-literal=k=v",
    ])?)?;
    ok(tc.kubectl(&[
        "create",
        "secret",
        "generic",
        "unrelated",
        "--from-literal=k=v",
    ])?)?;
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"nodeName": "board-1", "volumes": [{"name": "s", "secret": {"secretName": "mounted"}}],
                 "containers": [{"name": "c", "image": "busybox"}]}}"#;
    ok(tc.kubectl_with(KUBECTL, &["create", "-f", "-"], Some(pod))?)?;
    ok(kubectl_as(&node_kc, &["get", "secret", "mounted"])?)?;
    let err = fails(kubectl_as(&node_kc, &["get", "secret", "unrelated"])?)?;
    ensure!(
        err.contains(r#"secrets "unrelated" is forbidden: User "system:node:board-1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'board-1' and this object"#),
        "{err}"
    );
    fails(kubectl_as(&node_kc, &["get", "secrets"])?)?;
    // NodeRestriction: its own Node only
    let create_node = |name: &str| {
        let node =
            format!(r#"{{"apiVersion": "v1", "kind": "Node", "metadata": {{"name": "{name}"}}}}"#);
        tc.kubectl_with(
            KUBECTL,
            &[
                "--kubeconfig",
                node_kc.to_str().unwrap(),
                "create",
                "-f",
                "-",
            ],
            Some(&node),
        )
    };
    ok(create_node("board-1")?)?;
    let err = fails(create_node("board-2")?)?;
    ensure!(
        err.contains(r#"node "board-1" is not allowed to modify node "board-2""#),
        "{err}"
    );

    // a restart keeps the certificate (the file is not rewritten)
    let before = std::fs::read(&node_kc)?;
    tc.restart()?;
    ensure!(std::fs::read(&node_kc)? == before, "rewritten on restart");

    // admin credentials found in its place are replaced by the node's at the next start
    tc.kill();
    std::fs::copy(&tc.kubeconfig, &node_kc)?;
    tc.restart()?;
    let (user, groups) = whoami(&node_kc)?;
    ensure!(user == "system:node:board-1", "{user}");
    ensure!(!groups.iter().any(|g| g == "system:masters"), "{groups:?}");
    fails(kubectl_as(&node_kc, &["get", "secret", "unrelated"])?)?;
    Ok(())
}

#[test]
fn node_name_needs_the_node_kubeconfig_flag() -> Result<()> {
    let out = std::process::Command::new(common::bramble_bin())
        .args(["controller", "--node-name", "board-1"])
        .output()?;
    ensure!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("--write-node-kubeconfig"), "{err}");
    Ok(())
}

/// A kubelet on the node credentials (as on a board with role `both`, and as `bramble up`'s
/// in-process kubelet acts) runs a pod that reads its service-account token, a ConfigMap and
/// a Secret: everything it fetches is allowed by the Node authorizer through the pod.
#[test]
fn a_kubelet_on_node_credentials_runs_pods_with_their_volumes() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "node-creds", &[])?;
    let files = tempfile::tempdir()?;
    let node_kc = files.path().join("kubelet.kubeconfig");
    let tc = TestController::start_with(&[
        "--write-node-kubeconfig",
        node_kc.to_str().unwrap(),
        "--node-name",
        "board-1",
    ])?;
    ok(tc.kubectl(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
    ])?)?;
    ok(tc.kubectl(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=pw=hunter2",
    ])?)?;
    let k = TestKubelet::start_in(&node_kc, "board-1", Vec::new(), "127.0.0.1", &[])?;
    let mut pod = pod_manifest(
        "reader",
        "board-1",
        &image,
        "cat /etc/settings/mode /etc/creds/pw; \
         test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo token; sleep 3600",
        "Never",
        serde_json::json!({"volumeMounts": [
            {"name": "settings", "mountPath": "/etc/settings"},
            {"name": "creds", "mountPath": "/etc/creds"}]}),
    );
    pod["spec"]["volumes"] = serde_json::json!([
        {"name": "settings", "configMap": {"name": "settings"}},
        {"name": "creds", "secret": {"secretName": "creds"}}]);
    create_pod(&tc, &pod)?;
    wait_pod(
        &tc,
        &k,
        "reader",
        Duration::from_secs(120),
        "Running",
        |p| p["status"]["phase"] == "Running",
    )?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let logs = ok(tc.kubectl(&["logs", "reader"])?)?;
        if logs.contains("fast") && logs.contains("hunter2") && logs.contains("token") {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "pod output: {logs:?}\nkubelet log:\n{}",
            common::kubelet::tail(&k.log(), 30)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    ensure!(
        !k.log().contains("forbidden"),
        "the node was refused something:\n{}",
        common::kubelet::tail(&k.log(), 30)
    );
    Ok(())
}
