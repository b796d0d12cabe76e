//! Bad input to the node, through the real API and kubelet: a malformed quantity is refused by
//! the API with upstream's 400 and creates nothing; images on a registry that demands
//! credentials pull only with the right `imagePullSecrets` (ErrImagePull/ImagePullBackOff with
//! the registry's answer otherwise); a registry that refuses connections gives ErrImagePull;
//! and through all of it the node stays Ready and runs other pods.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::kubelet::{create_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

const NODE: &str = "kl-badinput";
const LONG: Duration = Duration::from_secs(90);

fn waiting(p: &Value) -> (&str, &str) {
    let w = &p["status"]["containerStatuses"][0]["state"]["waiting"];
    (
        w["reason"].as_str().unwrap_or_default(),
        w["message"].as_str().unwrap_or_default(),
    )
}

#[test]
fn malformed_quantity_is_refused_with_upstreams_400_and_nothing_is_created() -> Result<()> {
    let ctrl = TestController::start()?;
    let mut pod = pod_manifest("badq", NODE, "busybox", "true", "Never", json!({}));
    pod["spec"]["containers"][0]["resources"] = json!({"limits": {"memory": "12XY"}});
    let out = ctrl.kubectl_with(
        common::KUBECTL,
        &["create", "-f", "-"],
        Some(&pod.to_string()),
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Error from server (BadRequest)")
            && stderr.contains("quantities must match the regular expression"),
        "{stderr}"
    );
    let got = ctrl.kubectl(&["get", "pod", "badq"])?;
    assert!(!got.status.success());
    assert!(
        String::from_utf8_lossy(&got.stderr).contains("NotFound"),
        "{got:?}"
    );
    Ok(())
}

#[test]
fn private_registry_needs_the_right_pull_secret_and_refusing_registries_fail_cleanly() -> Result<()>
{
    let reg = TestRegistry::start_with_auth("puller", "s3cret")?;
    let image = reg.push_busybox("private", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, NODE)?;
    let host = reg.host();
    for (name, password) in [("right", "s3cret"), ("wrong", "guess")] {
        ok(ctrl.kubectl(&[
            "create",
            "secret",
            "docker-registry",
            name,
            &format!("--docker-server={host}"),
            "--docker-username=puller",
            &format!("--docker-password={password}"),
        ])?)?;
    }
    let with_secret = |pod: &str, secret: Option<&str>, image: &str| {
        let mut p = pod_manifest(pod, NODE, image, "exec sleep 3600", "Always", json!({}));
        if let Some(s) = secret {
            p["spec"]["imagePullSecrets"] = json!([{"name": s}]);
        }
        p
    };
    create_pod(&ctrl, &with_secret("nosecret", None, &image))?;
    create_pod(&ctrl, &with_secret("wrongsecret", Some("wrong"), &image))?;
    // A port nothing listens on: connections are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    create_pod(
        &ctrl,
        &with_secret("refused", None, &format!("127.0.0.1:{closed}/busybox:1")),
    )?;

    // Each failure is an ErrImagePull then ImagePullBackOff ("Back-off pulling image"), and a
    // `Failed` event carrying the registry's answer, as upstream reports them.
    let failed_events = |pod: &str| -> Result<String> {
        ok(ctrl.kubectl(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod},reason=Failed"),
            "-o",
            "jsonpath={.items[*].message}",
        ])?)
    };
    for (pod, answer) in [
        ("nosecret", "pull access denied"),
        ("wrongsecret", "pull access denied"),
        ("refused", "connect"),
    ] {
        let p = wait_pod(&ctrl, &k, pod, LONG, "a pull failure", |p| {
            matches!(waiting(p).0, "ErrImagePull" | "ImagePullBackOff")
        })?;
        assert_eq!(p["status"]["phase"], "Pending", "{pod}");
        let (reason, message) = waiting(&p);
        if reason == "ImagePullBackOff" {
            assert!(message.starts_with("Back-off pulling image"), "{message}");
        }
        let events = failed_events(pod)?;
        assert!(
            events.contains("Failed to pull image") && events.to_lowercase().contains(answer),
            "{pod}: the registry's answer ({answer}) is in the Failed event: {events}"
        );
    }
    // Back-off follows the first failure, as upstream.
    wait_pod(&ctrl, &k, "wrongsecret", LONG, "ImagePullBackOff", |p| {
        waiting(p).0 == "ImagePullBackOff"
    })?;

    // The right secret pulls, and the node goes on: Ready, running pods.
    create_pod(&ctrl, &with_secret("rightsecret", Some("right"), &image))?;
    wait_pod(&ctrl, &k, "rightsecret", LONG, "Running", |p| {
        p["status"]["phase"] == "Running"
    })?;
    let node = ok(ctrl.kubectl(&["get", "node", NODE, "--no-headers"])?)?;
    assert!(node.contains(" Ready "), "{node}");
    Ok(())
}
