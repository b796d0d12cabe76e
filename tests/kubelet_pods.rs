//! Pods bound to a `bramble kubelet` node become real containers (busybox image pulled from a
//! local docker-registry) and are reported as upstream reports them.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::kubelet::{create_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::json;

#[test]
fn pod_runs_and_is_reported_running_and_ready() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "kp-run")?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "web",
            "kp-run",
            &image,
            "echo started; exec sleep 3600",
            "Always",
            json!({}),
        ),
    )?;
    let pod = wait_pod(&ctrl, &k, "web", Duration::from_secs(60), "Running", |p| {
        p["status"]["phase"] == "Running" && p["status"]["containerStatuses"][0]["ready"] == true
    })?;
    let st = &pod["status"];
    let cs = &st["containerStatuses"][0];
    assert_eq!(cs["name"], "main");
    assert_eq!(cs["started"], true);
    assert_eq!(cs["restartCount"], 0);
    assert!(cs["state"]["running"]["startedAt"].is_string());
    assert!(cs["containerID"]
        .as_str()
        .unwrap()
        .starts_with("bramble://"));
    assert_eq!(cs["image"], image);
    assert!(cs["imageID"].as_str().unwrap().contains("@sha256:"), "{cs}");
    assert_eq!(st["qosClass"], "BestEffort");
    assert_eq!(st["hostIP"], "127.0.0.1");
    assert!(st["startTime"].is_string());
    let conds: Vec<(String, String)> = st["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for t in [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ] {
        assert!(
            conds.contains(&(t.to_string(), "True".to_string())),
            "{t}: {conds:?}"
        );
    }
    let table = ok(ctrl.kubectl(&["get", "pod", "web", "--no-headers"])?)?;
    let cols: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(&cols[..4], ["web", "1/1", "Running", "0"], "{table}");
    // The process really runs, in its own cgroup under the pod's.
    let id = cs["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("bramble://");
    let procs = k
        .find_cgroup_file("pids", "cgroup.procs", id)
        .expect("container cgroup exists");
    assert!(!std::fs::read_to_string(procs)?.trim().is_empty());
    Ok(())
}
