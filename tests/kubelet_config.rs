//! `bramble kubelet --config FILE`: a KubeletConfiguration file is loaded (flags override
//! it), its reservations and eviction thresholds shape the Node's allocatable, and a bad
//! field is refused with an error naming it.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use common::kubelet::TestKubelet;
use common::{bramble_bin, TestController};
use serde_json::Value;

/// `1234Ki` / `5Mi` / plain bytes / `3500m` / `4` as an integer in base units (milli for
/// cpu when `milli`).
fn quantity(v: &Value, milli: bool) -> i64 {
    let s = v.as_str().unwrap_or_default();
    let (num, mult) = if let Some(n) = s.strip_suffix("Ki") {
        (n, 1024)
    } else if let Some(n) = s.strip_suffix("Mi") {
        (n, 1 << 20)
    } else if let Some(n) = s.strip_suffix("Gi") {
        (n, 1 << 30)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1)
    } else if milli {
        (s, 1000)
    } else {
        (s, 1)
    };
    num.parse::<i64>()
        .unwrap_or_else(|_| panic!("quantity {s}"))
        * mult
}

fn wait_node(ctrl: &TestController, k: &TestKubelet) -> Result<Value> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        let out = ctrl.kubectl(&["get", "node", &k.node, "-o", "json"])?;
        if out.status.success() {
            let n: Value = serde_json::from_slice(&out.stdout)?;
            if n["status"]["allocatable"]["memory"].is_string() {
                return Ok(n);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("node {} never reported allocatable:\n{}", k.node, k.log())
}

#[test]
fn config_file_reservations_shape_allocatable_and_flags_override() -> Result<()> {
    let ctrl = TestController::start()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("kubelet.yaml");
    std::fs::write(
        &file,
        "apiVersion: kubelet.config.k8s.io/v1beta1\n\
         kind: KubeletConfiguration\n\
         maxPods: 42\n\
         kubeReserved: {cpu: 200m, memory: 256Mi}\n\
         systemReserved:\n  memory: 128Mi\n  ephemeral-storage: 1Gi\n\
         evictionHard:\n  memory.available: 300Mi\n  nodefs.available: 10%\n\
         registerWithTaints:\n- key: example.com/config\n  value: file\n  effect: PreferNoSchedule\n",
    )?;
    let k = TestKubelet::start_with_args(
        &ctrl,
        "kc-node",
        &[
            "--config".into(),
            file.display().to_string(),
            "--max-pods".into(),
            "50".into(),
        ],
    )?;
    let node = wait_node(&ctrl, &k)?;
    let cap = &node["status"]["capacity"];
    let alloc = &node["status"]["allocatable"];
    assert_eq!(cap["pods"], "50", "{node}");
    assert_eq!(alloc["pods"], "50");
    let mem_diff = quantity(&cap["memory"], false) - quantity(&alloc["memory"], false);
    assert_eq!(mem_diff, (256 + 128 + 300) << 20, "{cap} {alloc}");
    let cpu_diff = quantity(&cap["cpu"], true) - quantity(&alloc["cpu"], true);
    assert_eq!(cpu_diff, 200, "{cap} {alloc}");
    let storage_cap = quantity(&cap["ephemeral-storage"], false);
    let storage_alloc = quantity(&alloc["ephemeral-storage"], false);
    let expected = storage_cap - (1 << 30) - storage_cap / 10;
    assert!(
        (storage_alloc - expected).abs() <= 1024,
        "ephemeral-storage {storage_alloc} vs {expected}"
    );
    let taints = node["spec"]["taints"].to_string();
    assert!(taints.contains("example.com/config"), "{taints}");
    Ok(())
}

fn kubelet_with_config(yaml: &str) -> Result<(bool, String)> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("kubelet.yaml");
    std::fs::write(&file, yaml)?;
    let out = Command::new(bramble_bin())
        .arg("kubelet")
        .args(["--node-name", "never-started"])
        .arg("--kubeconfig")
        .arg(dir.path().join("unused-kubeconfig"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&file)
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn bad_config_fields_are_named() -> Result<()> {
    let (success, err) = kubelet_with_config("evictionHard:\n  memory.available: 12Zi\n")?;
    assert!(!success);
    assert!(
        err.contains("evictionHard[memory.available]: invalid quantity \"12Zi\""),
        "{err}"
    );
    let (success, err) = kubelet_with_config("maxPods: 10\nnotAField: true\n")?;
    assert!(!success);
    assert!(err.contains("unknown field `notAField`"), "{err}");
    let (success, err) = kubelet_with_config("evictionSoft:\n  memory.available: 1Gi\n")?;
    assert!(!success);
    assert!(
        err.contains("evictionSoftGracePeriod[memory.available]"),
        "{err}"
    );
    let (success, err) = kubelet_with_config("kubeReserved: {memory: lots}\n")?;
    assert!(!success);
    assert!(
        err.contains("kubeReserved[memory]: invalid quantity \"lots\""),
        "{err}"
    );
    Ok(())
}
