//! Node-pressure eviction with real pods: thresholds set for the test (the allocatable
//! memory of the node reserved down to 400Mi, `memory.available<300Mi`), a BestEffort pod
//! that fills its tmpfs mounts with ~120MB, a Guaranteed pod beside it. The BestEffort pod
//! is evicted (phase Failed, reason Evicted, upstream's message, an Evicted event), the
//! node reports MemoryPressure, and the Guaranteed pod keeps running.

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use common::kubelet::{create_pod, get_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

fn mem_total_mi() -> u64 {
    let m = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let kb: u64 = m
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("MemTotal");
    kb / 1024
}

fn condition(node: &Value, t: &str) -> String {
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == t))
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn best_effort_is_evicted_before_guaranteed_under_memory_pressure() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("kubelet.yaml");
    // Pods together may use 400Mi; below 300Mi of that available the node is under
    // memory pressure (upstream's allocatable memory signal).
    let reserved = mem_total_mi() - 400;
    std::fs::write(
        &file,
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\n\
             kind: KubeletConfiguration\n\
             systemReserved: {{memory: {reserved}Mi}}\n\
             evictionHard: {{memory.available: 300Mi}}\n\
             evictionPressureTransitionPeriod: 60s\n"
        ),
    )?;
    let node = "ev-node";
    let k = TestKubelet::start_with_args(
        &ctrl,
        node,
        &["--config".into(), file.display().to_string()],
    )?;
    let resources = json!({"requests": {"cpu": "100m", "memory": "64Mi"},
                           "limits": {"cpu": "100m", "memory": "64Mi"}});
    create_pod(
        &ctrl,
        &pod_manifest(
            "guaranteed",
            node,
            &image,
            "exec sleep 3600",
            "Always",
            json!({"resources": resources}),
        ),
    )?;
    wait_pod(
        &ctrl,
        &k,
        "guaranteed",
        Duration::from_secs(90),
        "Running",
        |p| p["status"]["phase"] == "Running",
    )?;
    let g = get_pod(&ctrl, "guaranteed")?;
    assert_eq!(g["status"]["qosClass"], "Guaranteed");
    // Two 64MB tmpfs mounts (/dev and /dev/shm) filled: ~120MB of shared memory charged to
    // the pod.
    create_pod(
        &ctrl,
        &pod_manifest(
            "besteffort",
            node,
            &image,
            "dd if=/dev/zero of=/dev/shm/fill bs=1M count=60; dd if=/dev/zero of=/dev/fill bs=1M count=60; exec sleep 3600",
            "Always",
            json!({}),
        ),
    )?;
    let evicted = wait_pod(
        &ctrl,
        &k,
        "besteffort",
        Duration::from_secs(120),
        "evicted",
        |p| p["status"]["reason"] == "Evicted",
    )?;
    assert_eq!(evicted["status"]["phase"], "Failed", "{evicted}");
    assert_eq!(evicted["status"]["qosClass"], "BestEffort");
    let message = evicted["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "The node was low on resource: memory. Threshold quantity: 300Mi, available: "
        ),
        "{message}"
    );
    assert!(
        message.contains("Container main was using ") && message.contains("request is 0"),
        "{message}"
    );
    // MemoryPressure is reported (held for the transition period).
    let start = Instant::now();
    loop {
        let n: Value =
            serde_json::from_str(&ok(ctrl.kubectl(&["get", "node", node, "-o", "json"])?)?)?;
        if condition(&n, "MemoryPressure") == "True" {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!(
                "MemoryPressure never reported: {}",
                n["status"]["conditions"]
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // The Evicted event.
    let start = Instant::now();
    loop {
        let ev: Value =
            serde_json::from_str(&ok(ctrl.kubectl(&["get", "events", "-o", "json"])?)?)?;
        let found = ev["items"].as_array().into_iter().flatten().any(|e| {
            e["reason"] == "Evicted"
                && e["involvedObject"]["name"] == "besteffort"
                && e["type"] == "Warning"
        });
        if found {
            break;
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("no Evicted event: {ev}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // With the BestEffort pod gone the pressure is relieved: the Guaranteed pod survives
    // further monitoring intervals and is not restarted.
    std::thread::sleep(Duration::from_secs(25));
    let g = get_pod(&ctrl, "guaranteed")?;
    assert_eq!(g["status"]["phase"], "Running", "{}", g["status"]);
    assert_eq!(g["status"]["containerStatuses"][0]["restartCount"], 0);
    let be = get_pod(&ctrl, "besteffort")?;
    assert_eq!(
        be["status"]["phase"], "Failed",
        "evicted pods are not restarted"
    );
    Ok(())
}

/// A pod writing past its disk emptyDir's `sizeLimit` is evicted with upstream's message,
/// without any node pressure; a pod within its limit keeps running.
#[test]
fn empty_dir_over_its_size_limit_evicts_the_pod() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "storage-node")?;
    let with_cache = |name: &str, mib: u32| {
        let mut p = pod_manifest(
            name,
            &k.node,
            &image,
            &format!("dd if=/dev/zero of=/cache/fill bs=1048576 count={mib}; sleep 3600"),
            "Always",
            json!({"volumeMounts": [{"name": "cache", "mountPath": "/cache"}]}),
        );
        p["spec"]["volumes"] = json!([{"name": "cache", "emptyDir": {"sizeLimit": "2Mi"}}]);
        p
    };
    create_pod(&ctrl, &with_cache("over", 4))?;
    create_pod(&ctrl, &with_cache("within", 1))?;
    let pod = wait_pod(
        &ctrl,
        &k,
        "over",
        Duration::from_secs(120),
        "evicted",
        |p| p["status"]["phase"] == "Failed",
    )?;
    assert_eq!(pod["status"]["reason"], "Evicted", "{pod}");
    assert_eq!(
        pod["status"]["message"], "Usage of EmptyDir volume \"cache\" exceeds the limit \"2Mi\". ",
        "{pod}"
    );
    let events = ok(ctrl.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=over,reason=Evicted",
        "-o",
        "name",
    ])?)?;
    assert!(!events.trim().is_empty(), "no Evicted event");
    wait_pod(
        &ctrl,
        &k,
        "within",
        Duration::from_secs(60),
        "Running",
        |p| p["status"]["phase"] == "Running",
    )?;
    // a monitoring pass later it is still running
    std::thread::sleep(Duration::from_secs(11));
    let within = get_pod(&ctrl, "within")?;
    assert_eq!(within["status"]["phase"], "Running", "{within}");
    Ok(())
}

/// The `DisruptionTarget` condition, which upstream's local storage evictions do not set.
fn has_disruption_target(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "DisruptionTarget")
}

fn evicted_event(ctrl: &TestController, pod: &str) -> Result<Value> {
    let start = Instant::now();
    loop {
        let ev: Value = serde_json::from_str(&ok(ctrl.kubectl(&[
            "get",
            "events",
            "--field-selector",
            &format!("involvedObject.name={pod},reason=Evicted"),
            "-o",
            "json",
        ])?)?)?;
        let items = ev["items"].as_array().cloned().unwrap_or_default();
        if items.len() > 1 {
            bail!("{} Evicted events for {pod}: {ev}", items.len());
        }
        if let Some(e) = items.into_iter().next() {
            return Ok(e);
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("no Evicted event for {pod}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Container and pod `ephemeral-storage` limits on a kubelet whose disk-pressure
/// thresholds are off (the harness's default): a container writing 4MiB into its root
/// filesystem past its 2Mi limit (its pod within the sum of its containers' limits), a
/// one-container pod doing the same, and a pod whose emptyDir and a container's writes exceed
/// the sum of its containers' limits while each container stays within its own, are
/// evicted with upstream's messages and an Evicted event; a pod within its limits runs on.
#[test]
fn ephemeral_storage_limits_evict_containers_and_pods() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "ephemeral-node")?;
    let limit = |l: &str| json!({"resources": {"limits": {"ephemeral-storage": l}}});
    let fill = |path: &str, kib: u32| {
        format!("dd if=/dev/zero of={path} bs=1024 count={kib}; sync; exec sleep 3600")
    };
    // main writes 4MiB past its 2Mi; a sidecar's 8Mi keeps the pod's limit (10Mi) above
    // the pod's usage. (In a one-container pod the pod's limit is the container's and the
    // pod check, which upstream runs first, names the pod.)
    let mut rootfs_over = pod_manifest(
        "rootfs-over",
        &k.node,
        &image,
        &fill("/fill", 4096),
        "Always",
        limit("2Mi"),
    );
    rootfs_over["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(
            json!({"name": "side", "image": image, "command": ["sleep", "3600"],
                     "resources": {"limits": {"ephemeral-storage": "8Mi"}}}),
        );
    create_pod(&ctrl, &rootfs_over)?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "single-over",
            &k.node,
            &image,
            &fill("/fill", 4096),
            "Always",
            limit("2Mi"),
        ),
    )?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "rootfs-within",
            &k.node,
            &image,
            &fill("/fill", 1024),
            "Always",
            limit("8Mi"),
        ),
    )?;
    // Pod limit 2Mi + 2Mi: 3MiB in the emptyDir (no sizeLimit) written by main, 1.5MiB in
    // side's root filesystem: 4.5MiB in all, each container within its own 2Mi.
    let mut pod = pod_manifest(
        "pod-over",
        &k.node,
        &image,
        &fill("/cache/fill", 3072),
        "Always",
        json!({"resources": {"limits": {"ephemeral-storage": "2Mi"}},
               "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]}),
    );
    pod["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(
            json!({"name": "side", "image": image, "command": ["sh", "-c", fill("/fill", 1536)],
                     "resources": {"limits": {"ephemeral-storage": "2Mi"}}}),
        );
    pod["spec"]["volumes"] = json!([{"name": "cache", "emptyDir": {}}]);
    create_pod(&ctrl, &pod)?;

    let over = wait_pod(
        &ctrl,
        &k,
        "rootfs-over",
        Duration::from_secs(120),
        "evicted",
        |p| p["status"]["phase"] == "Failed",
    )?;
    assert_eq!(over["status"]["reason"], "Evicted", "{over}");
    assert_eq!(
        over["status"]["message"],
        "Container main exceeded its local ephemeral storage limit \"2Mi\". ",
        "{over}"
    );
    assert!(!has_disruption_target(&over), "{}", over["status"]);
    let ev = evicted_event(&ctrl, "rootfs-over")?;
    assert_eq!(ev["type"], "Warning", "{ev}");
    assert_eq!(ev["message"], over["status"]["message"], "{ev}");

    let pod_over = wait_pod(
        &ctrl,
        &k,
        "pod-over",
        Duration::from_secs(120),
        "evicted",
        |p| p["status"]["phase"] == "Failed",
    )?;
    assert_eq!(pod_over["status"]["reason"], "Evicted", "{pod_over}");
    assert_eq!(
        pod_over["status"]["message"],
        "Pod ephemeral local storage usage exceeds the total limit of containers 4Mi. ",
        "{pod_over}"
    );
    evicted_event(&ctrl, "pod-over")?;
    let single = wait_pod(
        &ctrl,
        &k,
        "single-over",
        Duration::from_secs(120),
        "evicted",
        |p| p["status"]["phase"] == "Failed",
    )?;
    assert_eq!(
        single["status"]["message"],
        "Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. ",
        "{single}"
    );

    // Evicted pods are not restarted, and the pod within its limit survives further
    // monitoring passes.
    wait_pod(
        &ctrl,
        &k,
        "rootfs-within",
        Duration::from_secs(60),
        "Running",
        |p| p["status"]["phase"] == "Running",
    )?;
    std::thread::sleep(Duration::from_secs(21));
    let within = get_pod(&ctrl, "rootfs-within")?;
    assert_eq!(within["status"]["phase"], "Running", "{within}");
    assert_eq!(within["status"]["containerStatuses"][0]["restartCount"], 0);
    for name in ["rootfs-over", "pod-over", "single-over"] {
        let p = get_pod(&ctrl, name)?;
        assert_eq!(p["status"]["phase"], "Failed", "{name}: {}", p["status"]);
        // Evicted once: later passes do not check an evicted pod again.
        let ev = evicted_event(&ctrl, name)?;
        assert_eq!(ev["count"].as_i64().unwrap_or(1), 1, "{ev}");
    }
    Ok(())
}
