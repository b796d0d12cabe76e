//! Containers outlive a killed `bramble kubelet`, which adopts them on restart and learns
//! exit codes that happened while it was down; `kubectl delete pod` terminates gracefully
//! (preStop hook, SIGTERM, grace period, SIGKILL) and the kubelet then deletes the object.

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use common::kubelet::{create_pod, get_pod, pod_manifest, tail, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::TestController;
use serde_json::json;

fn container_id(p: &serde_json::Value) -> String {
    p["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("bramble://")
        .to_string()
}

#[test]
fn containers_survive_a_kubelet_kill_and_exit_codes_are_learned() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let mut k = TestKubelet::start(&ctrl, "kr-restart")?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "long",
            "kr-restart",
            &image,
            "exec sleep 3600",
            "Always",
            json!({}),
        ),
    )?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "short",
            "kr-restart",
            &image,
            "sleep 6; exit 7",
            "Never",
            json!({}),
        ),
    )?;
    let running = |p: &serde_json::Value| p["status"]["phase"] == "Running";
    let long = wait_pod(
        &ctrl,
        &k,
        "long",
        Duration::from_secs(60),
        "Running",
        running,
    )?;
    wait_pod(
        &ctrl,
        &k,
        "short",
        Duration::from_secs(60),
        "Running",
        running,
    )?;
    let long_id = container_id(&long);
    let procs = k
        .find_cgroup_file("pids", "cgroup.procs", &long_id)
        .expect("cgroup");

    k.kill();
    std::thread::sleep(Duration::from_secs(8));
    // Nobody watches the containers now, yet the long one runs on.
    assert!(
        !std::fs::read_to_string(&procs)?.trim().is_empty(),
        "container died with the kubelet"
    );
    let short = get_pod(&ctrl, "short")?;
    assert_eq!(
        short["status"]["phase"], "Running",
        "nobody reported the exit yet"
    );

    k.spawn()?;
    let short = wait_pod(&ctrl, &k, "short", Duration::from_secs(60), "Failed", |p| {
        p["status"]["phase"] == "Failed"
    })?;
    let t = &short["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 7, "{t}");
    assert_eq!(t["reason"], "Error");
    let long = get_pod(&ctrl, "long")?;
    assert_eq!(long["status"]["phase"], "Running");
    assert_eq!(container_id(&long), long_id, "adopted, not restarted");
    assert_eq!(long["status"]["containerStatuses"][0]["restartCount"], 0);
    assert!(!std::fs::read_to_string(&procs)?.trim().is_empty());
    Ok(())
}

fn wait_gone(ctrl: &TestController, k: &TestKubelet, name: &str, limit: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let out = ctrl.kubectl(&["get", "pod", name, "-o", "name"])?;
        if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("NotFound") {
            return Ok(());
        }
        if start.elapsed() > limit {
            bail!(
                "pod {name} still exists after {limit:?}\n{}",
                tail(&k.log(), 30)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kubectl_delete_runs_pre_stop_then_sigterm_and_removes_the_pod() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "kr-delete")?;
    let graceful = pod_manifest(
        "graceful",
        "kr-delete",
        &image,
        "trap 'echo got-term; sleep 1; exit 0' TERM; echo ready; while :; do sleep 0.2; done",
        "Always",
        json!({"lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo prestop-ran > /proc/1/fd/1"]}}}}),
    );
    create_pod(&ctrl, &graceful)?;
    // PID 1 without a handler ignores SIGTERM: only SIGKILL after the grace period ends it.
    let mut stubborn = pod_manifest(
        "stubborn",
        "kr-delete",
        &image,
        "while :; do sleep 0.2; done",
        "Always",
        json!({}),
    );
    stubborn["spec"]["terminationGracePeriodSeconds"] = json!(3);
    create_pod(&ctrl, &stubborn)?;
    let running = |p: &serde_json::Value| p["status"]["phase"] == "Running";
    let p = wait_pod(
        &ctrl,
        &k,
        "graceful",
        Duration::from_secs(60),
        "Running",
        running,
    )?;
    wait_pod(
        &ctrl,
        &k,
        "stubborn",
        Duration::from_secs(60),
        "Running",
        running,
    )?;
    let uid = p["metadata"]["uid"].as_str().unwrap();
    let log = k
        .dir
        .path()
        .join(format!("kubelet/pods/default_graceful_{uid}/main/0.log"));

    common::ok(ctrl.kubectl(&["delete", "pod", "graceful", "--wait=false"])?)?;
    let start = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("got-term") {
            break text;
        }
        if start.elapsed() > Duration::from_secs(15) {
            bail!(
                "no SIGTERM seen in {}: {text}\n{}",
                log.display(),
                tail(&k.log(), 30)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let hook = text
        .find("prestop-ran")
        .expect("preStop hook output in the log");
    assert!(
        hook < text.find("got-term").unwrap(),
        "preStop runs before SIGTERM:\n{text}"
    );
    wait_gone(&ctrl, &k, "graceful", Duration::from_secs(20))?;

    let start = Instant::now();
    common::ok(ctrl.kubectl(&["delete", "pod", "stubborn", "--wait=false"])?)?;
    wait_gone(&ctrl, &k, "stubborn", Duration::from_secs(30))?;
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "SIGKILL came only after the grace period"
    );
    Ok(())
}
