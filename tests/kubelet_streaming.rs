//! `kubectl logs` and `kubectl exec` reach containers of a `bramble kubelet` node through
//! the controller and the kubelet's streaming server (bramble-kubelet-server), with the
//! real kubectl.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::kubelet::{create_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::json;

#[test]
fn kubectl_logs_and_exec_through_the_kubelet() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "ks-stream")?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "talk",
            "ks-stream",
            &image,
            "echo hello-from-$HOSTNAME; exec sleep 3600",
            "Always",
            json!({}),
        ),
    )?;
    wait_pod(&ctrl, &k, "talk", Duration::from_secs(60), "Running", |p| {
        p["status"]["phase"] == "Running"
    })?;
    let logs = ok(ctrl.kubectl(&["logs", "talk"])?)?;
    assert_eq!(
        logs.trim(),
        "hello-from-talk",
        "{logs}\n{}",
        common::kubelet::tail(&k.log(), 20)
    );
    let out = ok(ctrl.kubectl(&["exec", "talk", "--", "cat", "/etc/image-marker"])?)?;
    assert_eq!(out.trim(), "bramble busybox test image");
    Ok(())
}
