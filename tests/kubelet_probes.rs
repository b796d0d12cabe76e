//! Liveness, readiness and startup probes on real containers (busybox from a local
//! registry), observed with the real kubectl: a failing liveness probe restarts the
//! container with events, an httpGet readiness probe (named port, inside the pod's network
//! namespace) flips Ready both ways, and a startup probe holds readiness back.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::kubelet::{create_pod, pod_manifest, rfc3339_secs, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

fn condition<'a>(p: &'a Value, t: &str) -> &'a Value {
    p["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == t))
        .map(|c| &c["status"])
        .unwrap_or(&Value::Null)
}

fn events(ctrl: &TestController, pod: &str) -> Result<Vec<(String, String)>> {
    let out = ok(ctrl.kubectl(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
        "-o",
        "json",
    ])?)?;
    let v: Value = serde_json::from_str(&out)?;
    Ok(v["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect())
}

fn wait_events(
    ctrl: &TestController,
    pod: &str,
    pred: impl Fn(&[(String, String)]) -> bool,
) -> Result<Vec<(String, String)>> {
    let start = std::time::Instant::now();
    loop {
        let evs = events(ctrl, pod)?;
        if pred(&evs) {
            return Ok(evs);
        }
        if start.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("events of {pod} never matched: {evs:?}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn liveness_failure_restarts_the_container() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "probe-live")?;
    // Healthy for 6 s, then the file the probe reads disappears.
    let mut pod = pod_manifest(
        "live",
        "probe-live",
        &image,
        "touch /tmp/healthy; sleep 6; rm -f /tmp/healthy; exec sleep 3600",
        "Always",
        json!({"livenessProbe": {
            "exec": {"command": ["cat", "/tmp/healthy"]},
            "initialDelaySeconds": 1, "periodSeconds": 1, "failureThreshold": 2,
            "terminationGracePeriodSeconds": 1
        }}),
    );
    pod["spec"]["terminationGracePeriodSeconds"] = json!(30);
    create_pod(&ctrl, &pod)?;
    let p = wait_pod(
        &ctrl,
        &k,
        "live",
        Duration::from_secs(120),
        "restarted",
        |p| {
            p["status"]["containerStatuses"][0]["restartCount"]
                .as_i64()
                .is_some_and(|n| n >= 1)
                && p["status"]["containerStatuses"][0]["state"]["running"].is_object()
        },
    )?;
    let cs = &p["status"]["containerStatuses"][0];
    let last = &cs["lastState"]["terminated"];
    // The first container lived through its healthy 6 s plus two failed probes, and was
    // killed by the kubelet (a signal, not an exit of its own).
    let lived = rfc3339_secs(last["finishedAt"].as_str().unwrap())
        - rfc3339_secs(last["startedAt"].as_str().unwrap());
    assert!(lived >= 6, "killed after {lived}s: {last}");
    assert_ne!(last["exitCode"], 0, "{last}");
    // The new container started after the old one ended.
    let restarted = rfc3339_secs(cs["state"]["running"]["startedAt"].as_str().unwrap());
    assert!(restarted >= rfc3339_secs(last["finishedAt"].as_str().unwrap()));
    let evs = wait_events(&ctrl, "live", |evs| {
        evs.iter().any(|(r, _)| r == "Killing") && evs.iter().any(|(r, _)| r == "Unhealthy")
    })?;
    assert!(
        evs.iter()
            .any(|(r, m)| r == "Unhealthy" && m.starts_with("Liveness probe failed:")),
        "{evs:?}"
    );
    assert!(
        evs.iter().any(|(r, m)| r == "Killing"
            && m == "Container main failed liveness probe, will be restarted"),
        "{evs:?}"
    );
    // The restarted container is probed afresh: healthy again, it keeps running.
    let p = wait_pod(
        &ctrl,
        &k,
        "live",
        Duration::from_secs(60),
        "second run",
        |p| {
            p["status"]["containerStatuses"][0]["restartCount"]
                .as_i64()
                .is_some_and(|n| n >= 2)
        },
    )?;
    let cs = &p["status"]["containerStatuses"][0];
    // The probe ran in the second container, not in the first one's namespaces (the helper
    // keeps each container's namespaces for exec probes): it found that container's own
    // /tmp/healthy for its first 6 s.
    let second = &cs["lastState"]["terminated"];
    let lived = rfc3339_secs(second["finishedAt"].as_str().unwrap())
        - rfc3339_secs(second["startedAt"].as_str().unwrap());
    assert!(
        lived >= 6,
        "second container killed after {lived}s: {second}"
    );
    // Back-off applies from the second restart on: at least 10 s between the second
    // container's death and the third's start.
    if let (Some(fin), Some(start)) = (
        cs["lastState"]["terminated"]["finishedAt"].as_str(),
        cs["state"]["running"]["startedAt"].as_str(),
    ) {
        assert!(rfc3339_secs(start) - rfc3339_secs(fin) >= 9, "{cs}");
    }
    Ok(())
}

#[test]
fn readiness_http_probe_flips_ready() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "probe-ready")?;
    // httpd serves /www inside the pod's network namespace: 404 until index.html exists,
    // then 200, then 404 again.
    let script = "mkdir -p /www; httpd -p 8080 -h /www; sleep 5; echo ok > /www/index.html; \
                  sleep 25; rm /www/index.html; exec sleep 3600";
    create_pod(
        &ctrl,
        &pod_manifest(
            "ready",
            "probe-ready",
            &image,
            script,
            "Always",
            json!({
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {
                    "httpGet": {"path": "/index.html", "port": "http",
                                "httpHeaders": [{"name": "X-Check", "value": "1"}]},
                    "periodSeconds": 1, "failureThreshold": 1
                }
            }),
        ),
    )?;
    let p = wait_pod(
        &ctrl,
        &k,
        "ready",
        Duration::from_secs(60),
        "running, not ready",
        |p| p["status"]["phase"] == "Running",
    )?;
    // Not ready before the first success.
    let started = rfc3339_secs(
        p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
            .as_str()
            .unwrap(),
    );
    let p = wait_pod(&ctrl, &k, "ready", Duration::from_secs(60), "Ready", |p| {
        condition(p, "Ready") == "True"
    })?;
    assert_eq!(condition(&p, "ContainersReady"), "True");
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], true);
    let ready_at = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(rfc3339_secs)
        .unwrap();
    assert!(
        ready_at >= started + 4,
        "ready at {ready_at}, started {started}"
    );
    let table = ok(ctrl.kubectl(&["get", "pod", "ready", "--no-headers"])?)?;
    assert!(table.contains("1/1"), "{table}");
    let p = wait_pod(
        &ctrl,
        &k,
        "ready",
        Duration::from_secs(90),
        "unready again",
        |p| condition(p, "Ready") == "False",
    )?;
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], false);
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
    let evs = wait_events(&ctrl, "ready", |evs| {
        evs.iter().any(|(r, _)| r == "Unhealthy")
    })?;
    assert!(
        evs.iter().any(|(r, m)| r == "Unhealthy"
            && m == "Readiness probe failed: HTTP probe failed with statuscode: 404"),
        "{evs:?}"
    );
    Ok(())
}

#[test]
fn startup_probe_holds_readiness_and_liveness_back() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "probe-start")?;
    // The app "starts" after 6 s (opens its port); the liveness probe would fail until then
    // and must not run before the startup probe succeeds.
    let script = "sleep 6; exec httpd -f -p 9000 -h /tmp";
    create_pod(
        &ctrl,
        &pod_manifest(
            "slow",
            "probe-start",
            &image,
            script,
            "Always",
            json!({
                "startupProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1, "failureThreshold": 60},
                "livenessProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1, "failureThreshold": 1},
                "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}
            }),
        ),
    )?;
    let p = wait_pod(&ctrl, &k, "slow", Duration::from_secs(60), "running", |p| {
        p["status"]["phase"] == "Running"
    })?;
    let cs = &p["status"]["containerStatuses"][0];
    let started_at = rfc3339_secs(cs["state"]["running"]["startedAt"].as_str().unwrap());
    if cs["started"] == false {
        assert_eq!(cs["ready"], false, "{cs}");
    }
    let p = wait_pod(
        &ctrl,
        &k,
        "slow",
        Duration::from_secs(60),
        "started and ready",
        |p| {
            p["status"]["containerStatuses"][0]["started"] == true
                && condition(p, "Ready") == "True"
        },
    )?;
    let ready_at = p["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(rfc3339_secs)
        .unwrap();
    assert!(
        ready_at >= started_at + 5,
        "ready {ready_at} started {started_at}"
    );
    // Liveness (failureThreshold 1) was held back while the port was closed: no restart.
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
    std::thread::sleep(Duration::from_secs(3));
    let p = common::kubelet::get_pod(&ctrl, "slow")?;
    assert_eq!(
        p["status"]["containerStatuses"][0]["restartCount"],
        0,
        "{}",
        k.log()
    );
    Ok(())
}

/// A fixture of tests/manifests with IMAGE and NODE filled in.
fn fixture(name: &str, image: &str, node: &str) -> Result<String> {
    let path = format!("{}/tests/manifests/{name}", env!("CARGO_MANIFEST_DIR"));
    Ok(std::fs::read_to_string(path)?
        .replace("IMAGE", image)
        .replace("NODE", node))
}

#[test]
fn documentation_probe_manifests() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let node = "probe-docs";
    let k = TestKubelet::start(&ctrl, node)?;
    for f in ["probe-liveness-exec.yaml", "probe-tcp-http.yaml"] {
        ok(ctrl.kubectl_with(
            common::KUBECTL,
            &["apply", "-f", "-"],
            Some(&fixture(f, &image, node)?),
        )?)?;
    }
    // httpGet on a named port with headers, tcpSocket readiness, httpGet startup: Ready.
    let p = wait_pod(
        &ctrl,
        &k,
        "probe-web",
        Duration::from_secs(90),
        "Ready",
        |p| condition(p, "Ready") == "True",
    )?;
    assert_eq!(p["status"]["containerStatuses"][0]["started"], true);
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
    // The documentation's liveness-exec pod is restarted once /tmp/healthy is gone.
    wait_pod(
        &ctrl,
        &k,
        "liveness-exec",
        Duration::from_secs(120),
        "restarted",
        |p| {
            p["status"]["containerStatuses"][0]["restartCount"]
                .as_i64()
                .is_some_and(|n| n >= 1)
        },
    )?;
    let p = common::kubelet::get_pod(&ctrl, "probe-web")?;
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
    Ok(())
}
