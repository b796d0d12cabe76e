//! Secrets encrypted at rest: the raw LMDB file never holds a Secret's value (neither in
//! clear nor base64), while kubectl reads, lists by label, watches and restarts see the
//! Secret as written.

mod common;

use anyhow::{ensure, Result};
use common::{ok, TestController, KUBECTL};

fn raw_store(tc: &TestController) -> Result<Vec<u8>> {
    let mut all = Vec::new();
    for e in std::fs::read_dir(tc.data_dir().join("controller").join("db"))? {
        let p = e?.path();
        if p.is_file() {
            all.extend(std::fs::read(p)?);
        }
    }
    Ok(all)
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn lmdb_file_holds_no_secret_value() -> Result<()> {
    let mut tc = TestController::start()?;
    let value = "correct-horse-battery-staple-4711";
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(value)
    };
    ok(tc.kubectl(&[
        "create",
        "secret",
        "generic",
        "vault",
        &format!("--from-literal=password={value}"),
    ])?)?;
    let sd = format!(
        r#"{{"apiVersion": "v1", "kind": "Secret", "metadata": {{"name": "plain", "labels": {{"app": "x"}}}},
            "stringData": {{"token": "{value}-2"}}}}"#
    );
    ok(tc.kubectl_with(KUBECTL, &["create", "-f", "-"], Some(&sd))?)?;
    ok(tc.kubectl(&["label", "secret", "vault", "app=x"])?)?;
    // a ConfigMap is not encrypted: the scan would find its value
    ok(tc.kubectl(&[
        "create",
        "configmap",
        "visible",
        "--from-literal=k=plain-configmap-marker",
    ])?)?;

    let got = ok(tc.kubectl(&["get", "secret", "vault", "-o", "jsonpath={.data.password}"])?)?;
    ensure!(got == b64, "{got}");
    let listed = ok(tc.kubectl(&["get", "secrets", "-l", "app=x", "-o", "name"])?)?;
    ensure!(
        listed.contains("secret/vault") && listed.contains("secret/plain"),
        "{listed}"
    );

    let raw = raw_store(&tc)?;
    ensure!(
        contains(&raw, "plain-configmap-marker"),
        "the scan does not see stored values"
    );
    ensure!(contains(&raw, "k8s:enc:aesgcm:v1:key1:"));
    for needle in [value, b64.as_str(), "vault\",\"namespace"] {
        ensure!(!contains(&raw, needle), "found {needle:?} in the LMDB file");
    }
    let key = std::fs::metadata(tc.data_dir().join("controller").join("encryption.key"))?;
    use std::os::unix::fs::PermissionsExt;
    ensure!(key.permissions().mode() & 0o777 == 0o600);

    tc.restart()?;
    let got = ok(tc.kubectl(&["get", "secret", "vault", "-o", "jsonpath={.data.password}"])?)?;
    ensure!(got == b64, "after restart: {got}");
    ok(tc.kubectl(&["delete", "secret", "vault"])?)?;
    Ok(())
}
