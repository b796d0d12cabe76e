//! The Node authorizer and NodeRestriction with the real kubectl and kubelet credentials
//! (`system:node:<name>` in `system:nodes`): a node reads only the secrets its pods use,
//! writes only its own Node and its own pods.

mod common;

use anyhow::Result;
use common::auth::{cert_kubeconfig, kubectl_as};
use common::{fails, ok, TestController, KUBECTL};

fn node_json(name: &str) -> String {
    format!(r#"{{"apiVersion": "v1", "kind": "Node", "metadata": {{"name": "{name}"}}}}"#)
}

#[test]
fn kubelet_credentials_are_fenced_to_their_node() -> Result<()> {
    let tc = TestController::start()?;
    let n1 = cert_kubeconfig(&tc, "system:node:n1", &["system:nodes"])?;
    let n2 = cert_kubeconfig(&tc, "system:node:n2", &["system:nodes"])?;

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
    ok(tc.kubectl(&["create", "configmap", "env-cm", "--from-literal=k=v"])?)?;
    let pod = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"nodeName": "n1", "volumes": [{"name": "s", "secret": {"secretName": "mounted"}}],
                 "containers": [{"name": "c", "image": "busybox",
                                 "envFrom": [{"configMapRef": {"name": "env-cm"}}]}]}}"#;
    ok(tc.kubectl_with(KUBECTL, &["create", "-f", "-"], Some(pod))?)?;

    // reads through the graph: only what n1's pods use, only for n1
    ok(kubectl_as(&n1, &["get", "secret", "mounted"])?)?;
    ok(kubectl_as(&n1, &["get", "configmap", "env-cm"])?)?;
    let err = fails(kubectl_as(&n1, &["get", "secret", "unrelated"])?)?;
    assert!(
        err.contains(r#"secrets "unrelated" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object"#),
        "{err}"
    );
    fails(kubectl_as(&n2, &["get", "secret", "mounted"])?)?;
    fails(kubectl_as(&n1, &["get", "secrets"])?)?;

    // cluster-wide reads a kubelet needs
    ok(kubectl_as(&n1, &["get", "pods", "-A"])?)?;
    ok(kubectl_as(&n1, &["get", "services", "-A"])?)?;

    // its own Node only
    ok(tc.kubectl_with(
        KUBECTL,
        &["--kubeconfig", n1.to_str().unwrap(), "create", "-f", "-"],
        Some(&node_json("n1")),
    )?)?;
    let err = fails(tc.kubectl_with(
        KUBECTL,
        &["--kubeconfig", n1.to_str().unwrap(), "create", "-f", "-"],
        Some(&node_json("n2")),
    )?)?;
    assert!(
        err.contains(r#"node "n1" is not allowed to modify node "n2""#),
        "{err}"
    );
    ok(tc.kubectl_with(KUBECTL, &["create", "-f", "-"], Some(&node_json("n2")))?)?;
    ok(kubectl_as(&n1, &["label", "node", "n1", "zone=a"])?)?;
    fails(kubectl_as(&n1, &["label", "node", "n2", "zone=a"])?)?;
    fails(kubectl_as(&n1, &["delete", "node", "n2"])?)?;

    // pods: no ordinary pods, no other node's pods, its own pods may go
    let stray = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray"},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}"#;
    let err = fails(tc.kubectl_with(
        KUBECTL,
        &["--kubeconfig", n1.to_str().unwrap(), "create", "-f", "-"],
        Some(stray),
    )?)?;
    assert!(err.contains("can only create mirror pods"), "{err}");
    fails(kubectl_as(&n2, &["delete", "pod", "web", "--wait=false"])?)?;
    fails(kubectl_as(
        &n1,
        &["create", "deployment", "d", "--image=busybox"],
    )?)?;
    ok(kubectl_as(&n1, &["delete", "pod", "web", "--wait=false"])?)?;
    Ok(())
}
