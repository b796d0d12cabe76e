//! Container lifecycle through `bramble kubelet`: exit codes and restart counts,
//! CrashLoopBackOff timings, init containers in order, OOM kills under a memory limit, CPU
//! throttling under a cpu limit, and upstream's reasons for a missing image and a missing
//! command. Real containers from a busybox image in a local docker-registry.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use common::kubelet::{create_pod, get_pod, pod_manifest, tail, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

struct Env {
    image: String,
    ctrl: TestController,
    k: TestKubelet,
    _reg: TestRegistry,
}

fn env(node: &str) -> Result<Env> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, node)?;
    Ok(Env {
        image,
        ctrl,
        k,
        _reg: reg,
    })
}

fn secs(t: &Value) -> i64 {
    common::kubelet::rfc3339_secs(t.as_str().expect("timestamp"))
}

#[test]
fn exit_codes_restart_policies_and_init_containers() -> Result<()> {
    let e = env("kl-exit")?;
    let node = "kl-exit";
    create_pod(
        &e.ctrl,
        &pod_manifest("fail", node, &e.image, "exit 3", "Never", json!({})),
    )?;
    create_pod(
        &e.ctrl,
        &pod_manifest("done", node, &e.image, "exit 0", "OnFailure", json!({})),
    )?;
    create_pod(
        &e.ctrl,
        &pod_manifest(
            "retry",
            node,
            &e.image,
            "sleep 1; exit 2",
            "OnFailure",
            json!({}),
        ),
    )?;
    let mut init = pod_manifest(
        "init",
        node,
        &e.image,
        "exec sleep 3600",
        "Always",
        json!({}),
    );
    init["spec"]["initContainers"] = json!([
        {"name": "first", "image": e.image, "command": ["sh", "-c", "sleep 1"]},
        {"name": "second", "image": e.image, "command": ["sh", "-c", "exit 0"]},
    ]);
    create_pod(&e.ctrl, &init)?;

    let p = wait_pod(
        &e.ctrl,
        &e.k,
        "fail",
        Duration::from_secs(60),
        "Failed",
        |p| p["status"]["phase"] == "Failed",
    )?;
    let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (t["exitCode"].as_i64(), t["reason"].as_str()),
        (Some(3), Some("Error")),
        "{t}"
    );
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);

    let p = wait_pod(
        &e.ctrl,
        &e.k,
        "done",
        Duration::from_secs(60),
        "Succeeded",
        |p| p["status"]["phase"] == "Succeeded",
    )?;
    let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (t["exitCode"].as_i64(), t["reason"].as_str()),
        (Some(0), Some("Completed")),
        "{t}"
    );
    let ready = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("PodCompleted"))
    );

    // OnFailure restarts a failing container; restartCount counts the restarts and
    // lastState keeps the previous exit.
    let p = wait_pod(
        &e.ctrl,
        &e.k,
        "retry",
        Duration::from_secs(60),
        "a restart",
        |p| p["status"]["containerStatuses"][0]["restartCount"].as_i64() >= Some(1),
    )?;
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 2, "{cs}");
    assert_eq!(p["status"]["phase"], "Running");

    // Init containers ran in order, each to success, before the app container.
    let p = wait_pod(
        &e.ctrl,
        &e.k,
        "init",
        Duration::from_secs(60),
        "Running",
        |p| p["status"]["phase"] == "Running",
    )?;
    let st = &p["status"];
    let first = &st["initContainerStatuses"][0]["state"]["terminated"];
    let second = &st["initContainerStatuses"][1]["state"]["terminated"];
    assert_eq!(first["reason"], "Completed", "{st}");
    assert_eq!(second["reason"], "Completed", "{st}");
    assert!(
        secs(&second["startedAt"]) >= secs(&first["finishedAt"]),
        "{st}"
    );
    let app_start = secs(&st["containerStatuses"][0]["state"]["running"]["startedAt"]);
    assert!(app_start >= secs(&second["finishedAt"]), "{st}");
    let table = ok(e.ctrl.kubectl(&["get", "pods", "--no-headers"])?)?;
    let rows: BTreeMap<&str, Vec<&str>> = table
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[0], c)
        })
        .collect();
    assert_eq!(rows["fail"][2], "Error", "{table}");
    assert_eq!(rows["done"][2], "Completed", "{table}");
    assert_eq!(&rows["init"][1..3], ["1/1", "Running"], "{table}");
    Ok(())
}

#[test]
fn crash_loop_backoff_doubles_from_ten_seconds() -> Result<()> {
    let e = env("kl-crash")?;
    create_pod(
        &e.ctrl,
        &pod_manifest(
            "crash",
            "kl-crash",
            &e.image,
            "sleep 1; exit 1",
            "Always",
            json!({}),
        ),
    )?;
    // Every attempt seen (by containerID): (startedAt, finishedAt).
    let mut attempts: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    let mut saw_backoff_msg = None;
    let start = Instant::now();
    while attempts.len() < 4 {
        if start.elapsed() > Duration::from_secs(90) {
            bail!(
                "only {} attempts seen: {attempts:?}\n{}",
                attempts.len(),
                tail(&e.k.log(), 40)
            );
        }
        let p = get_pod(&e.ctrl, "crash")?;
        let cs = &p["status"]["containerStatuses"][0];
        for t in [&cs["state"]["terminated"], &cs["lastState"]["terminated"]] {
            if let Some(id) = t["containerID"].as_str() {
                attempts.insert(
                    id.to_string(),
                    (secs(&t["startedAt"]), secs(&t["finishedAt"])),
                );
            }
        }
        if cs["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
            if saw_backoff_msg.is_none() {
                saw_backoff_msg = cs["state"]["waiting"]["message"]
                    .as_str()
                    .map(str::to_string);
            }
            assert_eq!(p["status"]["phase"], "Running");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut runs: Vec<(i64, i64)> = attempts.into_values().collect();
    runs.sort();
    // Restart delays after each exit: immediate, then 10 s, then 20 s (second-precision
    // timestamps, plus the kubelet's 1 s relist).
    let gaps: Vec<i64> = runs.windows(2).map(|w| w[1].0 - w[0].1).collect();
    assert!(
        gaps[0] <= 2,
        "first restart is immediate: {gaps:?} {runs:?}"
    );
    assert!(
        (9..=13).contains(&gaps[1]),
        "second restart after 10 s: {gaps:?} {runs:?}"
    );
    assert!(
        (19..=23).contains(&gaps[2]),
        "third restart after 20 s: {gaps:?} {runs:?}"
    );
    let msg = saw_backoff_msg.expect("CrashLoopBackOff reported while waiting");
    // The first back-off reported is the 10 s one, in upstream's words.
    assert!(
        msg.starts_with("back-off 10s restarting failed container=main pod=crash_default("),
        "{msg}"
    );
    let table = ok(e.ctrl.kubectl(&["get", "pod", "crash", "--no-headers"])?)?;
    assert!(
        table.contains("CrashLoopBackOff") || table.contains("Error") || table.contains("Running"),
        "{table}"
    );
    Ok(())
}

#[test]
fn oom_kill_is_reported_and_cpu_limit_throttles() -> Result<()> {
    let e = env("kl-oom")?;
    let limits =
        |mem: &str, cpu: &str| json!({"resources": {"limits": {"memory": mem, "cpu": cpu}}});
    create_pod(
        &e.ctrl,
        &pod_manifest(
            "hog",
            "kl-oom",
            &e.image,
            "a=x; while :; do a=\"$a$a\"; done",
            "Always",
            limits("32Mi", "1"),
        ),
    )?;
    create_pod(
        &e.ctrl,
        &pod_manifest(
            "spin",
            "kl-oom",
            &e.image,
            "while :; do :; done",
            "Always",
            limits("64Mi", "100m"),
        ),
    )?;
    let p = wait_pod(
        &e.ctrl,
        &e.k,
        "hog",
        Duration::from_secs(90),
        "an OOM kill",
        |p| p["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"] == "OOMKilled",
    )?;
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 137, "{cs}");
    assert!(cs["restartCount"].as_i64() >= Some(1));
    assert_eq!(p["status"]["qosClass"], "Guaranteed");

    let p = wait_pod(
        &e.ctrl,
        &e.k,
        "spin",
        Duration::from_secs(60),
        "Running",
        |p| p["status"]["phase"] == "Running",
    )?;
    let id = p["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap()
        .trim_start_matches("bramble://")
        .to_string();
    std::thread::sleep(Duration::from_secs(3));
    let (stat, quota) = match e
        .k
        .find_cgroup_file("cpu", "cpu.max", &id)
        .filter(|p| p.exists())
    {
        Some(max) => (
            max.with_file_name("cpu.stat"),
            std::fs::read_to_string(max)?,
        ),
        None => {
            let q =
                e.k.find_cgroup_file("cpu", "cpu.cfs_quota_us", &id)
                    .expect("container cpu cgroup");
            (q.with_file_name("cpu.stat"), std::fs::read_to_string(q)?)
        }
    };
    assert!(quota.trim().starts_with("10000"), "quota for 100m: {quota}");
    let stat = std::fs::read_to_string(stat)?;
    let throttled: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(throttled > 0, "cpu.stat shows throttling: {stat}");
    Ok(())
}

#[test]
fn missing_image_and_missing_command_get_upstream_reasons() -> Result<()> {
    let e = env("kl-bad")?;
    let host = e.image.split('/').next().unwrap().to_string();
    create_pod(
        &e.ctrl,
        &pod_manifest(
            "noimage",
            "kl-bad",
            &format!("{host}/does-not-exist:1"),
            "true",
            "Always",
            json!({}),
        ),
    )?;
    let mut nocmd = pod_manifest("nocmd", "kl-bad", &e.image, "", "Always", json!({}));
    nocmd["spec"]["containers"][0]["command"] = json!(["/no/such/binary"]);
    create_pod(&e.ctrl, &nocmd)?;
    create_pod(
        &e.ctrl,
        &pod_manifest(
            "fine",
            "kl-bad",
            &e.image,
            "exec sleep 3600",
            "Always",
            json!({}),
        ),
    )?;

    let p = wait_pod(
        &e.ctrl,
        &e.k,
        "noimage",
        Duration::from_secs(60),
        "ErrImagePull",
        |p| p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull",
    )?;
    assert_eq!(p["status"]["phase"], "Pending");
    wait_pod(
        &e.ctrl,
        &e.k,
        "noimage",
        Duration::from_secs(60),
        "ImagePullBackOff",
        |p| p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff",
    )?;

    let p = wait_pod(
        &e.ctrl,
        &e.k,
        "nocmd",
        Duration::from_secs(60),
        "a start error",
        |p| {
            p["status"]["containerStatuses"][0]["lastState"]["terminated"]["reason"] == "StartError"
        },
    )?;
    let cs = &p["status"]["containerStatuses"][0];
    assert_eq!(cs["lastState"]["terminated"]["exitCode"], 128, "{cs}");
    let msg = cs["lastState"]["terminated"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(msg.contains("/no/such/binary"), "{msg}");
    let reason = cs["state"]["waiting"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason == "RunContainerError" || reason == "CrashLoopBackOff",
        "{cs}"
    );

    // The node goes on: another pod runs, the node stays Ready.
    wait_pod(
        &e.ctrl,
        &e.k,
        "fine",
        Duration::from_secs(60),
        "Running",
        |p| p["status"]["phase"] == "Running",
    )?;
    let node = ok(e.ctrl.kubectl(&["get", "node", "kl-bad", "--no-headers"])?)?;
    assert!(node.contains(" Ready "), "{node}");
    Ok(())
}
