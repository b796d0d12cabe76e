//! The kubelet records upstream's Events for what it does to pods and containers (Pulling,
//! Pulled, Created, Started, BackOff, Failed/ErrImagePull, Killing; Starting for the node),
//! as `reportingComponent: kubelet` with the container's `fieldPath`, bumps `count` for
//! repeats, and `kubectl describe pod` / `kubectl get events` show them.

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use common::kubelet::{create_pod, get_pod, pod_manifest, tail, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

fn events(ctrl: &TestController) -> Result<Vec<Value>> {
    let list: Value =
        serde_json::from_str(&ok(ctrl.kubectl(&["get", "events", "-A", "-o", "json"])?)?)?;
    Ok(list["items"].as_array().cloned().unwrap_or_default())
}

/// Polls until an event about `object` with `reason` satisfies `pred`.
fn wait_event(
    ctrl: &TestController,
    k: &TestKubelet,
    object: &str,
    reason: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < Duration::from_secs(120) {
        seen = events(ctrl)?;
        if let Some(e) = seen
            .iter()
            .find(|e| e["involvedObject"]["name"] == object && e["reason"] == reason && pred(e))
        {
            return Ok(e.clone());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let summary: Vec<String> = seen
        .iter()
        .map(|e| {
            format!(
                "{} {} {} x{} {}",
                e["involvedObject"]["name"], e["type"], e["reason"], e["count"], e["message"]
            )
        })
        .collect();
    bail!(
        "no {reason} event for {object}; events:\n{}\nkubelet log:\n{}",
        summary.join("\n"),
        tail(&k.log(), 30)
    )
}

#[test]
fn kubelet_records_upstream_events_for_pods_and_containers() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let node = "kev";
    let k = TestKubelet::start(&ctrl, node)?;

    // The node's own event.
    let starting = wait_event(&ctrl, &k, node, "Starting", |_| true)?;
    assert_eq!(starting["involvedObject"]["kind"], "Node");
    assert_eq!(starting["message"], "Starting kubelet.");
    assert_eq!(starting["source"]["component"], "kubelet");

    // A container that crashes: pulled, created, started, then backed off; repeats counted.
    create_pod(
        &ctrl,
        &pod_manifest("crash", node, &image, "exit 3", "Always", json!({})),
    )?;
    let uid = get_pod(&ctrl, "crash")?["metadata"]["uid"].clone();
    let pulling = wait_event(&ctrl, &k, "crash", "Pulling", |_| true)?;
    assert_eq!(pulling["message"], format!("Pulling image \"{image}\""));
    assert_eq!(pulling["type"], "Normal");
    let pulled = wait_event(&ctrl, &k, "crash", "Pulled", |_| true)?;
    assert!(
        pulled["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("Successfully pulled image \"{image}\" in ")),
        "{pulled}"
    );
    let created = wait_event(&ctrl, &k, "crash", "Created", |_| true)?;
    assert_eq!(created["message"], "Created container: main");
    let io = &created["involvedObject"];
    assert_eq!(io["kind"], "Pod");
    assert_eq!(io["apiVersion"], "v1");
    assert_eq!(io["namespace"], "default");
    assert_eq!(io["uid"], uid);
    assert_eq!(io["fieldPath"], "spec.containers{main}");
    assert_eq!(created["reportingComponent"], "kubelet");
    assert_eq!(created["reportingInstance"], node);
    assert_eq!(created["source"]["component"], "kubelet");
    assert_eq!(created["source"]["host"], node);
    assert_eq!(created["metadata"]["namespace"], "default");
    assert!(created["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("crash."));
    wait_event(&ctrl, &k, "crash", "Started", |e| {
        e["message"] == "Started container main"
    })?;
    let backoff = wait_event(&ctrl, &k, "crash", "BackOff", |_| true)?;
    assert_eq!(backoff["type"], "Warning");
    let msg = backoff["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Back-off restarting failed container main in pod crash_default("),
        "{msg}"
    );
    // The second start is the same event again: one object, count 2, lastTimestamp moved on.
    let again = wait_event(&ctrl, &k, "crash", "Started", |e| {
        e["count"].as_i64() >= Some(2)
    })?;
    assert_eq!(again["metadata"]["name"], {
        let first = events(&ctrl)?
            .into_iter()
            .filter(|e| e["involvedObject"]["name"] == "crash" && e["reason"] == "Started")
            .collect::<Vec<_>>();
        assert_eq!(first.len(), 1, "repeats are one event object: {first:?}");
        first[0]["metadata"]["name"].clone()
    });
    // Restarts can come within one second (the first restart has no back-off).
    assert!(again["lastTimestamp"].as_str() >= again["firstTimestamp"].as_str());
    // Now the already-present message.
    wait_event(&ctrl, &k, "crash", "Pulled", |e| {
        e["message"] == format!("Container image \"{image}\" already present on machine")
    })?;

    // An image that does not exist: Failed (the pull error, then "Error: ErrImagePull"),
    // then the pull back-off.
    let missing = format!("{}/nothere:1", reg.host());
    create_pod(
        &ctrl,
        &pod_manifest("noimg", node, &missing, "true", "Always", json!({})),
    )?;
    let failed = wait_event(&ctrl, &k, "noimg", "Failed", |e| {
        e["message"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("Failed to pull image \"{missing}\": "))
    })?;
    assert_eq!(failed["type"], "Warning");
    assert_eq!(
        failed["involvedObject"]["fieldPath"],
        "spec.containers{main}"
    );
    wait_event(&ctrl, &k, "noimg", "Failed", |e| {
        e["message"] == "Error: ErrImagePull"
    })?;
    wait_event(&ctrl, &k, "noimg", "BackOff", |e| {
        e["message"] == format!("Back-off pulling image \"{missing}\"")
    })?;
    wait_event(&ctrl, &k, "noimg", "Failed", |e| {
        e["message"] == "Error: ImagePullBackOff"
    })?;

    // Deleting a running pod: Killing.
    create_pod(
        &ctrl,
        &pod_manifest("web", node, &image, "exec sleep 3600", "Always", json!({})),
    )?;
    wait_event(&ctrl, &k, "web", "Started", |_| true)?;
    ok(ctrl.kubectl(&["delete", "pod", "web", "--wait=false"])?)?;
    let killing = wait_event(&ctrl, &k, "web", "Killing", |_| true)?;
    assert_eq!(killing["message"], "Stopping container main");
    assert_eq!(killing["type"], "Normal");

    // What users read: describe's Events table and get events.
    let describe = ok(ctrl.kubectl(&["describe", "pod", "crash"])?)?;
    let section = describe
        .split("Events:")
        .nth(1)
        .unwrap_or_else(|| panic!("no Events section:\n{describe}"));
    for want in [
        "Pulled",
        "Created",
        "Started",
        "BackOff",
        "kubelet",
        "Back-off restarting failed container main in pod crash_default(",
    ] {
        assert!(section.contains(want), "{want} missing:\n{section}");
    }
    let table = ok(ctrl.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=noimg",
    ])?)?;
    assert!(table.contains("pod/noimg"), "{table}");
    assert!(table.contains("Error: ErrImagePull"), "{table}");
    Ok(())
}
