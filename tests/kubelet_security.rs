//! Pod and container securityContext on a real `bramble kubelet` with real containers and
//! the real kubectl: runAsNonRoot refusing a root image with upstream's message,
//! runAsUser/runAsGroup/fsGroup/supplementalGroups seen by `id` and `stat`, no_new_privs, a
//! read-only root filesystem, capabilities in CapEff, the RuntimeDefault seccomp filter, a
//! safe sysctl, and an unsafe one rejected as SysctlForbidden.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::kubelet::{create_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

fn exec(ctrl: &TestController, pod: &str, script: &str) -> Result<String> {
    ok(ctrl.kubectl(&["exec", pod, "--", "sh", "-c", script])?)
}

fn fixture(name: &str, image: &str, node: &str) -> Result<String> {
    let path = format!("{}/tests/manifests/{name}", env!("CARGO_MANIFEST_DIR"));
    Ok(std::fs::read_to_string(path)?
        .replace("IMAGE", image)
        .replace("NODE", node))
}

fn running(p: &Value) -> bool {
    p["status"]["phase"] == "Running" && p["status"]["containerStatuses"][0]["ready"] == true
}

/// The `CapEff:` mask of a `/proc/<pid>/status` text.
fn cap_eff(status: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .expect("CapEff line")
}

#[test]
fn run_as_non_root_refuses_a_root_image() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "ks-nonroot")?;
    let mut pod = pod_manifest(
        "nonroot",
        "ks-nonroot",
        &image,
        "sleep 3600",
        "Always",
        json!({}),
    );
    pod["spec"]["securityContext"] = json!({"runAsNonRoot": true});
    create_pod(&ctrl, &pod)?;
    let p = wait_pod(
        &ctrl,
        &k,
        "nonroot",
        Duration::from_secs(60),
        "refused",
        |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                == "CreateContainerConfigError"
        },
    )?;
    let uid = p["metadata"]["uid"].as_str().unwrap();
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"nonroot_default({uid})\", container: main)"
        )
    );
    // The same pod with a non-root runAsUser runs.
    let mut pod = pod_manifest(
        "nonroot-ok",
        "ks-nonroot",
        &image,
        "id -u; sleep 3600",
        "Always",
        json!({}),
    );
    pod["spec"]["securityContext"] = json!({"runAsNonRoot": true, "runAsUser": 1234});
    create_pod(&ctrl, &pod)?;
    wait_pod(
        &ctrl,
        &k,
        "nonroot-ok",
        Duration::from_secs(60),
        "Running",
        running,
    )?;
    assert_eq!(ok(ctrl.kubectl(&["logs", "nonroot-ok"])?)?.trim(), "1234");
    Ok(())
}

#[test]
fn users_groups_and_volume_ownership() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "ks-ids")?;
    ok(ctrl.kubectl_with(
        common::KUBECTL,
        &["apply", "-f", "-"],
        Some(&fixture("security-context.yaml", &image, "ks-ids")?),
    )?)?;
    wait_pod(
        &ctrl,
        &k,
        "security-context-demo",
        Duration::from_secs(90),
        "Running",
        running,
    )?;
    let out = exec(
        &ctrl,
        "security-context-demo",
        "id -u; id -g; id -G; echo hi > /data/demo/f; stat -c '%g %a' /data/demo /data/demo/f; grep NoNewPrivs /proc/self/status",
    )?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "3000", "{out}");
    let groups: Vec<&str> = lines[2].split_whitespace().collect();
    for g in ["3000", "2000", "4000"] {
        assert!(groups.contains(&g), "{out}");
    }
    // fsGroup owns the emptyDir, setgid makes new files inherit it.
    assert_eq!(lines[3], "2000 2777", "{out}");
    assert!(lines[4].starts_with("2000 "), "{out}");
    assert!(lines[5].ends_with('1'), "{out}");
    Ok(())
}

#[test]
fn capabilities_read_only_root_seccomp_and_sysctls() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "ks-caps")?;
    ok(ctrl.kubectl_with(
        common::KUBECTL,
        &["apply", "-f", "-"],
        Some(&fixture(
            "security-context-capabilities.yaml",
            &image,
            "ks-caps",
        )?),
    )?)?;
    wait_pod(
        &ctrl,
        &k,
        "security-context-demo-4",
        Duration::from_secs(90),
        "Running",
        running,
    )?;
    let out = exec(
        &ctrl,
        "security-context-demo-4",
        "cat /proc/1/status; touch /rootfs-write 2>&1; echo rc=$?; cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
    )?;
    // drop ALL + add NET_ADMIN (12), SYS_TIME (25).
    assert_eq!(cap_eff(&out), (1 << 12) | (1 << 25), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("Seccomp:") && l.ends_with('2')),
        "{out}"
    );
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "{out}"
    );
    assert_eq!(out.lines().last().unwrap().trim(), "1024", "{out}");

    // The default set (containerd's) for a plain root container, and `unshare` refused by
    // RuntimeDefault while unconfined containers may call it.
    let mut plain = pod_manifest(
        "plain",
        "ks-caps",
        &image,
        "sleep 3600",
        "Always",
        json!({
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        }),
    );
    plain["spec"]["terminationGracePeriodSeconds"] = json!(1);
    create_pod(&ctrl, &plain)?;
    wait_pod(
        &ctrl,
        &k,
        "plain",
        Duration::from_secs(60),
        "Running",
        running,
    )?;
    let out = exec(&ctrl, "plain", "cat /proc/1/status")?;
    assert_eq!(cap_eff(&out), 0xa80425fb, "{out}");
    let out = exec(&ctrl, "plain", "unshare -U true 2>&1; echo rc=$?")?;
    assert!(
        out.contains("rc=1") && out.contains("Operation not permitted"),
        "{out}"
    );

    // Privileged: every capability the kubelet holds (containerd's
    // WithAllCurrentCapabilities); the kubelet runs as this test, so with its set.
    let priv_pod = pod_manifest(
        "priv",
        "ks-caps",
        &image,
        "sleep 3600",
        "Always",
        json!({
            "securityContext": {"privileged": true},
        }),
    );
    create_pod(&ctrl, &priv_pod)?;
    wait_pod(
        &ctrl,
        &k,
        "priv",
        Duration::from_secs(60),
        "Running",
        running,
    )?;
    let out = exec(&ctrl, "priv", "cat /proc/1/status")?;
    let own = cap_eff(&std::fs::read_to_string("/proc/self/status")?);
    assert_eq!(cap_eff(&out), own, "{out}");
    assert_ne!(
        own & (1 << 21),
        0,
        "CAP_SYS_ADMIN among the test's capabilities"
    );

    // An unsafe sysctl: the kubelet rejects the pod as upstream's does.
    let mut unsafe_pod = pod_manifest(
        "unsafe",
        "ks-caps",
        &image,
        "sleep 3600",
        "Always",
        json!({}),
    );
    unsafe_pod["spec"]["securityContext"] =
        json!({"sysctls": [{"name": "kernel.msgmax", "value": "1"}]});
    create_pod(&ctrl, &unsafe_pod)?;
    let p = wait_pod(
        &ctrl,
        &k,
        "unsafe",
        Duration::from_secs(60),
        "rejected",
        |p| p["status"]["phase"] == "Failed",
    )?;
    assert_eq!(p["status"]["reason"], "SysctlForbidden");
    assert_eq!(
        p["status"]["message"],
        "Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"
    );
    Ok(())
}
