//! schemathesis (from PyPI, in the venv scripts/deps.sh makes) generates requests from the
//! OpenAPI v3 documents the controller serves and checks that none of them gets a 5xx or breaks
//! the server. The number of examples per operation is bounded so the run stays short; the seed
//! is fixed so a failure reproduces. Streaming operations (watches, `follow`, and the
//! exec/attach/portforward/proxy upgrades) are left out: they answer by holding the
//! connection open, which a request fuzzer can only see as a timeout.

mod common;

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use common::{ok, TestController};
use serde_json::Value;

const SCHEMATHESIS: &str = "/usr/local/lib/bramble-tools/py/bin/schemathesis";

/// The user's client certificate, key and the cluster CA, from the kubeconfig kubectl uses.
fn credentials(c: &TestController, dir: &Path) -> Result<(String, String, String)> {
    use base64::Engine;
    let raw = ok(c.kubectl(&["config", "view", "--raw", "-o", "json"])?)?;
    let kc: Value = serde_json::from_str(&raw)?;
    let decode = |v: &Value, what: &str| -> Result<Vec<u8>> {
        let s = v
            .as_str()
            .with_context(|| format!("kubeconfig has no {what}"))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(s)?)
    };
    let files = [
        (
            "ca.pem",
            &kc["clusters"][0]["cluster"]["certificate-authority-data"],
        ),
        (
            "cert.pem",
            &kc["users"][0]["user"]["client-certificate-data"],
        ),
        ("key.pem", &kc["users"][0]["user"]["client-key-data"]),
    ];
    let mut paths = Vec::new();
    for (name, v) in files {
        let path = dir.join(name);
        std::fs::write(&path, decode(v, name)?)?;
        paths.push(path.to_string_lossy().into_owned());
    }
    Ok((paths[0].clone(), paths[1].clone(), paths[2].clone()))
}

/// Drops the streaming operations and parameters from a v3 document; returns how many paths
/// are left.
fn without_streaming(doc: &mut Value) -> Result<usize> {
    let paths = doc["paths"].as_object_mut().context("paths")?;
    paths.retain(|p, _| {
        let connect = [
            "/exec",
            "/attach",
            "/portforward",
            "/proxy",
            "/proxy/{path}",
        ]
        .iter()
        .any(|s| p.ends_with(s));
        !connect && !p.contains("/watch/")
    });
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (key, v) in item.iter_mut() {
            let params = if key == "parameters" {
                v.as_array_mut()
            } else {
                v.get_mut("parameters").and_then(Value::as_array_mut)
            };
            if let Some(params) = params {
                params.retain(|p| !matches!(p["name"].as_str(), Some("watch" | "follow")));
            }
        }
    }
    Ok(paths.len())
}

fn run_group_version(c: &TestController, dir: &Path, gv_path: &str) -> Result<()> {
    let (ca, cert, key) = credentials(c, dir)?;
    let schema = ok(c.kubectl(&["get", "--raw", &format!("/openapi/v3/{gv_path}")])?)?;
    let mut schema: Value = serde_json::from_str(&schema)?;
    let operations = without_streaming(&mut schema)?;
    ensure!(
        operations >= 5,
        "only {operations} paths in /openapi/v3/{gv_path}"
    );
    let file = dir.join(format!("{}.json", gv_path.replace('/', "_")));
    std::fs::write(&file, serde_json::to_vec(&schema)?)?;
    let out = Command::new(SCHEMATHESIS)
        .arg("run")
        .arg(&file)
        .args(["--url", &format!("https://127.0.0.1:{}", c.port)])
        .args([
            "--tls-verify",
            &ca,
            "--request-cert",
            &cert,
            "--request-cert-key",
            &key,
        ])
        .args(["--checks", "not_a_server_error"])
        .args(["--phases", "examples,fuzzing"])
        .args(["--max-examples", "4", "--seed", "1", "--workers", "2"])
        .args(["--generation-database", "none", "--no-color"])
        .arg("--request-timeout=60")
        // Generated Authorization headers only test the authenticator, which
        // tests/auth_hostile.rs covers; the client certificate authenticates every request.
        .args(["--generation-with-security-parameters", "false"])
        .current_dir(dir)
        .output()
        .context("running schemathesis")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "schemathesis found failures against /openapi/v3/{gv_path} ({}):\n{}\n{}",
        out.status,
        stdout
            .lines()
            .rev()
            .take(80)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    // The server is still answering after the run.
    ok(c.kubectl(&["get", "--raw", "/readyz"])?)?;
    Ok(())
}

#[test]
fn generated_requests_never_get_a_server_error() -> Result<()> {
    ensure!(
        Path::new(SCHEMATHESIS).exists(),
        "{SCHEMATHESIS} is missing: run `scripts/deps.sh test` (it installs schemathesis)"
    );
    let c = TestController::start()?;
    let dir = tempfile::tempdir()?;
    for gv in [
        "api/v1",
        "apis/apps/v1",
        "apis/rbac.authorization.k8s.io/v1",
    ] {
        run_group_version(&c, dir.path(), gv)?;
    }
    Ok(())
}
