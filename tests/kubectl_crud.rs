//! The real kubectl (the installed one and an older release) against a real controller:
//! create, get in every output form, label, annotate, apply, conflicts, validation errors,
//! delete and `get -w`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use common::{fails, ok, TestController, KUBECTL, KUBECTL_OLD};
use serde_json::Value;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    app: shop
data:
  color: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: hunter2
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: shop
  ports:
  - port: 80
    targetPort: 8080
"#;

fn crud_scenario(c: &TestController, kubectl: &str, ns: &str) -> Result<()> {
    let k = |args: &[&str]| c.kubectl_with(kubectl, args, None);
    let out = ok(k(&["create", "namespace", ns])?)?;
    ensure!(out.trim() == format!("namespace/{ns} created"), "{out}");

    let out = ok(k(&[
        "-n",
        ns,
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=1",
    ])?)?;
    ensure!(out.trim() == "configmap/cfg created", "{out}");

    let json: Value = serde_json::from_str(&ok(k(&[
        "-n",
        ns,
        "get",
        "configmap",
        "cfg",
        "-o",
        "json",
    ])?)?)?;
    ensure!(json["data"]["a"] == "1");
    ensure!(json["metadata"]["namespace"] == ns);
    ensure!(json["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| u.len() == 36));
    ensure!(json["metadata"]["creationTimestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    let rv: u64 = json["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()?;
    ensure!(rv > 0);

    let yaml = ok(k(&["-n", ns, "get", "cm", "cfg", "-o", "yaml"])?)?;
    ensure!(yaml.contains("a: \"1\""), "{yaml}");
    let jp = ok(k(&[
        "-n",
        ns,
        "get",
        "cm",
        "cfg",
        "-o",
        "jsonpath={.data.a}",
    ])?)?;
    ensure!(jp == "1", "{jp}");

    let out = ok(k(&["-n", ns, "label", "configmap", "cfg", "tier=web"])?)?;
    ensure!(out.trim() == "configmap/cfg labeled", "{out}");
    let out = ok(k(&["-n", ns, "get", "cm", "-l", "tier=web", "-o", "name"])?)?;
    ensure!(out.trim() == "configmap/cfg", "{out}");
    let out = ok(k(&[
        "-n",
        ns,
        "get",
        "cm",
        "-l",
        "tier in (db,cache)",
        "-o",
        "name",
    ])?)?;
    ensure!(out.trim().is_empty(), "{out}");
    let out = ok(k(&["-n", ns, "annotate", "cm", "cfg", "note=hello"])?)?;
    ensure!(out.trim() == "configmap/cfg annotated", "{out}");
    let note = ok(k(&[
        "-n",
        ns,
        "get",
        "cm",
        "cfg",
        "-o",
        "jsonpath={.metadata.annotations.note}",
    ])?)?;
    ensure!(note == "hello");

    // apply of a multi-document manifest, then again (unchanged), then with a change
    let out = ok(c.kubectl_with(kubectl, &["-n", ns, "apply", "-f", "-"], Some(MANIFESTS))?)?;
    for line in [
        "configmap/settings created",
        "secret/creds created",
        "service/web created",
    ] {
        ensure!(out.contains(line), "{out}");
    }
    let out = ok(c.kubectl_with(kubectl, &["-n", ns, "apply", "-f", "-"], Some(MANIFESTS))?)?;
    ensure!(out.contains("configmap/settings unchanged"), "{out}");
    let changed = MANIFESTS.replace("color: blue", "color: green");
    let out = ok(c.kubectl_with(kubectl, &["-n", ns, "apply", "-f", "-"], Some(&changed))?)?;
    ensure!(out.contains("configmap/settings configured"), "{out}");
    let color = ok(k(&[
        "-n",
        ns,
        "get",
        "cm",
        "settings",
        "-o",
        "jsonpath={.data.color}",
    ])?)?;
    ensure!(color == "green");
    let svc: Value =
        serde_json::from_str(&ok(k(&["-n", ns, "get", "svc", "web", "-o", "json"])?)?)?;
    ensure!(
        svc["spec"]["clusterIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.43.")),
        "{svc}"
    );
    ensure!(svc["spec"]["ports"][0]["protocol"] == "TCP");
    let secret = ok(k(&[
        "-n",
        ns,
        "get",
        "secret",
        "creds",
        "-o",
        "jsonpath={.data.password}",
    ])?)?;
    ensure!(
        secret == "aHVudGVyMg==",
        "stringData is folded into data: {secret}"
    );

    // optimistic concurrency: a replace with a stale resourceVersion fails with 409
    let stale = ok(k(&["-n", ns, "get", "cm", "cfg", "-o", "json"])?)?;
    ok(k(&["-n", ns, "label", "cm", "cfg", "bump=1"])?)?;
    let err = fails(c.kubectl_with(kubectl, &["-n", ns, "replace", "-f", "-"], Some(&stale))?)?;
    ensure!(
        err.contains("Operation cannot be fulfilled on configmaps \"cfg\": the object has been modified; please apply your changes to the latest version and try again"),
        "{err}"
    );

    // validation errors carry upstream's messages
    let err = fails(k(&["-n", ns, "create", "configmap", "Bad_Name"])?)?;
    ensure!(
        err.contains("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"),
        "{err}"
    );
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: noimage\nspec:\n  containers:\n  - name: app\n";
    let err = fails(c.kubectl_with(kubectl, &["-n", ns, "create", "-f", "-"], Some(pod))?)?;
    ensure!(
        err.contains("Pod \"noimage\" is invalid: spec.containers[0].image: Required value"),
        "{err}"
    );
    let err = fails(k(&["-n", ns, "create", "configmap", "cfg"])?)?;
    ensure!(err.contains("configmaps \"cfg\" already exists"), "{err}");

    let out = ok(k(&["-n", ns, "delete", "configmap", "cfg"])?)?;
    ensure!(out.trim() == "configmap \"cfg\" deleted", "{out}");
    let err = fails(k(&["-n", ns, "get", "configmap", "cfg"])?)?;
    ensure!(
        err.contains("Error from server (NotFound): configmaps \"cfg\" not found"),
        "{err}"
    );
    Ok(())
}

#[test]
fn kubectl_crud_newest_and_old() -> Result<()> {
    let c = TestController::start()?;
    crud_scenario(&c, KUBECTL, "crud-new").map_err(|e| e.context(c.log()))?;
    crud_scenario(&c, KUBECTL_OLD, "crud-old").map_err(|e| e.context(c.log()))?;
    Ok(())
}

#[test]
fn default_namespaces_and_kubernetes_service_exist() -> Result<()> {
    let c = TestController::start()?;
    let out = ok(c.kubectl(&["get", "ns", "-o", "name"])?)?;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure!(out.contains(&format!("namespace/{ns}")), "{out}");
    }
    let ip = ok(c.kubectl(&[
        "get",
        "svc",
        "kubernetes",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ])?)?;
    ensure!(ip == "10.43.0.1", "{ip}");
    Ok(())
}

#[test]
fn kubectl_get_watch_receives_events() -> Result<()> {
    let c = TestController::start()?;
    ok(c.kubectl(&["create", "namespace", "w"])?)?;
    let mut watcher = Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        .args([
            "-n",
            "w",
            "get",
            "configmaps",
            "-w",
            "--output-watch-events",
            "-o",
            "custom-columns=T:.type,NAME:.object.metadata.name,V:.object.data.v",
            "--no-headers",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = watcher.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    ok(c.kubectl(&[
        "-n",
        "w",
        "create",
        "configmap",
        "one",
        "--from-literal=v=1",
    ])?)?;
    ok(c.kubectl(&[
        "-n",
        "w",
        "patch",
        "configmap",
        "one",
        "-p",
        r#"{"data":{"v":"2"}}"#,
    ])?)?;
    ok(c.kubectl(&["-n", "w", "delete", "configmap", "one"])?)?;
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while seen.len() < 3 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            // Every namespace gets the `kube-root-ca.crt` ConfigMap, as upstream.
            if line.contains("kube-root-ca.crt") {
                continue;
            }
            seen.push(line.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    let _ = watcher.kill();
    ensure!(
        seen == ["ADDED one 1", "MODIFIED one 2", "DELETED one 2"],
        "{seen:?}"
    );
    Ok(())
}
