//! A pod's service-account token works against the API from inside the pod, with exactly
//! the rights its bindings give: the projected token, CA and namespace at
//! /var/run/secrets/kubernetes.io/serviceaccount, used by the real kubectl (mounted from the
//! host) in a host-network pod reaching the controller on loopback.

mod common;

use std::time::Duration;

use anyhow::{ensure, Result};
use serde_json::json;

use common::kubelet::{create_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController, KUBECTL};

/// Runs `kubectl ARGS` in a pod as its service account; the pod's log.
fn in_pod(
    ctrl: &TestController,
    k: &TestKubelet,
    image: &str,
    name: &str,
    commands: &[&str],
) -> Result<String> {
    let sa = "/var/run/secrets/kubernetes.io/serviceaccount";
    let kubectl = format!(
        "/kubectl --server=https://127.0.0.1:{port} --certificate-authority={sa}/ca.crt \
         --token=\"$(cat {sa}/token)\" --namespace=\"$(cat {sa}/namespace)\"",
        port = ctrl.port
    );
    let script: Vec<String> = commands
        .iter()
        .map(|c| format!("echo \"> {c}\"; {kubectl} {c} 2>&1; echo \"exit $?\""))
        .collect();
    let mut pod = pod_manifest(name, &k.node, image, &script.join("; "), "Never", json!({}));
    pod["spec"]["hostNetwork"] = json!(true);
    pod["spec"]["volumes"] =
        json!([{"name": "kubectl", "hostPath": {"path": KUBECTL, "type": "File"}}]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "kubectl", "mountPath": "/kubectl", "readOnly": true}]);
    create_pod(ctrl, &pod)?;
    wait_pod(ctrl, k, name, Duration::from_secs(120), "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })?;
    ok(ctrl.kubectl(&["logs", name])?)
}

#[test]
fn service_account_token_from_inside_a_pod_has_its_bindings_rights() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "sa-node")?;
    ok(ctrl.kubectl(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
    ])?)?;

    let before = in_pod(
        &ctrl,
        &k,
        &image,
        "sa-before",
        &[
            "auth whoami -o jsonpath={.status.userInfo.username}",
            "get configmap settings -o name",
        ],
    )?;
    ensure!(
        before.contains("system:serviceaccount:default:default"),
        "{before}"
    );
    ensure!(
        before.contains(
            "User \"system:serviceaccount:default:default\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"default\""
        ),
        "{before}"
    );

    // bound to view in default: reads work, writes and other namespaces do not
    ok(ctrl.kubectl(&[
        "create",
        "rolebinding",
        "default-view",
        "--clusterrole=view",
        "--serviceaccount=default:default",
    ])?)?;
    let after = in_pod(
        &ctrl,
        &k,
        &image,
        "sa-after",
        &[
            "get configmap settings -o jsonpath={.data.mode}",
            "create configmap mine --from-literal=a=b",
            "get configmaps -n kube-system",
        ],
    )?;
    ensure!(after.contains("> get configmap settings"), "{after}");
    ensure!(after.contains("fast"), "{after}");
    ensure!(
        after.contains(
            "cannot create resource \"configmaps\" in API group \"\" in the namespace \"default\""
        ),
        "{after}"
    );
    ensure!(
        after.contains(
            "cannot list resource \"configmaps\" in API group \"\" in the namespace \"kube-system\""
        ),
        "{after}"
    );
    ensure!(!ctrl
        .kubectl(&["get", "configmap", "mine"])?
        .status
        .success());
    Ok(())
}
