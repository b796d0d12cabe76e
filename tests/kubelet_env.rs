//! Container environments on real containers with the real kubectl: Secrets and ConfigMaps
//! as variables and through `envFrom`, the downward API (`fieldRef`, `resourceFieldRef`),
//! `$(VAR)` expansion with `$$` escaping, and a missing ConfigMap holding the container in
//! CreateContainerConfigError until it is created.

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use common::kubelet::{create_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::json;

fn apply(ctrl: &TestController, manifest: &str) -> Result<()> {
    ok(ctrl.kubectl_with(common::KUBECTL, &["apply", "-f", "-"], Some(manifest))?)?;
    Ok(())
}

/// A fixture of tests/manifests with IMAGE and NODE filled in.
fn fixture(name: &str, image: &str, node: &str) -> Result<String> {
    let path = format!("{}/tests/manifests/{name}", env!("CARGO_MANIFEST_DIR"));
    Ok(std::fs::read_to_string(path)?
        .replace("IMAGE", image)
        .replace("NODE", node))
}

/// Polls `kubectl logs POD` until it contains `want`.
fn wait_logs(ctrl: &TestController, k: &TestKubelet, pod: &str, want: &str) -> Result<String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(90) {
        if let Ok(out) = ctrl.kubectl(&["logs", pod]) {
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            if last.contains(want) {
                return Ok(last);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    bail!(
        "logs of {pod} never contained {want:?}: {last:?}\nkubelet log:\n{}",
        common::kubelet::tail(&k.log(), 30)
    )
}

#[test]
fn env_from_secrets_configmaps_and_the_downward_api() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let node = "env-node";
    let k = TestKubelet::start(&ctrl, node)?;
    apply(&ctrl, &fixture("env-from-secret.yaml", &image, node)?)?;
    apply(&ctrl, &fixture("env-dapi.yaml", &image, node)?)?;
    let logs = wait_logs(&ctrl, &k, "env-single-secret", "pass=")?;
    assert!(logs.contains("user=backend-admin"), "{logs}");
    assert!(logs.contains("pass=39528$vdg7Jb"), "{logs}");
    let logs = wait_logs(&ctrl, &k, "dapi-envars-fieldref", "node=")?;
    assert_eq!(
        logs.trim(),
        format!(
            "node={node} pod=dapi-envars-fieldref ns=default ip=127.0.0.1 sa=default app=dapi \
             mem=64 cpu=125 esc=$(MY_POD_NAME)"
        ),
    );
    // envFrom with a prefix; keys that are not variable names are skipped with an event.
    // `bad-key` is a valid name (upstream's IsEnvVarName allows `-` and `.`; the shell
    // drops it, so the test reads the process's own environment); `1st` and `2nd` cannot
    // start a variable name and are only valid as keys behind a prefix.
    ok(ctrl.kubectl(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
        "--from-literal=bad-key=kept",
        "--from-literal=1st=prefixed",
    ])?)?;
    ok(ctrl.kubectl(&[
        "create",
        "configmap",
        "numbered",
        "--from-literal=2nd=skipped",
        "--from-literal=1st=skipped",
        "--from-literal=third=3",
    ])?)?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "prefixed",
            node,
            &image,
            "echo mode=$CFG_mode url=$URL first=$CFG_1st third=$third; \
             tr '\\0' '\\n' </proc/1/environ | grep -c -e '^1st=' -e '^2nd='; \
             tr '\\0' '\\n' </proc/1/environ | grep '^CFG_bad-key='; exec sleep 3600",
            "Always",
            json!({
                "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
                            {"configMapRef": {"name": "numbered"}},
                            {"configMapRef": {"name": "absent", "optional": true}}],
                "env": [{"name": "URL", "value": "http://$(CFG_mode):80"}]
            }),
        ),
    )?;
    let logs = wait_logs(&ctrl, &k, "prefixed", "CFG_bad-key=")?;
    assert_eq!(
        logs.trim(),
        "mode=fast url=http://fast:80 first=prefixed third=3\n0\nCFG_bad-key=kept"
    );
    // The skipped keys are named, sorted, in one Warning event, as upstream's kubelet.
    let want = "Keys [1st, 2nd] from the EnvFrom configMap default/numbered were skipped since they are considered invalid environment variable names.";
    let start = Instant::now();
    loop {
        let list: serde_json::Value = serde_json::from_str(&ok(ctrl.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=prefixed,reason=InvalidEnvironmentVariableNames",
            "-o",
            "json",
        ])?)?)?;
        let seen = list["items"].as_array().cloned().unwrap_or_default();
        if let Some(e) = seen.iter().find(|e| e["message"] == want) {
            assert_eq!(e["type"], "Warning", "{e}");
            assert_eq!(e["involvedObject"]["kind"], "Pod", "{e}");
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("no InvalidEnvironmentVariableNames event {want:?}; seen: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(())
}

#[test]
fn missing_configmap_waits_in_create_container_config_error() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let node = "env-late";
    let k = TestKubelet::start(&ctrl, node)?;
    create_pod(
        &ctrl,
        &pod_manifest(
            "late",
            node,
            &image,
            "echo level=$LEVEL; exec sleep 3600",
            "Always",
            json!({"env": [{"name": "LEVEL",
                            "valueFrom": {"configMapKeyRef": {"name": "late-config", "key": "level"}}}]}),
        ),
    )?;
    let p = wait_pod(
        &ctrl,
        &k,
        "late",
        Duration::from_secs(60),
        "config error",
        |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                == "CreateContainerConfigError"
        },
    )?;
    assert_eq!(
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"],
        "configmap \"late-config\" not found"
    );
    let table = ok(ctrl.kubectl(&["get", "pod", "late", "--no-headers"])?)?;
    assert!(table.contains("CreateContainerConfigError"), "{table}");
    // The key is missing next.
    ok(ctrl.kubectl(&[
        "create",
        "configmap",
        "late-config",
        "--from-literal=other=1",
    ])?)?;
    wait_pod(
        &ctrl,
        &k,
        "late",
        Duration::from_secs(60),
        "missing key",
        |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
                == "couldn't find key level in ConfigMap default/late-config"
        },
    )?;
    ok(ctrl.kubectl(&["delete", "configmap", "late-config"])?)?;
    ok(ctrl.kubectl(&[
        "create",
        "configmap",
        "late-config",
        "--from-literal=level=7",
    ])?)?;
    wait_pod(&ctrl, &k, "late", Duration::from_secs(90), "Running", |p| {
        p["status"]["phase"] == "Running"
    })?;
    let logs = wait_logs(&ctrl, &k, "late", "level=")?;
    assert_eq!(logs.trim(), "level=7");
    Ok(())
}
