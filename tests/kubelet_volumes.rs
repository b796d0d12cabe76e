//! Pod volumes on a real `bramble kubelet` with real containers and the real kubectl:
//! configMap (with a live update through the `..data` swap), secret, downwardAPI and
//! projected contents and modes, emptyDir shared by an init and an app container, tmpfs
//! emptyDir, hostPath type checks, subPath, and a local-path claim that outlives its pod.

mod common;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use common::kubelet::{create_pod, pod_manifest, wait_pod, TestKubelet};
use common::registry::TestRegistry;
use common::{ok, TestController};
use serde_json::{json, Value};

/// `kubectl exec POD -- sh -c SCRIPT`, stdout.
fn exec(ctrl: &TestController, pod: &str, script: &str) -> Result<String> {
    ok(ctrl.kubectl(&["exec", pod, "--", "sh", "-c", script])?)
}

fn apply(ctrl: &TestController, manifest: &str) -> Result<()> {
    ok(ctrl.kubectl_with(common::KUBECTL, &["apply", "-f", "-"], Some(manifest))?)?;
    Ok(())
}

fn running(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
        && p["status"]["containerStatuses"]
            .as_array()
            .is_some_and(|cs| cs.iter().all(|c| c["ready"] == true))
}

/// A fixture of tests/manifests with IMAGE and NODE filled in.
fn fixture(name: &str, image: &str, node: &str) -> Result<String> {
    let path = format!("{}/tests/manifests/{name}", env!("CARGO_MANIFEST_DIR"));
    Ok(std::fs::read_to_string(path)?
        .replace("IMAGE", image)
        .replace("NODE", node))
}

fn poll(limit: Duration, what: &str, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let start = Instant::now();
    let mut last_err = String::new();
    while start.elapsed() < limit {
        match f() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last_err = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("{what} not reached after {limit:?} (last error: {last_err})")
}

#[test]
fn configmap_secret_downward_and_projected_volumes() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "kv-api")?;
    apply(&ctrl, &fixture("configmap-volume.yaml", &image, "kv-api")?)?;
    apply(&ctrl, &fixture("secret-volume.yaml", &image, "kv-api")?)?;
    apply(&ctrl, &fixture("projected-volume.yaml", &image, "kv-api")?)?;
    for pod in ["configmap-pod", "secret-test-pod", "projected-pod"] {
        wait_pod(&ctrl, &k, pod, Duration::from_secs(90), "Running", running)?;
    }

    // configMap: every key as a file through `..data`, items with their own mode.
    let out = exec(&ctrl, "configmap-pod", "cat /etc/config/log_level; echo; readlink /etc/config/log_level; readlink /etc/config/..data; stat -c %a /etc/config/..data/log_level; cat /etc/items/renamed/level")?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "INFO", "{out}");
    assert_eq!(lines[1], "..data/log_level", "{out}");
    assert!(lines[2].starts_with("..20"), "{out}");
    assert_eq!(lines[3], "644", "{out}");
    assert_eq!(lines[4], "INFO", "{out}");
    let old_ts = lines[2].to_string();
    // An edit of the ConfigMap reaches the mounted file through a new timestamped directory.
    ok(ctrl.kubectl(&[
        "patch",
        "configmap",
        "app-config",
        "--type=merge",
        "-p",
        r#"{"data":{"log_level":"DEBUG"}}"#,
    ])?)?;
    poll(
        Duration::from_secs(60),
        "configMap update in the volume",
        || Ok(exec(&ctrl, "configmap-pod", "cat /etc/config/log_level")?.trim() == "DEBUG"),
    )?;
    let new_ts = exec(&ctrl, "configmap-pod", "readlink /etc/config/..data")?;
    assert_ne!(new_ts.trim(), old_ts);

    // secret: decoded values, defaultMode 0400, on a tmpfs.
    let out = exec(&ctrl, "secret-test-pod", "cat /etc/secret-volume/username; echo; stat -c %a /etc/secret-volume/..data/password; stat -f -c %T /etc/secret-volume")?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["my-app", "400", "tmpfs"], "{out}");

    // projected: configMap, secret, downwardAPI and a bound service-account token with the
    // requested audience.
    // (the ConfigMap was just edited: its projection follows within the resync period)
    poll(
        Duration::from_secs(60),
        "configMap update in the projected volume",
        || {
            Ok(
                exec(&ctrl, "projected-pod", "cat /projected-volume/config/level")?.trim()
                    == "DEBUG",
            )
        },
    )?;
    let out = exec(&ctrl, "projected-pod", "cat /projected-volume/config/level; echo; cat /projected-volume/user; echo; cat /projected-volume/labels; echo; cat /projected-volume/mem_limit_mi; echo; cat /projected-volume/token")?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "DEBUG", "{out}");
    assert_eq!(lines[1], "my-app", "{out}");
    assert_eq!(lines[2], "app=\"projected\"", "{out}");
    assert_eq!(lines[3], "64", "{out}");
    let token = lines[4];
    let claims = token.split('.').nth(1).expect("a JWT");
    let claims = base64_url_decode(claims)?;
    let claims: Value = serde_json::from_slice(&claims)?;
    assert_eq!(claims["aud"], json!(["vault"]), "{claims}");
    assert_eq!(
        claims["kubernetes.io"]["pod"]["name"], "projected-pod",
        "{claims}"
    );
    let ttl = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(ttl, 7200, "{claims}");
    // The default service-account volume the API server injects.
    let out = exec(&ctrl, "projected-pod", "ls /var/run/secrets/kubernetes.io/serviceaccount; cat /var/run/secrets/kubernetes.io/serviceaccount/namespace")?;
    for f in ["ca.crt", "namespace", "token", "default"] {
        assert!(out.contains(f), "{out}");
    }
    Ok(())
}

fn base64_url_decode(s: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s.trim_end_matches('='))?)
}

#[test]
fn empty_dirs_host_paths_and_sub_paths() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let k = TestKubelet::start(&ctrl, "kv-dirs")?;
    // An init container fills an emptyDir the app container serves from.
    apply(
        &ctrl,
        &fixture("init-containers-emptydir.yaml", &image, "kv-dirs")?,
    )?;
    wait_pod(
        &ctrl,
        &k,
        "init-demo",
        Duration::from_secs(90),
        "Running",
        running,
    )?;
    let out = exec(&ctrl, "init-demo", "cat /work-dir/index.html")?;
    assert_eq!(out.trim(), "written by the init container");

    // A memory-backed emptyDir is a tmpfs of sizeLimit; subPath and subPathExpr mounts.
    let host_dir = k.dir.path().join("host-data");
    std::fs::create_dir_all(&host_dir)?;
    std::fs::write(host_dir.join("from-host"), "hello from the node")?;
    let mut pod = pod_manifest(
        "dirs",
        "kv-dirs",
        &image,
        "echo $POD_NAME > /per-pod/name; exec sleep 3600",
        "Always",
        json!({
            "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "volumeMounts": [
                {"name": "cache", "mountPath": "/cache"},
                {"name": "host", "mountPath": "/host", "readOnly": true},
                {"name": "host", "mountPath": "/host-file", "subPath": "from-host"},
                {"name": "scratch", "mountPath": "/per-pod", "subPathExpr": "pods/$(POD_NAME)"},
            ],
        }),
    );
    pod["spec"]["volumes"] = json!([
        {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {"name": "host", "hostPath": {"path": host_dir, "type": "Directory"}},
        {"name": "scratch", "hostPath": {"path": host_dir.join("scratch"), "type": "DirectoryOrCreate"}},
    ]);
    create_pod(&ctrl, &pod)?;
    wait_pod(
        &ctrl,
        &k,
        "dirs",
        Duration::from_secs(90),
        "Running",
        running,
    )?;
    let out = exec(
        &ctrl,
        "dirs",
        "stat -f -c %T /cache; df -k /cache | tail -1; cat /host-file; echo; touch /host/x 2>&1; echo rc=$?",
    )?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "tmpfs", "{out}");
    let size_kib: u64 = lines[1].split_whitespace().nth(1).unwrap().parse()?;
    assert_eq!(size_kib, 16 * 1024, "{out}");
    assert_eq!(lines[2], "hello from the node", "{out}");
    assert!(
        out.contains("Read-only file system") && out.contains("rc=1"),
        "{out}"
    );
    // subPathExpr expanded the pod's name; the file is on the node.
    poll(Duration::from_secs(10), "subPathExpr file", || {
        Ok(
            std::fs::read_to_string(host_dir.join("scratch/pods/dirs/name"))
                .is_ok_and(|s| s.trim() == "dirs"),
        )
    })?;

    // A hostPath whose type check fails keeps the pod in ContainerCreating with upstream's
    // message, and a FailedMount event.
    let missing = k.dir.path().join("no-such-dir");
    let mut bad = pod_manifest(
        "bad-host",
        "kv-dirs",
        &image,
        "sleep 3600",
        "Always",
        json!({
            "volumeMounts": [{"name": "h", "mountPath": "/h"}],
        }),
    );
    bad["spec"]["volumes"] =
        json!([{"name": "h", "hostPath": {"path": missing, "type": "Directory"}}]);
    create_pod(&ctrl, &bad)?;
    let want = format!(
        "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: {} is not a directory",
        missing.display()
    );
    let p = wait_pod(
        &ctrl,
        &k,
        "bad-host",
        Duration::from_secs(60),
        "ContainerCreating",
        |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
                && p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
                    == want.as_str()
        },
    )?;
    assert_eq!(p["status"]["phase"], "Pending");
    poll(Duration::from_secs(30), "FailedMount event", || {
        let ev = ok(ctrl.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=bad-host,reason=FailedMount",
            "-o",
            "json",
        ])?)?;
        let ev: Value = serde_json::from_str(&ev)?;
        Ok(ev["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|e| e["message"] == want.as_str())))
    })?;
    Ok(())
}

#[test]
fn local_path_claim_outlives_its_pod() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let storage = tempfile::tempdir()?;
    let root = storage.path().to_str().unwrap().to_string();
    let ctrl = TestController::start_with(&["--local-path-dir", &root])?;
    let k = TestKubelet::start(&ctrl, "kv-pvc")?;
    poll(Duration::from_secs(30), "default StorageClass", || {
        let out = ok(ctrl.kubectl(&["get", "storageclass", "local-path", "-o", "json"])?)?;
        let sc: Value = serde_json::from_str(&out)?;
        Ok(
            sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
                && sc["volumeBindingMode"] == "WaitForFirstConsumer",
        )
    })?;
    apply(
        &ctrl,
        r#"{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "default"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}}"#,
    )?;
    // No consumer yet: the claim waits, with the default class filled in.
    std::thread::sleep(Duration::from_secs(2));
    let pvc: Value =
        serde_json::from_str(&ok(ctrl.kubectl(&["get", "pvc", "data", "-o", "json"])?)?)?;
    assert_eq!(pvc["status"]["phase"], "Pending", "{pvc}");
    assert_eq!(pvc["spec"]["storageClassName"], "local-path", "{pvc}");
    let with_claim = |name: &str, script: &str| {
        let mut p = pod_manifest(
            name,
            "kv-pvc",
            &image,
            script,
            "Never",
            json!({
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }),
        );
        p["spec"]["volumes"] =
            json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]);
        p
    };
    create_pod(&ctrl, &with_claim("writer", "echo kept > /data/file"))?;
    wait_pod(
        &ctrl,
        &k,
        "writer",
        Duration::from_secs(90),
        "Succeeded",
        |p| p["status"]["phase"] == "Succeeded",
    )?;
    let pvc: Value =
        serde_json::from_str(&ok(ctrl.kubectl(&["get", "pvc", "data", "-o", "json"])?)?)?;
    assert_eq!(pvc["status"]["phase"], "Bound", "{pvc}");
    let pv_name = pvc["spec"]["volumeName"].as_str().unwrap().to_string();
    let pv: Value =
        serde_json::from_str(&ok(ctrl.kubectl(&["get", "pv", &pv_name, "-o", "json"])?)?)?;
    let path = pv["spec"]["hostPath"]["path"].as_str().unwrap().to_string();
    assert!(path.starts_with(&root), "{pv}");
    assert_eq!(
        pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
            ["values"][0],
        "kv-pvc"
    );
    assert_eq!(std::fs::read_to_string(format!("{path}/file"))?, "kept\n");
    ok(ctrl.kubectl(&["delete", "pod", "writer", "--wait=true"])?)?;
    create_pod(&ctrl, &with_claim("reader", "cat /data/file"))?;
    wait_pod(
        &ctrl,
        &k,
        "reader",
        Duration::from_secs(90),
        "Succeeded",
        |p| p["status"]["phase"] == "Succeeded",
    )?;
    let logs = ok(ctrl.kubectl(&["logs", "reader"])?)?;
    assert_eq!(logs.trim(), "kept");
    // Deleting the claim deletes its volume (reclaim policy Delete).
    ok(ctrl.kubectl(&["delete", "pod", "reader", "--wait=true"])?)?;
    ok(ctrl.kubectl(&["delete", "pvc", "data"])?)?;
    poll(Duration::from_secs(30), "volume deleted", || {
        let out = ctrl.kubectl(&["get", "pv", &pv_name])?;
        Ok(!out.status.success())
    })?;
    Ok(())
}
