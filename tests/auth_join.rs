//! Joining with a bootstrap token: `bramble token create|list|delete`, CA discovery pinned by
//! the CA hash, a CSR auto-approved and signed for `system:node:<name>`, and the resulting
//! kubeconfig used by the real kubectl as that node; expired, deleted and wrong-hash joins
//! fail.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Result};
use bramble_auth::join::{join, JoinConfig, JoinError};
use common::auth::{ca_pem, kubectl_as, url};
use common::{bramble_bin, fails, ok, TestController, KUBECTL};

fn bramble_token(tc: &TestController, args: &[&str]) -> Result<String> {
    let out = Command::new(bramble_bin())
        .arg("token")
        .args(args)
        .arg("--kubeconfig")
        .arg(&tc.kubeconfig)
        .output()?;
    ok(out)
}

fn config(tc: &TestController, token: &str, hash: &str, node: &str, path: &Path) -> JoinConfig {
    let mut cfg = JoinConfig::new(url(tc), token, vec![hash.to_string()], node, path);
    cfg.timeout = Duration::from_secs(20);
    cfg
}

#[tokio::test]
async fn token_csr_and_node_credentials() -> Result<()> {
    let tc = TestController::start()?;
    let hash = bramble_pki::ca_cert_hash(&ca_pem(&tc)?)?;
    let out = bramble_token(
        &tc,
        &[
            "create",
            "--print-join-command",
            "--description",
            "for pi-1",
        ],
    )?;
    let mut lines = out.lines();
    let token = lines.next().unwrap_or("").to_string();
    ensure!(token.len() == 23 && token.as_bytes()[6] == b'.', "{out}");
    ensure!(out.contains(&format!("ca-cert-hash: {hash}")), "{out}");
    let list = bramble_token(&tc, &["list"])?;
    ensure!(
        list.contains(&format!("{}.<secret>", &token[..6])) && list.contains("for pi-1"),
        "{list}"
    );
    ensure!(list.contains("authentication,signing"), "{list}");

    // a wrong CA hash is refused before any credential is sent
    let wrong = format!("sha256:{}", "0".repeat(64));
    let kc = tc.data_dir().join("node-kubeconfig");
    match join(&config(&tc, &token, &wrong, "pi-1", &kc)).await {
        Err(JoinError::CaHashMismatch { actual }) => ensure!(actual == hash),
        other => anyhow::bail!("wrong hash joined: {other:?}"),
    }
    ensure!(!kc.exists());

    // the real join
    let joined = join(&config(&tc, &token, &hash, "pi-1", &kc)).await?;
    let who = ok(kubectl_as(&kc, &["auth", "whoami", "-o", "json"])?)?;
    let who: serde_json::Value = serde_json::from_str(&who)?;
    ensure!(
        who["status"]["userInfo"]["username"] == "system:node:pi-1",
        "{who}"
    );
    ensure!(
        who["status"]["userInfo"]["groups"]
            .to_string()
            .contains("system:nodes"),
        "{who}"
    );
    let node = r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-1"}}"#;
    ok(tc.kubectl_with(
        KUBECTL,
        &["--kubeconfig", kc.to_str().unwrap(), "create", "-f", "-"],
        Some(node),
    )?)?;
    fails(kubectl_as(&kc, &["get", "secrets", "-n", "kube-system"])?)?;
    let csr = ok(tc.kubectl(&["get", "csr", &joined.csr_name, "-o", "json"])?)?;
    let csr: serde_json::Value = serde_json::from_str(&csr)?;
    ensure!(
        csr["spec"]["username"] == format!("system:bootstrap:{}", &token[..6]),
        "{csr}"
    );
    ensure!(
        csr["status"]["conditions"][0]["reason"] == "AutoApproved",
        "{csr}"
    );
    // the bootstrap token itself may only ask for certificates
    let boot = common::auth::token_kubeconfig(&tc, "boot", &token)?;
    let err = fails(kubectl_as(&boot, &["get", "pods", "-A"])?)?;
    ensure!(
        err.contains(&format!(
            "User \"system:bootstrap:{}\" cannot list resource \"pods\"",
            &token[..6]
        )),
        "{err}"
    );

    // an expired token cannot join
    let short = bramble_token(&tc, &["create", "--ttl", "1s"])?
        .trim()
        .to_string();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kc2 = tc.data_dir().join("node2-kubeconfig");
    match join(&config(&tc, &short, &hash, "pi-2", &kc2)).await {
        Err(JoinError::TokenRejected { token_id, .. }) => ensure!(token_id == short[..6]),
        other => anyhow::bail!("expired token joined: {other:?}"),
    }
    // nor a deleted one
    let gone = bramble_token(&tc, &["create"])?.trim().to_string();
    bramble_token(&tc, &["delete", &gone[..6]])?;
    ensure!(!bramble_token(&tc, &["list"])?.contains(&gone[..6]));
    match join(&config(&tc, &gone, &hash, "pi-2", &kc2)).await {
        Err(JoinError::TokenRejected { token_id, .. }) => ensure!(token_id == gone[..6]),
        other => anyhow::bail!("deleted token joined: {other:?}"),
    }
    ensure!(!kc2.exists());
    match join(&config(&tc, "not-a-token", &hash, "pi-2", &kc2)).await {
        Err(JoinError::MalformedToken) => {}
        other => anyhow::bail!("malformed token: {other:?}"),
    }
    Ok(())
}
