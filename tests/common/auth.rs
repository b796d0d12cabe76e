//! Identities for auth tests: kubeconfigs for users with client certificates from the
//! cluster CA, or bearer tokens, and kubectl runs with them.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::Result;

use super::{TestController, KUBECTL};

/// The controller's PKI directory.
pub fn pki_dir(tc: &TestController) -> PathBuf {
    tc.data_dir().join("controller").join("pki")
}

/// The cluster CA certificate, PEM.
pub fn ca_pem(tc: &TestController) -> Result<String> {
    Ok(std::fs::read_to_string(pki_dir(tc).join("ca.crt"))?)
}

/// The API server URL.
pub fn url(tc: &TestController) -> String {
    format!("https://127.0.0.1:{}", tc.port)
}

/// Writes a kubeconfig for user `name` in `groups` with a client certificate from the
/// cluster CA.
pub fn cert_kubeconfig(tc: &TestController, name: &str, groups: &[&str]) -> Result<PathBuf> {
    let dir = pki_dir(tc);
    let (cert_pem, key_pem) = bramble_pki::issue_client_with_ca(
        &std::fs::read_to_string(dir.join("ca.crt"))?,
        &std::fs::read_to_string(dir.join("ca.key"))?,
        name,
        groups,
        Duration::from_secs(3600),
    )?;
    let path = tc
        .data_dir()
        .join(format!("kubeconfig-{}", name.replace(':', "_")));
    bramble_pki::write_kubeconfig(
        &path,
        &url(tc),
        &ca_pem(tc)?,
        bramble_pki::KubeconfigUser::ClientCert { cert_pem, key_pem },
        "bramble",
    )?;
    Ok(path)
}

/// Writes a kubeconfig that presents a bearer token.
pub fn token_kubeconfig(tc: &TestController, label: &str, token: &str) -> Result<PathBuf> {
    let path = tc.data_dir().join(format!("kubeconfig-token-{label}"));
    bramble_pki::write_kubeconfig(
        &path,
        &url(tc),
        &ca_pem(tc)?,
        bramble_pki::KubeconfigUser::Token(token.to_string()),
        "bramble",
    )?;
    Ok(path)
}

/// Runs kubectl with another kubeconfig.
pub fn kubectl_as(kubeconfig: &PathBuf, args: &[&str]) -> Result<Output> {
    Ok(Command::new(KUBECTL)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::null())
        .output()?)
}
