//! Static pods through `bramble kubelet`: a manifest in the static pod directory runs as a
//! pod (even with no API server at all), appears in the API as a mirror pod with its status,
//! is replaced when the file is edited and stopped when it is removed; a deleted mirror pod
//! comes back; the API refuses edits of a mirror pod. Real containers, real kubectl.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use common::kubelet::{tail, TestKubelet};
use common::registry::TestRegistry;
use common::{fails, ok, TestController};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// A static pod manifest whose container writes `version` into the hostPath `out` and sleeps.
fn manifest(image: &str, out: &Path, version: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {{app: web, version: {version}}}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: {image}
    command: [sh, -c, 'echo {version}; echo {version} > /out/{version}; exec sleep 3600']
    volumeMounts: [{{name: out, mountPath: /out}}]
  volumes:
  - name: out
    hostPath: {{path: {}, type: Directory}}
",
        out.display()
    )
}

fn config_file(dir: &Path, manifests: &Path) -> Result<PathBuf> {
    let file = dir.join("kubelet-config.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
             staticPodPath: {}\nfileCheckFrequency: 1s\n",
            manifests.display()
        ),
    )?;
    Ok(file)
}

fn wait_for<T>(k: &TestKubelet, what: &str, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let start = Instant::now();
    let mut last_err = String::new();
    while start.elapsed() < LIMIT {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!(
        "{what} not reached after {LIMIT:?} (last error: {last_err})\nkubelet log tail:\n{}",
        tail(&k.log(), 60)
    )
}

/// The pod `name` from `kubectl get pods -o json` (the list, as a user sees it).
fn listed_pod(ctrl: &TestController, name: &str) -> Result<Option<Value>> {
    let list: Value = serde_json::from_str(&ok(ctrl.kubectl(&["get", "pods", "-o", "json"])?)?)?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["metadata"]["name"] == name)
        .cloned())
}

fn annotation<'a>(p: &'a Value, key: &str) -> &'a str {
    p["metadata"]["annotations"][key].as_str().unwrap_or("")
}

fn running_container_id(p: &Value) -> Option<String> {
    let c = &p["status"]["containerStatuses"][0];
    (p["status"]["phase"] == "Running" && c["state"]["running"].is_object() && c["ready"] == true)
        .then(|| c["containerID"].as_str().unwrap_or("").to_string())
}

/// Containers the kubelet's runtime holds (sandboxes included).
fn runtime_containers(k: &TestKubelet) -> usize {
    std::fs::read_dir(k.runtime_dir().join("containers"))
        .map(|rd| rd.count())
        .unwrap_or(0)
}

#[test]
fn static_pod_with_mirror_pod() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let work = tempfile::tempdir()?;
    let manifests = work.path().join("manifests");
    let out = work.path().join("out");
    std::fs::create_dir_all(&manifests)?;
    std::fs::create_dir_all(&out)?;
    let node = "kl-static";
    let cfg = config_file(work.path(), &manifests)?;
    // A broken manifest and a dotfile are skipped without stopping anything.
    std::fs::write(
        manifests.join("broken.yaml"),
        "kind: Pod\napiVersion: v1\nspec: [",
    )?;
    std::fs::write(manifests.join(".web.yaml.swp"), "not a manifest")?;
    std::fs::write(manifests.join("web.yaml"), manifest(&image, &out, "v1"))?;
    let mut k =
        TestKubelet::start_with_args(&ctrl, node, &["--config".into(), cfg.display().to_string()])?;
    let name = format!("web-{node}");

    // The pod runs and its mirror pod shows up in `kubectl get pods` with the running status.
    let mirror = wait_for(&k, "mirror pod Running", || {
        Ok(listed_pod(&ctrl, &name)?.filter(|p| running_container_id(p).is_some()))
    })?;
    assert!(out.join("v1").exists(), "the v1 container ran");
    let hash = annotation(&mirror, "kubernetes.io/config.hash").to_string();
    assert_eq!(hash.len(), 32, "{mirror}");
    assert_eq!(annotation(&mirror, "kubernetes.io/config.mirror"), hash);
    assert_eq!(annotation(&mirror, "kubernetes.io/config.source"), "file");
    assert!(!annotation(&mirror, "kubernetes.io/config.seen").is_empty());
    assert_ne!(
        mirror["metadata"]["uid"],
        hash.as_str(),
        "the API gives the mirror pod its own uid"
    );
    assert_eq!(mirror["metadata"]["namespace"], "default");
    assert_eq!(mirror["spec"]["nodeName"], node);
    let owner = &mirror["metadata"]["ownerReferences"][0];
    assert_eq!(
        (owner["kind"].as_str(), owner["name"].as_str()),
        (Some("Node"), Some(node))
    );
    assert_eq!(owner["controller"], true);
    let node_obj: Value =
        serde_json::from_str(&ok(ctrl.kubectl(&["get", "node", node, "-o", "json"])?)?)?;
    assert_eq!(owner["uid"], node_obj["metadata"]["uid"]);
    let table = ok(ctrl.kubectl(&["get", "pods"])?)?;
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&name) && l.contains("Running")),
        "{table}"
    );
    assert!(
        k.log().contains("skipping static pod manifest"),
        "the broken file is reported"
    );

    // The API refuses to change a mirror pod: its annotation, and (as for any pod) its spec.
    let err = fails(ctrl.kubectl(&[
        "annotate",
        "pod",
        &name,
        "--overwrite",
        "kubernetes.io/config.mirror=other",
    ])?)?;
    assert!(
        err.contains("may not remove or update mirror pod annotation"),
        "{err}"
    );
    let mut edited = mirror.clone();
    edited["spec"]["containers"][0]["command"] = serde_json::json!(["sh", "-c", "echo edited"]);
    let err = fails(ctrl.kubectl_with(
        common::KUBECTL,
        &["replace", "-f", "-"],
        Some(&edited.to_string()),
    )?)?;
    assert!(
        err.contains("Forbidden: pod updates may not change fields"),
        "{err}"
    );
    // Nor may the annotation be removed.
    let err = fails(ctrl.kubectl(&[
        "annotate",
        "pod",
        &name,
        "--overwrite",
        "kubernetes.io/config.mirror-",
    ])?)?;
    assert!(
        err.contains("may not remove or update mirror pod annotation"),
        "{err}"
    );

    // A deleted mirror pod comes back (new uid, same hash) with the status of the pod, which
    // kept running.
    let container = running_container_id(&mirror).unwrap();
    ok(ctrl.kubectl(&["delete", "pod", &name, "--timeout=90s"])?)
        .map_err(|e| e.context(tail(&k.log(), 40)))?;
    let back = wait_for(&k, "mirror pod recreated", || {
        Ok(listed_pod(&ctrl, &name)?.filter(|p| {
            p["metadata"]["uid"] != mirror["metadata"]["uid"]
                && p["metadata"]["deletionTimestamp"].is_null()
                && running_container_id(p).is_some()
        }))
    })?;
    assert_eq!(annotation(&back, "kubernetes.io/config.mirror"), hash);
    assert_eq!(
        running_container_id(&back).unwrap(),
        container,
        "the static pod was not restarted"
    );

    // A restarted kubelet adopts the running static pod and keeps its mirror pod.
    let before = k.log().len();
    k.restart()?;
    wait_for(&k, "the restarted kubelet read its static pods", || {
        Ok(k.log()
            .get(before..)
            .is_some_and(|l| l.contains("static pods read"))
            .then_some(()))
    })?;
    std::thread::sleep(Duration::from_secs(3));
    let adopted = listed_pod(&ctrl, &name)?.expect("mirror pod kept");
    assert_eq!(adopted["metadata"]["uid"], back["metadata"]["uid"]);
    assert_eq!(
        running_container_id(&adopted).as_deref(),
        Some(container.as_str())
    );
    assert_eq!(runtime_containers(&k), 2, "no second copy started");

    // Editing the manifest replaces the pod: new hash, new mirror pod, new container.
    std::fs::write(manifests.join("web.yaml"), manifest(&image, &out, "v2"))?;
    let v2 = wait_for(&k, "mirror pod of the edited manifest Running", || {
        Ok(listed_pod(&ctrl, &name)?.filter(|p| {
            annotation(p, "kubernetes.io/config.mirror") != hash
                && p["metadata"]["labels"]["version"] == "v2"
                && running_container_id(p).is_some_and(|c| c != container)
        }))
    })?;
    assert!(out.join("v2").exists(), "the v2 container ran");
    assert_eq!(
        annotation(&v2, "kubernetes.io/config.mirror"),
        annotation(&v2, "kubernetes.io/config.hash")
    );
    assert_ne!(annotation(&v2, "kubernetes.io/config.hash"), hash);
    let pods = wait_for(&k, "one pod in the runtime", || {
        let n = runtime_containers(&k);
        Ok((n == 2).then_some(n))
    })?;
    assert_eq!(pods, 2, "the old pod's sandbox and container are gone");

    // Removing the file stops the pod and deletes its mirror pod.
    std::fs::remove_file(manifests.join("web.yaml"))?;
    wait_for(&k, "mirror pod deleted and containers removed", || {
        Ok((listed_pod(&ctrl, &name)?.is_none() && runtime_containers(&k) == 0).then_some(()))
    })?;
    Ok(())
}

#[test]
fn static_pods_run_without_the_api_server() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let work = tempfile::tempdir()?;
    let manifests = work.path().join("manifests");
    let out = work.path().join("out");
    std::fs::create_dir_all(&manifests)?;
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        manifests.join("web.yaml"),
        manifest(&image, &out, "offline"),
    )?;
    // An API server address nothing listens on.
    let kubeconfig = work.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{}\n    insecure-skip-tls-verify: true\n\
             users:\n- name: u\n  user:\n    token: nothing\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n",
            common::free_port()
        ),
    )?;
    let k = TestKubelet::start_in(
        &kubeconfig,
        "kl-static-offline",
        Vec::new(),
        "127.0.0.1",
        &[
            "--pod-manifest-path".into(),
            manifests.display().to_string(),
        ],
    )?;
    wait_for(&k, "the static pod's container ran", || {
        Ok(out.join("offline").exists().then_some(()))
    })?;
    // It keeps running: still two runtime entries (sandbox and container) a little later.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runtime_containers(&k), 2, "{}", tail(&k.log(), 40));
    // Removing the file stops it, still without an API server.
    std::fs::remove_file(manifests.join("web.yaml"))?;
    wait_for(&k, "the static pod removed", || {
        Ok((runtime_containers(&k) == 0).then_some(()))
    })?;
    Ok(())
}

#[test]
fn mirror_pods_under_node_restriction() -> Result<()> {
    let reg = TestRegistry::start()?;
    let image = reg.push_busybox("busybox", "1", &[])?;
    let ctrl = TestController::start()?;
    let node = "kl-static-node";
    let creds =
        common::auth::cert_kubeconfig(&ctrl, &format!("system:node:{node}"), &["system:nodes"])?;
    let work = tempfile::tempdir()?;
    let manifests = work.path().join("manifests");
    let out = work.path().join("out");
    std::fs::create_dir_all(&manifests)?;
    std::fs::create_dir_all(&out)?;
    std::fs::write(manifests.join("web.yaml"), manifest(&image, &out, "v1"))?;
    let k = TestKubelet::start_in(
        &creds,
        node,
        Vec::new(),
        "127.0.0.1",
        &[
            "--pod-manifest-path".into(),
            manifests.display().to_string(),
        ],
    )?;
    let name = format!("web-{node}");
    // The kubelet, as system:node:<node>, creates the mirror pod and writes its status.
    let mirror = wait_for(&k, "mirror pod Running", || {
        Ok(listed_pod(&ctrl, &name)?.filter(|p| running_container_id(p).is_some()))
    })?;
    let logs = ok(ctrl.kubectl(&["logs", &name])?)?;
    assert_eq!(
        logs.trim(),
        "v1",
        "kubectl logs of the mirror pod reads the static pod"
    );

    // A node may only create mirror pods bound to itself.
    let mut other = mirror.clone();
    for f in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "ownerReferences",
        "managedFields",
    ] {
        other["metadata"].as_object_mut().unwrap().remove(f);
    }
    other["metadata"]["name"] = "elsewhere".into();
    other["spec"]["nodeName"] = "another-node".into();
    other.as_object_mut().unwrap().remove("status");
    let err = fails(ctrl.kubectl_with(
        common::KUBECTL,
        &["--kubeconfig", creds.to_str().unwrap(), "create", "-f", "-"],
        Some(&other.to_string()),
    )?)?;
    assert!(
        err.contains("can only create pods with spec.nodeName set to itself"),
        "{err}"
    );

    // The mirror pod deleted by an administrator comes back, recreated with the node's rights.
    ok(ctrl.kubectl(&["delete", "pod", &name, "--timeout=90s"])?)
        .map_err(|e| e.context(tail(&k.log(), 40)))?;
    wait_for(&k, "mirror pod recreated", || {
        Ok(listed_pod(&ctrl, &name)?.filter(|p| {
            p["metadata"]["uid"] != mirror["metadata"]["uid"] && running_container_id(p).is_some()
        }))
    })?;
    Ok(())
}
