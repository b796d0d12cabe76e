//! The same kubectl session with every kubectl installed here (1.27 through 1.33 and the one on
//! PATH): `create` generators for every kind upstream kubectl has one for, `get` tables,
//! errors and exit codes, compared with what upstream prints for the same commands.

mod common;

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use common::{TestController, KUBECTL};

fn kubectls() -> Vec<String> {
    let mut all: Vec<String> = (27..=33)
        .map(|n| format!("/usr/lib/google-cloud-sdk/bin/kubectl.1.{n}"))
        .filter(|p| Path::new(p).exists())
        .collect();
    all.push(KUBECTL.to_string());
    all
}

/// (exit code, stdout, stderr) of one kubectl command.
fn run(c: &TestController, bin: &str, args: &[&str]) -> Result<(i32, String, String)> {
    let out = c.kubectl_with(bin, args, None)?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

fn expect_out(c: &TestController, bin: &str, args: &[&str], want: &str) -> Result<()> {
    let (code, out, err) = run(c, bin, args)?;
    ensure!(
        code == 0 && out.trim_end() == want,
        "{bin} {args:?}: exit {code}\nwant: {want}\ngot:  {out}\nstderr: {err}"
    );
    Ok(())
}

fn expect_err(c: &TestController, bin: &str, args: &[&str], want: &str) -> Result<()> {
    let (code, out, err) = run(c, bin, args)?;
    ensure!(
        code == 1 && err.trim_end() == want,
        "{bin} {args:?}: exit {code}\nwant stderr: {want}\ngot stderr:  {err}\nstdout: {out}"
    );
    Ok(())
}

/// The header line of a `get` table.
fn header(c: &TestController, bin: &str, args: &[&str]) -> Result<Vec<String>> {
    let (code, out, err) = run(c, bin, args)?;
    ensure!(code == 0, "{bin} {args:?}: {err}");
    let first = out.lines().next().context("empty table")?;
    Ok(first.split_whitespace().map(str::to_owned).collect())
}

fn tls_pair(dir: &Path) -> Result<(String, String)> {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=web.example"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()?;
    ensure!(status.status.success(), "openssl: {status:?}");
    Ok((
        cert.to_string_lossy().into_owned(),
        key.to_string_lossy().into_owned(),
    ))
}

fn session(c: &TestController, bin: &str, ns: &str, dir: &Path) -> Result<()> {
    expect_out(
        c,
        bin,
        &["create", "namespace", ns],
        &format!("namespace/{ns} created"),
    )?;
    let n = |args: &[&str]| -> Vec<String> {
        let mut v = vec!["-n".to_string(), ns.to_string()];
        v.extend(args.iter().map(|s| s.to_string()));
        v
    };
    let file = dir.join("settings.conf");
    std::fs::write(&file, "debug=true\n")?;
    let from_file = format!("--from-file={}", file.display());
    let (cert, key) = tls_pair(dir)?;
    let generators: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["configmap", "cfg", "--from-literal=a=1", &from_file],
            "configmap/cfg",
        ),
        (
            vec!["secret", "generic", "gen", "--from-literal=k=v"],
            "secret/gen",
        ),
        (
            vec!["secret", "tls", "tls", "--cert", &cert, "--key", &key],
            "secret/tls",
        ),
        (
            vec![
                "secret",
                "docker-registry",
                "reg",
                "--docker-server=r.example",
                "--docker-username=u",
                "--docker-password=p",
            ],
            "secret/reg",
        ),
        (vec!["serviceaccount", "robot"], "serviceaccount/robot"),
        (
            vec!["quota", "q", "--hard=pods=10,requests.cpu=2"],
            "resourcequota/q",
        ),
        (
            vec!["role", "reader", "--verb=get,list", "--resource=pods"],
            "role.rbac.authorization.k8s.io/reader",
        ),
        (
            vec!["rolebinding", "rb", "--role=reader", "--user=alice"],
            "rolebinding.rbac.authorization.k8s.io/rb",
        ),
        (
            vec!["deployment", "web", "--image=busybox:1", "--replicas=2"],
            "deployment.apps/web",
        ),
        (
            vec!["job", "once", "--image=busybox:1", "--", "true"],
            "job.batch/once",
        ),
        (
            vec![
                "cronjob",
                "tick",
                "--image=busybox:1",
                "--schedule=*/5 * * * *",
                "--",
                "true",
            ],
            "cronjob.batch/tick",
        ),
        (
            vec!["service", "clusterip", "web", "--tcp=80:8080"],
            "service/web",
        ),
        (
            vec!["service", "nodeport", "np", "--tcp=80:8080"],
            "service/np",
        ),
        (
            vec!["service", "loadbalancer", "lb", "--tcp=443:8443"],
            "service/lb",
        ),
        (
            vec!["ingress", "ing", "--rule=web.example/*=web:80,tls=tls"],
            "ingress.networking.k8s.io/ing",
        ),
        (
            vec![
                "poddisruptionbudget",
                "pdb",
                "--selector=app=web",
                "--min-available=1",
            ],
            "poddisruptionbudget.policy/pdb",
        ),
    ];
    for (args, what) in &generators {
        let mut full = n(&["create"]);
        full.extend(args.iter().map(|s| s.to_string()));
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        expect_out(c, bin, &full, &format!("{what} created"))?;
    }
    // Cluster-scoped generators get per-session names.
    for (args, what) in [
        (
            vec![
                "clusterrole",
                &format!("{ns}-view"),
                "--verb=get",
                "--resource=nodes",
            ],
            "clusterrole.rbac.authorization.k8s.io",
        ),
        (
            vec![
                "clusterrolebinding",
                &format!("{ns}-crb"),
                &format!("--clusterrole={ns}-view"),
                "--group=ops",
            ],
            "clusterrolebinding.rbac.authorization.k8s.io",
        ),
        (
            vec!["priorityclass", &format!("{ns}-high"), "--value=1000"],
            "priorityclass.scheduling.k8s.io",
        ),
    ] {
        let mut full = vec!["create"];
        full.extend(args.iter().copied());
        expect_out(c, bin, &full, &format!("{what}/{} created", args[1]))?;
    }

    // `kubectl autoscale`: 1.27-1.29 post autoscaling/v1, newer ones autoscaling/v2.
    expect_out(
        c,
        bin,
        &n(&[
            "autoscale",
            "deployment",
            "web",
            "--min=1",
            "--max=3",
            "--cpu-percent=50",
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        "horizontalpodautoscaler.autoscaling/web autoscaled",
    )?;

    // Tables: upstream's columns for the usual kinds.
    let cols = |args: &[&str]| {
        header(
            c,
            bin,
            &n(args).iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    ensure!(
        cols(&["get", "hpa"])?
            == [
                "NAME",
                "REFERENCE",
                "TARGETS",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "AGE"
            ]
    );
    ensure!(cols(&["get", "configmaps"])? == ["NAME", "DATA", "AGE"]);
    ensure!(cols(&["get", "secrets"])? == ["NAME", "TYPE", "DATA", "AGE"]);
    ensure!(cols(&["get", "deployments"])? == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    ensure!(
        cols(&["get", "deployments", "-o", "wide"])?
            == [
                "NAME",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR"
            ]
    );
    ensure!(
        cols(&["get", "services"])?
            == [
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE"
            ]
    );
    ensure!(
        cols(&["get", "jobs"])?[..2] == ["NAME", "STATUS"]
            || cols(&["get", "jobs"])?[..2] == ["NAME", "COMPLETIONS"]
    );
    ensure!(
        cols(&["get", "cronjobs"])?[..3] == ["NAME", "SCHEDULE", "TIMEZONE"]
            || cols(&["get", "cronjobs"])?[..3] == ["NAME", "SCHEDULE", "SUSPEND"]
    );
    ensure!(
        cols(&["get", "pdb"])?
            == [
                "NAME",
                "MIN",
                "AVAILABLE",
                "MAX",
                "UNAVAILABLE",
                "ALLOWED",
                "DISRUPTIONS",
                "AGE"
            ]
    );
    ensure!(cols(&["get", "ingress"])? == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]);
    ensure!(cols(&["get", "quota"])? == ["NAME", "AGE", "REQUEST", "LIMIT"]);

    // Errors and exit codes, word for word.
    expect_err(
        c,
        bin,
        &n(&["get", "configmap", "missing"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        r#"Error from server (NotFound): configmaps "missing" not found"#,
    )?;
    expect_err(
        c,
        bin,
        &n(&["create", "configmap", "cfg"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        r#"error: failed to create configmap: configmaps "cfg" already exists"#,
    )?;
    expect_err(
        c,
        bin,
        &n(&["create", "serviceaccount", "Bad_Name"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        concat!(
            r#"error: failed to create serviceaccount: ServiceAccount "Bad_Name" is invalid: metadata.name: "#,
            r#"Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case "#,
            r#"alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "#,
            r#"(e.g. 'example.com', regex used for validation is "#,
            r#"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
        ),
    )?;
    expect_out(
        c,
        bin,
        &n(&["delete", "configmap", "cfg"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        r#"configmap "cfg" deleted"#,
    )?;
    expect_out(
        c,
        bin,
        &["delete", "namespace", ns, "--timeout=60s"],
        &format!(r#"namespace "{ns}" deleted"#),
    )?;
    Ok(())
}

#[test]
fn one_session_with_every_kubectl_version() -> Result<()> {
    let c = TestController::start()?;
    let dir = tempfile::tempdir()?;
    let bins = kubectls();
    ensure!(bins.len() >= 2, "no versioned kubectl found: {bins:?}");
    for (i, bin) in bins.iter().enumerate() {
        session(&c, bin, &format!("v{i}"), dir.path()).with_context(|| format!("with {bin}"))?;
    }
    Ok(())
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"#;

fn fails_get(c: &TestController, what: &str) -> Result<bool> {
    Ok(!c.kubectl(&["get", what])?.status.success())
}

/// `kubectl wait` in its three forms: a condition, a JSONPath value and deletion.
#[test]
fn kubectl_wait_for_condition_jsonpath_and_delete() -> Result<()> {
    let c = TestController::start()?;
    common::ok(c.kubectl_with(KUBECTL, &["apply", "-f", "-"], Some(CRD))?)?;
    expect_out(
        &c,
        KUBECTL,
        &[
            "wait",
            "--for=condition=Established",
            "crd/gizmos.example.com",
            "--timeout=30s",
        ],
        "customresourcedefinition.apiextensions.k8s.io/gizmos.example.com condition met",
    )?;
    common::ok(c.kubectl(&["create", "configmap", "flag", "--from-literal=state=ready"])?)?;
    expect_out(
        &c,
        KUBECTL,
        &[
            "wait",
            "--for=jsonpath={.data.state}=ready",
            "configmap/flag",
            "--timeout=30s",
        ],
        "configmap/flag condition met",
    )?;
    // A condition that never comes times out with upstream's message and exit code 1.
    let (code, _, err) = run(
        &c,
        KUBECTL,
        &[
            "wait",
            "--for=jsonpath={.data.state}=gone",
            "configmap/flag",
            "--timeout=2s",
        ],
    )?;
    ensure!(
        code == 1 && err.contains("timed out waiting for the condition on configmaps/flag"),
        "exit {code}: {err}"
    );
    // --for=delete returns once a delete issued meanwhile has gone through.
    let kubeconfig = c.kubeconfig.clone();
    let deleter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(3));
        Command::new(KUBECTL)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["delete", "configmap", "flag", "--wait=false"])
            .output()
    });
    let (code, out, err) = run(
        &c,
        KUBECTL,
        &["wait", "--for=delete", "configmap/flag", "--timeout=30s"],
    )?;
    deleter.join().expect("deleter thread")?;
    // (kubectl prints nothing when the object was already gone as it started: a loaded machine.)
    ensure!(
        code == 0 && (out.trim_end() == "configmap/flag condition met" || out.is_empty()),
        "exit {code}: {out} {err}"
    );
    ensure!(
        fails_get(&c, "configmap/flag")?,
        "configmap/flag still exists"
    );
    Ok(())
}
